/* ckpt_id: the name of a replicated stage checkpoint, shared by the
 * controller (Assignment.resume_from) and the agent (which checks that the
 * Checkpoint it received is the one named). One format, one place. */
#ifndef ET_CKPT_ID_H
#define ET_CKPT_ID_H 1

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ET_CKPT_ID_LEN 64

/* Epochs of checkpoints kept per block range, by the controller (in memory
 * and in --checkpoint-dir) and by an agent of its own (--state-dir). */
#define ET_CKPT_KEEP 2

/* "<run id hex>-b<first>-<last>-e<epoch>": blocks first..last of run
 * 'run_id' after 'epoch' completed epochs. */
static inline void
et_ckpt_id(char *buf, size_t size, uint64_t run_id, uint32_t first,
           uint32_t last, uint32_t epoch)
{
    snprintf(buf, size, "%016" PRIx64 "-b%u-%u-e%u", run_id, first, last,
             epoch);
}

#endif /* ET_CKPT_ID_H */
