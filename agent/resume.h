/* resume: a stage checkpoint the controller sends before an Assignment
 * whose resume_from names it (the agent that made it may be dead; see
 * controller/ctl_resume.c). The I/O thread keeps the latest one received
 * and hands it to the compute thread with the Assignment, if it is the
 * one named; the compute thread loads it into the new stage. */
#ifndef ET_AGENT_RESUME_H
#define ET_AGENT_RESUME_H 1

#include <stdbool.h>
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

/* The agent's own copy of checkpoint 'id' in its state directory:
 * "<dir>/<agent>-<id>.ckpt" (the controller's --checkpoint-dir naming). */
void agent_resume_local_path(char *buf, size_t size, const char *dir,
                             const char *agent, const char *id);

/* For an Assignment 'a' with resume_local (no payload sent: the agent made
 * the checkpoint): true if 'a' can go ahead now, with the checkpoint kept
 * (resume_keep) from the agent's own file once it checks out (id, run,
 * blocks, epoch, a->resume_crc32). Otherwise sends a checkpoint-request
 * for it, parks 'a' in ag->resume_pending (taking it) and returns false;
 * the Checkpoint frame that answers lets it go on. Asks once per id: a
 * second miss goes ahead (the stage then starts fresh, reported). */
bool agent_resume_prepare(struct agent *, Edgetrain__Assignment *a);

/* Writes the stage checkpoint 'buf' of epoch 'epoch' as the agent's own
 * copy (agent_resume_local_path) and deletes its copies of that range
 * older than the newest ET_CKPT_KEEP epochs. Returns 0 or an errno. */
int agent_resume_save_local(const char *dir, const char *agent,
                            const Edgetrain__Assignment *a, uint32_t epoch,
                            const uint8_t *buf, size_t len);

/* Frees the parked Assignment, if any. */
void agent_resume_drop_pending(struct agent *);

#endif /* ET_AGENT_RESUME_H */
