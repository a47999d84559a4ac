#include "stage_runner.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
stage_runner_create(struct stage_runner **rp, const struct mn_config *cfg,
                    int first, int last, const struct mn_optim *optim,
                    const struct mn_lr_schedule *schedule, char *err,
                    size_t errlen)
{
    *rp = NULL;
    struct stage_runner *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return ENOMEM;
    }
    r->stage = mn_stage_create(cfg, first, last, err, errlen);
    if (!r->stage) {
        free(r);
        return EINVAL;
    }
    r->optim = *optim;
    r->schedule = *schedule;
    *rp = r;
    return 0;
}

void
stage_runner_destroy(struct stage_runner *r)
{
    if (r) {
        mn_stage_destroy(r->stage);
        free(r);
    }
}

void
stage_stats_add(struct stage_stats *s, const struct mn_metrics *m)
{
    s->loss_sum += (double) m->loss * m->n;
    s->correct += m->correct;
    s->correct_top3 += m->correct_top3;
    s->n += m->n;
}

int
stage_runner_train_step(struct stage_runner *r, const float *in,
                        const uint32_t *labels, size_t n, const float **out,
                        struct mn_metrics *m, char *err, size_t errlen)
{
    struct mn_metrics mm;
    int error = mn_stage_forward(r->stage, in, n, true);
    if (error) {
        snprintf(err, errlen, "forward of %zu images failed (capacity %d)",
                 n, mn_stage_config(r->stage)->batch_capacity);
        return error;
    }
    error = mn_stage_backward(r->stage, labels, &mm, err, errlen);
    if (error) {
        return error;
    }
    r->last_lr = mn_lr_at(&r->schedule, r->step);
    error = mn_stage_step(r->stage, &r->optim, r->last_lr);
    if (error) {
        snprintf(err, errlen, "optimiser step failed: %s", strerror(error));
        return error;
    }
    r->step++;
    stage_stats_add(&r->train, &mm);
    if (m) {
        *m = mm;
    }
    if (out) {
        *out = mn_stage_output(r->stage);
    }
    return 0;
}

int
stage_runner_eval_step(struct stage_runner *r, const float *in,
                       const uint32_t *labels, size_t n, const float **out,
                       struct stage_stats *stats, char *err, size_t errlen)
{
    int error = mn_stage_forward(r->stage, in, n, false);
    if (error) {
        snprintf(err, errlen, "forward of %zu images failed (capacity %d)",
                 n, mn_stage_config(r->stage)->batch_capacity);
        return error;
    }
    if (labels) {
        struct mn_metrics m;
        error = mn_stage_loss(r->stage, labels, &m, err, errlen);
        if (error) {
            return error;
        }
        if (stats) {
            stage_stats_add(stats, &m);
        }
    }
    if (out) {
        *out = mn_stage_output(r->stage);
    }
    return 0;
}

int
stage_list_parse(const char *spec, int (*ranges)[2], size_t max, size_t *np,
                 char *err, size_t errlen)
{
    size_t n = 0;
    int expect = 1;
    const char *p = spec;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p) {
            goto bad;
        }
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p) {
                goto bad;
            }
            p = end;
        } else {
            b = a;
        }
        if (*p == ',') {
            p++;
            if (!*p) {
                goto bad;
            }
        } else if (*p) {
            goto bad;
        }
        if (a != expect || b < a || b > MN_BLOCKS) {
            snprintf(err, errlen, "stages \"%s\": range %ld-%ld must start "
                     "at block %d and end by block %d", spec, a, b, expect,
                     MN_BLOCKS);
            return EINVAL;
        }
        if (n == max) {
            snprintf(err, errlen, "stages \"%s\": more than %zu stages",
                     spec, max);
            return EINVAL;
        }
        ranges[n][0] = (int) a;
        ranges[n][1] = (int) b;
        n++;
        expect = (int) b + 1;
    }
    if (!n) {
        goto bad;
    }
    *np = n;
    return 0;
bad:
    snprintf(err, errlen, "stages \"%s\": want ranges like 1,2-3,4-5,6-11,"
             "12-13", spec);
    return EINVAL;
}
