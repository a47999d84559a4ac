/* Merging stages: the stage of blocks a..c assembled from stages of
 * adjacent ranges a..b, b+1..c (a failover with no spare device hands a
 * dead stage's blocks to its neighbour; controller/ckpt_merge.c). Every
 * tensor is copied by name from the part that holds its block, with its
 * slice of the optimiser state; the head from the last part, which sits
 * after the same last block. See model.h, mn_stage_merge().
 *
 * And splitting them again (mn_stage_split()): when the device that lost
 * its blocks comes back, the merged stage's blocks go back to the ranges
 * they had, each with its parameters, statistics and optimiser state. */
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

/* True if 'p' is of dst's model; else false with both in 'err'. 'kind'
 * names dst ("merged", "split"). */
static bool
same_model(const struct mn_stage *p, const struct mn_stage *dst,
           const char *kind, char *err, size_t errlen)
{
    if (same_shape_config(&p->cfg, &dst->cfg)) {
        return true;
    }
    set_err(err, errlen, "blocks %d-%d are of another model (alpha %g input "
            "%d x%d classes %d head_pool %d; %s stage alpha %g input %d x%d "
            "classes %d head_pool %d)", p->first, p->last, p->cfg.alpha,
            p->cfg.input_size, p->cfg.in_channels, p->cfg.classes,
            p->cfg.head_pool, kind, dst->cfg.alpha, dst->cfg.input_size,
            dst->cfg.in_channels, dst->cfg.classes, dst->cfg.head_pool);
    return false;
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
        if (!same_model(p, dst, "merged", err, errlen)) {
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

/* Copies every tensor of 'dst' from srcs[i] (its i-th tensor's source,
 * a stage holding a tensor of the same name and shape; NULL keeps dst's
 * own, as created, with zero optimiser state), and the slice of each of
 * 'vecs' optimiser vectors of the sources that have them. On success
 * dst's optimiser state is replaced by the copy: kind 'kind', 'step'
 * steps. */
static int
copy_tensors(struct mn_stage *dst, const struct mn_stage *const *srcs,
             size_t vecs, int kind, long step, char *err, size_t errlen)
{
    /* Optimiser state: one or two vectors (SGD momentum; Adam's moments)
     * laid out like the flat parameters, so each parameter tensor's slice
     * sits at its parameter offset in every vector. */
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
        const struct mn_stage *p = srcs[i];
        if (!p) {
            continue;
        }
        const struct mn_tensor *src = mn_stage_tensor_by_name(p, t->name);
        if (!src || src->count != t->count || !src->grad != !t->grad) {
            set_err(err, errlen, "tensor '%s' of blocks %d-%d has no match "
                    "in blocks %d-%d", t->name, dst->first, dst->last,
                    p->first, p->last);
            free(opt);
            return EINVAL;
        }
        memcpy(t->data, src->data, t->count * sizeof *t->data);
        if (opt && t->grad && p->opt) {
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
    dst->opt_kind = vecs ? kind : -1;
    dst->opt_step = vecs ? step : 0;
    return 0;
}

/* Optimiser vectors of a stage's state (0 without state). */
static size_t
opt_vecs(const struct mn_stage *s)
{
    return s->opt ? s->opt_floats / s->n_params : 0;
}

int
mn_stage_merge(struct mn_stage *dst, const struct mn_stage *const *parts,
               size_t n, char *err, size_t errlen)
{
    int e = merge_check(dst, parts, n, err, errlen);
    if (e) {
        return e;
    }
    const struct mn_stage *srcs[MN_MAX_TENSORS];
    for (size_t i = 0; i < dst->n_tensors; i++) {
        const char *name = dst->tensors[i].name;
        if (!(srcs[i] = part_of(name, parts, n))) {
            set_err(err, errlen, "tensor '%s' of the merged stage has no "
                    "match in blocks %d-%d", name, parts[0]->first,
                    parts[n - 1]->last);
            return EINVAL;
        }
    }
    const struct mn_stage *p0 = parts[0];
    return copy_tensors(dst, srcs, opt_vecs(p0), p0->opt_kind, p0->opt_step,
                        err, errlen);
}

/* Checks that 'dst' can be filled from 'src' (and its head from
 * 'head_src' if given and needed). */
static int
split_check(const struct mn_stage *dst, const struct mn_stage *src,
            const struct mn_stage *head_src, char *err, size_t errlen)
{
    if (dst->first < src->first || dst->last > src->last) {
        set_err(err, errlen, "blocks %d-%d are not within blocks %d-%d",
                dst->first, dst->last, src->first, src->last);
        return EINVAL;
    }
    const struct mn_stage *both[2] = {src, head_src};
    for (size_t i = 0; i < 2 && both[i]; i++) {
        const struct mn_stage *p = both[i];
        if (!same_model(p, dst, "split", err, errlen)) {
            return EINVAL;
        }
    }
    if (!head_src || dst->last == src->last) {
        return 0;
    }
    if (head_src->last != dst->last) {
        set_err(err, errlen, "the head of blocks %d-%d follows block %d, "
                "not block %d", head_src->first, head_src->last,
                head_src->last, dst->last);
        return EINVAL;
    }
    if (src->opt && head_src->opt && head_src->opt_kind != src->opt_kind) {
        set_err(err, errlen, "blocks %d-%d and the head of blocks %d-%d "
                "have different optimiser state (kind %d / %d)", src->first,
                src->last, head_src->first, head_src->last, src->opt_kind,
                head_src->opt_kind);
        return EINVAL;
    }
    return 0;
}

int
mn_stage_split(struct mn_stage *dst, const struct mn_stage *src,
               const struct mn_stage *head_src, char *err, size_t errlen)
{
    int e = split_check(dst, src, head_src, err, errlen);
    if (e) {
        return e;
    }
    /* The head belongs to the last block: src's if dst ends there, else
     * head_src's (a stage of the same last block), else dst's own. */
    const struct mn_stage *head = dst->last == src->last ? src : head_src;
    const struct mn_stage *srcs[MN_MAX_TENSORS];
    for (size_t i = 0; i < dst->n_tensors; i++) {
        srcs[i] = strncmp(dst->tensors[i].name, "head.", 5) ? src : head;
    }
    /* Every tensor gets src's step count, the head's too. The count is
     * the schedule position (mn_lr_at()), which all stages of a pipeline
     * share at a boundary (one step per batch), and it is what Adam's
     * bias correction assumes of the blocks' moments, which saw every one
     * of those steps. The head's own count would set the whole stage's
     * learning rate back. The price: a head from an older stage (fewer
     * steps) or a fresh one (zero moments) has its moments corrected as
     * if they had seen them all, so its first updates are larger than
     * Adam's would be, by sqrt((1 - b2^S) / (1 - b2^S0)) for moments of S0
     * of S steps (1.4x for 40 of 80 with b2 0.999; about 3x for zero
     * moments), until new gradients fill the moments. */
    return copy_tensors(dst, srcs, opt_vecs(src), src->opt_kind,
                        src->opt_step, err, errlen);
}
