/* ckpt_merge: the checkpoint of a merged stage, assembled from the
 * checkpoints of its parts (the controller's copies, ckptstore.h).
 *
 * A failover with no spare agent hands the dead stage's blocks to an
 * adjacent stage (ctl_merge.c). Neither part's checkpoint fits the merged
 * range, so the controller builds one at the resume boundary: both parts
 * are loaded into stages with the kernels' own loader, copied block by
 * block into a stage of the merged range (mn_stage_merge(): parameters,
 * BN statistics and optimiser state of each block from its part, the head
 * from the last part) and saved with the kernels' writer. The result is
 * an ordinary stage checkpoint: the agent checks and loads it like any
 * other. */
#ifndef ET_CKPT_MERGE_H
#define ET_CKPT_MERGE_H 1

#include <stddef.h>
#include <stdint.h>

struct ckpt_entry;
struct mn_stage;

/* Assembles the checkpoint of blocks a->first..b->last after the epoch of
 * 'a' and 'b', which must be of the same run and epoch, of adjacent ranges
 * (a->last + 1 == b->first), of the same model and at the same optimiser
 * step count. On success '*buf' (malloc'd, the caller frees it), '*len'
 * and '*crc' (CRC-32 of the bytes, Checkpoint.crc32) hold the file.
 * Returns 0, or EINVAL/ENOMEM with the reason in 'err'. */
int ckpt_merge(const struct ckpt_entry *a, const struct ckpt_entry *b,
               uint8_t **buf, size_t *len, uint32_t *crc, char *err,
               size_t err_size);

/* Loads checkpoint 'x' into a new stage (config and range from the file,
 * which must hold x's blocks), for ckpt_merge() and ckpt_split(). Returns
 * the stage (the caller destroys it), or NULL with the reason in 'err'. */
struct mn_stage *ckpt_load_stage(const struct ckpt_entry *x, char *err,
                                 size_t err_size);

#endif /* ET_CKPT_MERGE_H */
