/* ckptdir: the controller's checkpoint copies on disk (--checkpoint-dir),
 * so that they outlive a controller restart.
 *
 * Every checkpoint an agent sends is written as
 * "<producer>-<run id hex>-b<first>-<last>-e<epoch>.ckpt" (tmp file, then
 * rename), and files of the same run and range older than the newest
 * 'keep' epochs are deleted, so the directory holds at most 'keep' epochs
 * per range and run. On start the controller scans the directory
 * (ckptdir_scan: every file read and checked in full, a bad one skipped
 * with a warning naming it and why); when it adopts a run from the agents
 * it loads that run's newest 'keep' epochs per range into its ckptstore
 * (ckptdir_load), so a later failover has checkpoints to resume from.
 * Files of other runs are left alone. */
#ifndef ET_CKPTDIR_H
#define ET_CKPTDIR_H 1

#include <stddef.h>
#include <stdint.h>

struct ckptstore;

/* One checkpoint file found valid by ckptdir_scan(). */
struct ckptdir_file {
    char name[160];                /* file name inside the directory */
    char producer[64];
    uint64_t run_id;
    uint32_t first, last, epoch;
};

/* What a scan found. */
struct ckptdir_index {
    char *dir;                     /* owned copy */
    struct ckptdir_file *files;    /* n valid files, unordered */
    size_t n;
    size_t skipped;                /* files refused (each logged) */
};

/* Parses a checkpoint file name "<producer>-<16 hex>-b<F>-<L>-e<E>.ckpt"
 * (the producer may contain '-'). Returns 0, or EINVAL if 'fname' is not
 * one (1 <= F <= L, E >= 1, producer non-empty and shorter than
 * 'producer_size'). */
int ckptdir_parse_name(const char *fname, char *producer, size_t producer_size,
                       uint64_t *run_id, uint32_t *first, uint32_t *last,
                       uint32_t *epoch);

/* Writes one checkpoint into 'dir' under its name (via a tmp file and
 * rename, so a crash never leaves a partial file under the real name) and
 * deletes the files of the same run and range older than the newest
 * 'keep' epochs (epoch <= 'epoch' - 'keep'). Returns 0 or an errno, with
 * the reason in 'err'. */
int ckptdir_write(const char *dir, const char *producer, uint64_t run_id,
                  uint32_t first, uint32_t last, uint32_t epoch,
                  const uint8_t *buf, size_t len, size_t keep, char *err,
                  size_t err_size);

/* Reads every file of 'dir' and checks it in full (name, kernels' header
 * and shapes, CRC, blocks of the name = blocks of the header): the valid
 * ones go into 'ix', each other file is logged (ET_WARN: name and reason)
 * and counted in ix->skipped. Left-over "*.tmp" files (a write cut short)
 * are deleted. Never fails on a file's content; returns 0, or an errno if
 * the directory cannot be read. 'ix' must be ckptdir_index_clear()ed. */
int ckptdir_scan(const char *dir, struct ckptdir_index *ix);

/* Loads the newest 'keep' epochs per block range of run 'run_id' from the
 * scanned files into 'st' (each file read and checked again), marks them
 * of unknown registration, and deletes that run's older files. Returns
 * the number of checkpoints now held from the directory. */
size_t ckptdir_load(const struct ckptdir_index *ix, struct ckptstore *st,
                    uint64_t run_id, size_t keep);

/* Frees what ckptdir_scan() filled in (accepts an empty index). */
void ckptdir_index_clear(struct ckptdir_index *ix);

#endif /* ET_CKPTDIR_H */
