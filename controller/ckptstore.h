/* ckptstore: the controller's copies of the agents' stage checkpoints.
 *
 * Every agent sends a Checkpoint after each epoch. The controller keeps the
 * latest few per block range in memory, so a stage whose device died can
 * resume on another one: the controller sends the copy to the new agent
 * before its Assignment (Assignment.resume_from names it). All stages of a
 * run resume from the same epoch boundary; ckptstore_resume_epoch() picks
 * the latest boundary every stage has a checkpoint of.
 *
 * Memory: at most 'keep' epochs per block range of one run (the run of the
 * newest put; another run's copies are dropped). */
#ifndef ET_CKPTSTORE_H
#define ET_CKPTSTORE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ckpt_entry {
    uint64_t run_id;
    uint32_t first, last;          /* blocks, inclusive, 1-based */
    uint32_t epoch;                /* epochs completed when saved */
    char producer[64];             /* agent that made it */
    uint8_t *buf;                  /* the checkpoint file's bytes (owned) */
    size_t len;
    uint32_t crc32;                /* of buf (Checkpoint.crc32) */
    uint32_t registration;         /* producer's registration when it sent
                                    * it; 0: unknown (read from disk) */
};

struct ckptstore;

/* Creates a store keeping the newest 'keep' (>= 1) epochs per range. */
struct ckptstore *ckptstore_create(size_t keep);
void ckptstore_destroy(struct ckptstore *);      /* accepts NULL */

/* Checks and copies one checkpoint: 'crc' must be the CRC-32 of 'buf',
 * the bytes a valid stage checkpoint (kernels' header and CRC) of blocks
 * first..last, epoch >= 1. Replaces an entry of the same range and epoch.
 * Returns 0, or EINVAL with the reason in 'err'. */
int ckptstore_put(struct ckptstore *, const char *producer, uint64_t run_id,
                  uint32_t first, uint32_t last, uint32_t epoch, uint32_t crc,
                  const uint8_t *buf, size_t len, char *err, size_t err_size);

/* Checks that 'buf' is a valid stage checkpoint (kernels' header, shapes
 * and CRC) of blocks first..last. Returns 0, or EINVAL with the reason in
 * 'err'. */
int ckptstore_check(const uint8_t *buf, size_t len, uint32_t first,
                    uint32_t last, char *err, size_t err_size);

/* Records which registration of its producer sent the entry (an agent
 * that registered again may have restarted and lost its own copy). */
void ckptstore_set_registration(struct ckptstore *, uint64_t run_id,
                                uint32_t first, uint32_t last,
                                uint32_t epoch, uint32_t registration);

/* The copy of range first..last of 'run_id' after 'epoch', or NULL. */
const struct ckpt_entry *ckptstore_get(const struct ckptstore *,
                                       uint64_t run_id, uint32_t first,
                                       uint32_t last, uint32_t epoch);

/* The latest epoch <= 'max_epoch' for which the store holds a checkpoint
 * of every one of the 'n' ranges (ranges[s][0]..ranges[s][1]), or 0 if
 * there is none (the run starts over). */
uint32_t ckptstore_resume_epoch(const struct ckptstore *, uint64_t run_id,
                                const uint32_t (*ranges)[2], size_t n,
                                uint32_t max_epoch);

/* Entries held and their bytes (status). */
size_t ckptstore_count(const struct ckptstore *, size_t *bytes);

#endif /* ET_CKPTSTORE_H */
