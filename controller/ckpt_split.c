/* ckpt_split: a merged stage's checkpoint split back into its parts'.
 * See ckpt_split.h. */
#include "ckpt_split.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_merge.h"
#include "ckptstore.h"
#include "model.h"

void
ckpt_split_free(struct ckpt_split_part parts[2])
{
    for (size_t i = 0; i < 2; i++) {
        free(parts[i].buf);
        parts[i].buf = NULL;
        parts[i].len = 0;
    }
}

/* Refuses a head source that does not belong with 'm'. */
static int
check_head(const struct ckpt_entry *m, uint32_t split,
           const struct ckpt_entry *head, char *err, size_t err_size)
{
    if (head->run_id != m->run_id) {
        snprintf(err, err_size, "the head of blocks %u-%u is of run %016"
                 PRIx64 ", the merged blocks %u-%u of run %016" PRIx64,
                 head->first, head->last, head->run_id, m->first, m->last,
                 m->run_id);
        return EINVAL;
    }
    if (head->last != split) {
        snprintf(err, err_size, "the head of blocks %u-%u follows block %u, "
                 "not block %u", head->first, head->last, head->last, split);
        return EINVAL;
    }
    if (head->epoch > m->epoch) {
        snprintf(err, err_size, "the head of blocks %u-%u is of epoch %u, "
                 "after the merged checkpoint's epoch %u", head->first,
                 head->last, head->epoch, m->epoch);
        return EINVAL;
    }
    return 0;
}

int
ckpt_split(const struct ckpt_entry *m, uint32_t split,
           const struct ckpt_entry *head, uint64_t seed,
           struct ckpt_split_part parts[2], char *err, size_t err_size)
{
    memset(parts, 0, 2 * sizeof *parts);
    if (split < m->first || split >= m->last) {
        snprintf(err, err_size, "cannot split blocks %u-%u after block %u",
                 m->first, m->last, split);
        return EINVAL;
    }
    if (head && check_head(m, split, head, err, err_size)) {
        return EINVAL;
    }
    struct mn_stage *ms = ckpt_load_stage(m, err, err_size);
    struct mn_stage *hs = ms && head ? ckpt_load_stage(head, err, err_size)
                                     : NULL;
    if (!ms || (head && !hs)) {
        mn_stage_destroy(ms);
        return EINVAL;
    }
    const uint32_t range[2][2] = {{m->first, split}, {split + 1, m->last}};
    struct mn_config c = *mn_stage_config(ms);
    c.seed = seed;
    char why[256];
    int e = 0;
    for (size_t i = 0; i < 2 && !e; i++) {
        struct mn_stage *p = mn_stage_create(&c, (int) range[i][0],
                                             (int) range[i][1], why,
                                             sizeof why);
        parts[i].first = range[i][0];
        parts[i].last = range[i][1];
        if (!p) {
            e = EINVAL;
            snprintf(err, err_size, "blocks %u-%u: %s", range[i][0],
                     range[i][1], why);
        } else if ((e = mn_stage_split(p, ms, i ? NULL : hs, why,
                                       sizeof why))) {
            snprintf(err, err_size, "cannot split blocks %u-%u out of "
                     "blocks %u-%u (epoch %u): %s", range[i][0], range[i][1],
                     m->first, m->last, m->epoch, why);
        } else if ((e = mn_stage_save_buf(p, true, &parts[i].buf,
                                          &parts[i].len))) {
            snprintf(err, err_size, "blocks %u-%u: cannot save: %s",
                     range[i][0], range[i][1], strerror(e));
        } else {
            parts[i].crc = mn_checkpoint_crc(parts[i].buf, parts[i].len);
        }
        mn_stage_destroy(p);
    }
    mn_stage_destroy(ms);
    mn_stage_destroy(hs);
    if (e) {
        ckpt_split_free(parts);
    }
    return e;
}
