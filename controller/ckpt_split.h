/* ckpt_split: the checkpoints of a merged stage's two parts, split back
 * out of the merged stage's checkpoint (the controller's copy,
 * ckptstore.h).
 *
 * After a failover with no spare (ckpt_merge.h, ctl_merge.c) the dead
 * agent may come back. At the next epoch boundary E the controller
 * restores the placement before the failover, and every stage resumes
 * from E's checkpoints; the two ranges the merged stage was made of have
 * none of E, so they are split out of the merged stage's: each block's
 * parameters, BN statistics and optimiser state go back to its range
 * (mn_stage_split()). The later part keeps the merged stage's head (it
 * follows the same last block). The earlier part's head was dropped at
 * the merge: it comes from that part's checkpoint of the merge (the
 * controller keeps it, ctl_split.c), or is freshly initialised when there
 * is none. */
#ifndef ET_CKPT_SPLIT_H
#define ET_CKPT_SPLIT_H 1

#include <stddef.h>
#include <stdint.h>

struct ckpt_entry;

/* One part's checkpoint file. */
struct ckpt_split_part {
    uint32_t first, last;          /* blocks */
    uint8_t *buf;                  /* the file (malloc'd) */
    size_t len;
    uint32_t crc;                  /* mn_checkpoint_crc(), Checkpoint.crc32 */
};

/* Splits merged checkpoint 'm' after block 'split' (m->first <= split <
 * m->last) into parts[0], blocks m->first..split, and parts[1], blocks
 * split+1..m->last, both at m's optimiser step count. parts[1]'s head is
 * m's. parts[0]'s head and its optimiser state come from 'head', a
 * checkpoint of m's run whose last block is 'split', of m's epoch or an
 * older one; with 'head' NULL it is initialised afresh from 'seed' (the
 * run's seed: the head the part started the run with). On success the
 * caller frees parts[i].buf (ckpt_split_free()). Returns 0, or
 * EINVAL/ENOMEM with the reason in 'err' (parts then hold nothing). */
int ckpt_split(const struct ckpt_entry *m, uint32_t split,
               const struct ckpt_entry *head, uint64_t seed,
               struct ckpt_split_part parts[2], char *err, size_t err_size);

/* Frees the parts' buffers (accepts parts never filled, zeroed). */
void ckpt_split_free(struct ckpt_split_part parts[2]);

#endif /* ET_CKPT_SPLIT_H */
