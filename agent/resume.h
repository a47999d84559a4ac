/* resume: a stage checkpoint the controller sends before an Assignment
 * whose resume_from names it (the agent that made it may be dead; see
 * controller/ctl_resume.c). The I/O thread keeps the latest one received
 * and hands it to the compute thread with the Assignment, if it is the
 * one named; the compute thread loads it into the new stage. */
#ifndef ET_AGENT_RESUME_H
#define ET_AGENT_RESUME_H 1

#include <stddef.h>
#include <stdint.h>

#include "edgetrain.pb-c.h"

struct agent;
struct et_qmsg;

/* Checks that checkpoint 'c' with file bytes 'buf' is the one Assignment
 * 'a' resumes from: its id is a->resume_from, run, blocks and epoch
 * (== a->start_epoch) match, the CRC-32 matches. The model shape is
 * checked when the stage loads it. Returns 0 or EINVAL with the reason in
 * 'err'. */
int agent_resume_check(const Edgetrain__Assignment *a,
                       const Edgetrain__Checkpoint *c, const uint8_t *buf,
                       size_t len, char *err, size_t err_size);

/* Keeps a Checkpoint frame from the controller (takes 'c' and 'buf'),
 * replacing the one kept before. */
void agent_resume_keep(struct agent *, Edgetrain__Checkpoint *c,
                       uint8_t *buf, size_t len);

/* For an Assignment 'a' that names resume_from: moves the kept checkpoint
 * into 'm' (payload) if it checks out; otherwise logs why and reports it
 * to the controller (the stage then starts fresh). */
void agent_resume_attach(struct agent *, const Edgetrain__Assignment *a,
                         struct et_qmsg *m);

/* Frees the kept checkpoint. */
void agent_resume_clear(struct agent *);

#endif /* ET_AGENT_RESUME_H */
