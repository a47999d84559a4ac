/* Merging stages: the stage of blocks a..c assembled from stages of
 * adjacent ranges a..b, b+1..c (a failover with no spare device hands a
 * dead stage's blocks to its neighbour; controller/ckpt_merge.c). Every
 * tensor is copied by name from the part that holds its block, with its
 * slice of the optimiser state; the head from the last part, which sits
 * after the same last block. See model.h, mn_stage_merge(). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

static bool
same_shape_config(const struct mn_config *a, const struct mn_config *b)
{
    return a->alpha == b->alpha && a->input_size == b->input_size
           && a->in_channels == b->in_channels && a->classes == b->classes
           && a->head_pool == b->head_pool;
}

/* Checks that 'parts' tile dst's range in order, with one model and one
 * optimiser position. */
static int
merge_check(const struct mn_stage *dst, const struct mn_stage *const *parts,
            size_t n, char *err, size_t errlen)
{
    if (!n) {
        set_err(err, errlen, "no stages to merge");
        return EINVAL;
    }
    int next = dst->first;
    for (size_t i = 0; i < n; i++) {
        const struct mn_stage *p = parts[i];
        if (p->first != next) {
            set_err(err, errlen, "stages to merge are not adjacent: blocks "
                    "%d-%d do not continue at block %d (merged stage "
                    "%d-%d)", p->first, p->last, next, dst->first,
                    dst->last);
            return EINVAL;
        }
        next = p->last + 1;
        if (!same_shape_config(&p->cfg, &dst->cfg)) {
            set_err(err, errlen, "blocks %d-%d are of another model (alpha "
                    "%g input %d x%d classes %d head_pool %d; merged stage "
                    "alpha %g input %d x%d classes %d head_pool %d)",
                    p->first, p->last, p->cfg.alpha, p->cfg.input_size,
                    p->cfg.in_channels, p->cfg.classes, p->cfg.head_pool,
                    dst->cfg.alpha, dst->cfg.input_size,
                    dst->cfg.in_channels, dst->cfg.classes,
                    dst->cfg.head_pool);
            return EINVAL;
        }
        const struct mn_stage *q = parts[0];
        bool p_opt = p->opt != NULL, q_opt = q->opt != NULL;
        if (p_opt != q_opt || (p_opt && p->opt_kind != q->opt_kind)) {
            set_err(err, errlen, "blocks %d-%d and %d-%d have different "
                    "optimiser state (kind %d / %d)", q->first, q->last,
                    p->first, p->last, p_opt ? p->opt_kind : -1,
                    q_opt ? q->opt_kind : -1);
            return EINVAL;
        }
        if (p_opt && p->opt_step != q->opt_step) {
            set_err(err, errlen, "step counts differ: blocks %d-%d at "
                    "optimiser step %ld, blocks %d-%d at step %ld", q->first,
                    q->last, q->opt_step, p->first, p->last, p->opt_step);
            return EINVAL;
        }
    }
    if (next != dst->last + 1) {
        set_err(err, errlen, "stages to merge end at block %d, the merged "
                "stage at block %d", next - 1, dst->last);
        return EINVAL;
    }
    return 0;
}

/* The part holding tensor 'name' ("b<k>...": block k; "head...": the
 * last part), or NULL. */
static const struct mn_stage *
part_of(const char *name, const struct mn_stage *const *parts, size_t n)
{
    int block;
    if (!strncmp(name, "head.", 5)) {
        return parts[n - 1];
    }
    if (sscanf(name, "b%d.", &block) != 1) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (block >= parts[i]->first && block <= parts[i]->last) {
            return parts[i];
        }
    }
    return NULL;
}

int
mn_stage_merge(struct mn_stage *dst, const struct mn_stage *const *parts,
               size_t n, char *err, size_t errlen)
{
    int e = merge_check(dst, parts, n, err, errlen);
    if (e) {
        return e;
    }
    /* Optimiser state: one or two vectors (SGD momentum; Adam's moments)
     * laid out like the flat parameters, so each parameter tensor's slice
     * sits at its parameter offset in every vector. */
    const struct mn_stage *p0 = parts[0];
    size_t vecs = p0->opt ? p0->opt_floats / p0->n_params : 0;
    float *opt = NULL;
    if (vecs) {
        opt = calloc(vecs * dst->n_params, sizeof *opt);
        if (!opt) {
            set_err(err, errlen, "out of memory for the optimiser state");
            return ENOMEM;
        }
    }
    for (size_t i = 0; i < dst->n_tensors; i++) {
        const struct mn_tensor *t = &dst->tensors[i];
        const struct mn_stage *p = part_of(t->name, parts, n);
        const struct mn_tensor *src = p ? mn_stage_tensor_by_name(p, t->name)
                                        : NULL;
        if (!src || src->count != t->count || !src->grad != !t->grad) {
            set_err(err, errlen, "tensor '%s' of the merged stage has no "
                    "match in blocks %d-%d", t->name, p ? p->first : 0,
                    p ? p->last : 0);
            free(opt);
            return EINVAL;
        }
        memcpy(t->data, src->data, t->count * sizeof *t->data);
        if (opt && t->grad) {
            size_t od = (size_t) (t->data - dst->params);
            size_t os = (size_t) (src->data - p->params);
            for (size_t v = 0; v < vecs; v++) {
                memcpy(opt + v * dst->n_params + od,
                       p->opt + v * p->n_params + os,
                       t->count * sizeof *opt);
            }
        }
    }
    free(dst->opt);
    dst->opt = opt;
    dst->opt_floats = vecs * dst->n_params;
    dst->opt_kind = vecs ? p0->opt_kind : -1;
    dst->opt_step = vecs ? p0->opt_step : 0;
    return 0;
}
