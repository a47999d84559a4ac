/* ckpt_merge: a merged stage's checkpoint from its parts'. See
 * ckpt_merge.h. */
#include "ckpt_merge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckptstore.h"
#include "model.h"

/* A batch capacity of 1 keeps the activation buffers small: only the
 * parameters and the optimiser state matter here. */
struct mn_stage *
ckpt_load_stage(const struct ckpt_entry *x, char *err, size_t err_size)
{
    struct mn_config c;
    int first, last;
    char why[200];
    if (mn_checkpoint_info(x->buf, x->len, &c, &first, &last, why,
                           sizeof why)) {
        snprintf(err, err_size, "checkpoint of blocks %u-%u: %s", x->first,
                 x->last, why);
        return NULL;
    }
    if ((uint32_t) first != x->first || (uint32_t) last != x->last) {
        snprintf(err, err_size, "checkpoint said to hold blocks %u-%u holds "
                 "blocks %d-%d", x->first, x->last, first, last);
        return NULL;
    }
    c.batch_capacity = 1;
    struct mn_stage *s = mn_stage_create(&c, first, last, why, sizeof why);
    if (!s || mn_stage_load_buf(s, x->buf, x->len, why, sizeof why)) {
        snprintf(err, err_size, "checkpoint of blocks %u-%u: %s", x->first,
                 x->last, why);
        mn_stage_destroy(s);
        return NULL;
    }
    return s;
}

int
ckpt_merge(const struct ckpt_entry *a, const struct ckpt_entry *b,
           uint8_t **buf, size_t *len, uint32_t *crc, char *err,
           size_t err_size)
{
    if (a->run_id != b->run_id) {
        snprintf(err, err_size, "cannot merge blocks %u-%u of run %016"
                 PRIx64 " with blocks %u-%u of run %016" PRIx64, a->first,
                 a->last, a->run_id, b->first, b->last, b->run_id);
        return EINVAL;
    }
    if (a->epoch != b->epoch) {
        snprintf(err, err_size, "cannot merge blocks %u-%u after epoch %u "
                 "with blocks %u-%u after epoch %u", a->first, a->last,
                 a->epoch, b->first, b->last, b->epoch);
        return EINVAL;
    }
    if (a->last + 1 != b->first) {
        snprintf(err, err_size, "cannot merge blocks %u-%u with blocks "
                 "%u-%u: not adjacent", a->first, a->last, b->first,
                 b->last);
        return EINVAL;
    }
    struct mn_stage *pa = ckpt_load_stage(a, err, err_size);
    struct mn_stage *pb = pa ? ckpt_load_stage(b, err, err_size) : NULL;
    struct mn_stage *m = NULL;
    int e = EINVAL;
    char why[256];
    if (pb) {
        struct mn_config c = *mn_stage_config(pa);
        m = mn_stage_create(&c, (int) a->first, (int) b->last, why,
                            sizeof why);
        const struct mn_stage *parts[2] = {pa, pb};
        if (!m) {
            snprintf(err, err_size, "merged stage %u-%u: %s", a->first,
                     b->last, why);
        } else if ((e = mn_stage_merge(m, parts, 2, why, sizeof why))) {
            snprintf(err, err_size, "cannot merge blocks %u-%u with blocks "
                     "%u-%u (epoch %u): %s", a->first, a->last, b->first,
                     b->last, a->epoch, why);
        } else if ((e = mn_stage_save_buf(m, true, buf, len))) {
            snprintf(err, err_size, "merged stage %u-%u: cannot save: %s",
                     a->first, b->last, strerror(e));
        } else {
            *crc = mn_checkpoint_crc(*buf, *len);
        }
    }
    mn_stage_destroy(pa);
    mn_stage_destroy(pb);
    mn_stage_destroy(m);
    return pb ? e : EINVAL;
}
