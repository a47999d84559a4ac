/* Optimisers (SGD with momentum, Adam, AdamW) over a stage's flat
 * parameter buffer, and learning-rate schedules. The first n_decay
 * parameters are the conv and dense weights, the only ones decayed. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

void
mn_optim_default(struct mn_optim *o)
{
    memset(o, 0, sizeof *o);
    o->kind = MN_ADAM;
    o->momentum = 0.9f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
}

int
mn_optim_kind_from_string(const char *s)
{
    return !strcmp(s, "sgd") ? MN_SGD
           : !strcmp(s, "adam") ? MN_ADAM
           : !strcmp(s, "adamw") ? MN_ADAMW : -1;
}

int
mn_stage_step(struct mn_stage *s, const struct mn_optim *o, float lr)
{
    size_t n = s->n_params, nd = s->n_decay;
    if (s->opt_kind != (int) o->kind || !s->opt) {
        /* New or changed optimiser: fresh state. */
        free(s->opt);
        s->opt_floats = (o->kind == MN_SGD ? 1 : 2) * n;
        s->opt = calloc(s->opt_floats, sizeof(float));
        if (!s->opt) {
            s->opt_floats = 0;
            return ENOMEM;
        }
        s->opt_kind = (int) o->kind;
        s->opt_step = 0;
    }
    s->opt_step++;
    float *p = s->params;
    const float *g = s->grads;
    float wd = o->weight_decay;
    if (o->kind == MN_SGD) {
        float *buf = s->opt, mu = o->momentum;
        bool first = s->opt_step == 1, nest = o->nesterov;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float d = g[i] + (i < nd ? wd * p[i] : 0.0f);
            if (mu != 0.0f) {
                buf[i] = first ? d : mu * buf[i] + d;
                d = nest ? d + mu * buf[i] : buf[i];
            }
            p[i] -= lr * d;
        }
        return 0;
    }
    float *m = s->opt, *v = s->opt + n;
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    float bc1 = 1.0f - powf(b1, (float) s->opt_step);
    float sbc2 = sqrtf(1.0f - powf(b2, (float) s->opt_step));
    float step = lr / bc1;
    bool decoupled = o->kind == MN_ADAMW;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float d = g[i];
        if (i < nd) {
            if (decoupled) {
                p[i] *= 1.0f - lr * wd;
            } else {
                d += wd * p[i];
            }
        }
        m[i] = b1 * m[i] + (1.0f - b1) * d;
        v[i] = b2 * v[i] + (1.0f - b2) * d * d;
        p[i] -= step * m[i] / (sqrtf(v[i]) / sbc2 + eps);
    }
    return 0;
}

int
mn_lr_kind_from_string(const char *s)
{
    return !strcmp(s, "constant") ? MN_LR_CONSTANT
           : !strcmp(s, "cosine") ? MN_LR_WARMUP_COSINE
           : !strcmp(s, "onecycle") ? MN_LR_ONECYCLE : -1;
}

/* Cosine from a (t = 0) to b (t = 1). */
static double
cos_anneal(double a, double b, double t)
{
    return b + (a - b) * 0.5 * (1.0 + cos(M_PI * t));
}

float
mn_lr_at(const struct mn_lr_schedule *s, long step)
{
    double lr = s->lr_max;
    long total = s->total_steps > 0 ? s->total_steps : 1;
    if (step < 0) {
        step = 0;
    }
    switch (s->kind) {
    case MN_LR_CONSTANT:
        break;
    case MN_LR_WARMUP_COSINE:
        if (step < s->warmup_steps) {
            lr = s->lr_max * (double) (step + 1) / (double) s->warmup_steps;
        } else {
            long span = total - s->warmup_steps;
            double t = span > 0 ? (double) (step - s->warmup_steps) / span
                                : 1.0;
            lr = cos_anneal(s->lr_max, s->lr_min, t > 1.0 ? 1.0 : t);
        }
        break;
    case MN_LR_ONECYCLE: {
        /* torch.optim.lr_scheduler.OneCycleLR, anneal_strategy "cos". */
        double div = s->div_factor > 0 ? s->div_factor : 25.0;
        double fdiv = s->final_div > 0 ? s->final_div : 1e4;
        double pct = s->pct_start > 0 ? s->pct_start : 0.3;
        double lo = s->lr_max / div, end = lo / fdiv;
        double up = pct * (double) total - 1.0;
        double last = (double) total - 1.0;
        double t = (double) (step < total ? step : total - 1);
        if (t <= up) {
            lr = cos_anneal(lo, s->lr_max, up > 0 ? t / up : 1.0);
        } else {
            lr = cos_anneal(s->lr_max, end,
                            last > up ? (t - up) / (last - up) : 1.0);
        }
        break;
    }
    }
    return (float) lr;
}

long
mn_stage_optim_steps(const struct mn_stage *s)
{
    return s->opt ? s->opt_step : 0;
}
