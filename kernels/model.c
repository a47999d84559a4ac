/* MobileNet v1 blocks and stages: building a stage, its forward and
 * backward passes. The layers are in the files listed in layers.h. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layers.h"
#include "model_internal.h"

/* MobileNet v1's depthwise-separable layers dw1..dw13: stride of the
 * depthwise conv and output channels of the pointwise conv at alpha 1. */
static const struct {
    int stride, out;
} dw_layers[MN_BLOCKS] = {
    {1, 64},  {2, 128}, {1, 128}, {2, 256},  {1, 256},  {2, 512}, {1, 512},
    {1, 512}, {1, 512}, {1, 512}, {1, 512},  {2, 1024}, {1, 1024},
};
#define STEM_OUT 32

static void prof_report(void);

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

static size_t
width(const struct mn_config *c, int channels)
{
    long v = lroundf(channels * c->alpha);
    return v < 1 ? 1 : (size_t) v;
}

void
mn_config_default(struct mn_config *c)
{
    memset(c, 0, sizeof *c);
    c->alpha = 1.0f;
    c->input_size = 64;
    c->in_channels = 1;
    c->classes = 340;
    c->head_pool = 4;
    c->batch_capacity = 256;
    c->threads = 1;
    c->seed = 1;
    c->bn_momentum = 0.1f;
    c->bn_eps = 1e-5f;
}

int
mn_config_check(const struct mn_config *c, char *err, size_t errlen)
{
    if (!(c->alpha > 0.0f && c->alpha <= 4.0f)) {
        set_err(err, errlen, "alpha %g out of range (0, 4]", c->alpha);
    } else if (c->input_size < 8 || c->input_size > 1024) {
        set_err(err, errlen, "input size %d out of range [8, 1024]",
                c->input_size);
    } else if (c->in_channels != 1 && c->in_channels != 3) {
        set_err(err, errlen, "in_channels %d: must be 1 or 3",
                c->in_channels);
    } else if (c->classes < 2 || c->classes > 100000) {
        set_err(err, errlen, "classes %d out of range [2, 100000]",
                c->classes);
    } else if (c->head_pool < 1 || c->head_pool > 64) {
        set_err(err, errlen, "head pool %d out of range [1, 64]",
                c->head_pool);
    } else if (c->batch_capacity < 1 || c->batch_capacity > 65536) {
        set_err(err, errlen, "batch capacity %d out of range [1, 65536]",
                c->batch_capacity);
    } else if (!(c->bn_momentum >= 0.0f && c->bn_momentum <= 1.0f)
               || !(c->bn_eps > 0.0f)) {
        set_err(err, errlen, "batch norm momentum %g / eps %g invalid",
                c->bn_momentum, c->bn_eps);
    } else {
        return 0;
    }
    return EINVAL;
}

int
mn_block_shape(const struct mn_config *c, int block, int *h, int *w, int *ch)
{
    if (block < 0 || block > MN_BLOCKS) {
        return EINVAL;
    }
    int side = c->input_size, chans = c->in_channels;
    if (block >= 1) {
        side = (side + 1) / 2;          /* stem, stride 2 */
    }
    for (int b = 1; b <= block; b++) {
        side = (side - 1) / dw_layers[b - 1].stride + 1;
        chans = (int) width(c, dw_layers[b - 1].out);
    }
    *h = *w = side;
    *ch = chans;
    return 0;
}

double
mn_block_flops(const struct mn_config *c, int block)
{
    if (block < 1 || block > MN_BLOCKS) {
        return 0.0;
    }
    int h, w, cin, ho, wo, cout;
    mn_block_shape(c, block - 1, &h, &w, &cin);
    mn_block_shape(c, block, &ho, &wo, &cout);
    double macs = 0.0;
    if (block == 1) {
        size_t s = width(c, STEM_OUT);
        int sh = (h + 1) / 2;
        macs += (double) sh * sh * s * 9 * cin;
        cin = (int) s;
    }
    macs += (double) ho * wo * cin * 9;          /* depthwise */
    macs += (double) ho * wo * cin * cout;       /* pointwise */
    return 2.0 * macs;
}

size_t
mn_block_params(const struct mn_config *c, int block)
{
    if (block < 1 || block > MN_BLOCKS) {
        return 0;
    }
    int h, w, cin, cout;
    mn_block_shape(c, block - 1, &h, &w, &cin);
    mn_block_shape(c, block, &h, &w, &cout);
    size_t n = 0;
    if (block == 1) {
        size_t s = width(c, STEM_OUT);
        n += s * 9 * (size_t) cin + 2 * s;
        cin = (int) s;
    }
    return n + 9 * (size_t) cin + 2 * (size_t) cin
           + (size_t) cin * (size_t) cout + 2 * (size_t) cout;
}

void
mn_set_threads(int n)
{
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int) cpus : 1;
    }
    omp_set_num_threads(n);
    /* gemm.c splits every GEMM across the n OpenMP threads and calls
     * OpenBLAS single-threaded on each share. */
    openblas_set_num_threads(1);
}

const char *
mn_blas_corename(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}

/* ---- deterministic initialisation ---------------------------------------*/

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Standard normal from two uniforms (Box-Muller). */
static float
normal(uint64_t *rng)
{
    double u1 = ((splitmix64(rng) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (splitmix64(rng) >> 11) * 0x1.0p-53;
    return (float) (sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static void
fill_normal(float *p, size_t n, float std, uint64_t seed, uint64_t salt)
{
    uint64_t rng = seed ^ (salt * 0xd1342543de82ef95ull);
    splitmix64(&rng);
    for (size_t i = 0; i < n; i++) {
        p[i] = std * normal(&rng);
    }
}

/* ---- stage construction ----------------------------------------------------*/

static void
add_tensor(struct mn_stage *s, const char *name, float *data, float *grad,
           int ndim, int d0, int d1, int d2, int d3)
{
    struct mn_tensor *t = &s->tensors[s->n_tensors];
    snprintf(s->names[s->n_tensors], sizeof s->names[0], "%s", name);
    t->name = s->names[s->n_tensors];
    t->data = data;
    t->grad = grad;
    t->ndim = ndim;
    int d[4] = {d0, d1, d2, d3};
    t->count = 1;
    for (int i = 0; i < 4; i++) {
        t->dims[i] = i < ndim ? d[i] : 0;
        t->count *= i < ndim ? (size_t) d[i] : 1;
    }
    s->n_tensors++;
}

static size_t
unit_weight_count(const struct mn_unit *u)
{
    switch (u->kind) {
    case MN_UNIT_STEM:
        return u->Cout * 9 * u->Cin;
    case MN_UNIT_DW:
        return 9 * u->Cout;
    case MN_UNIT_PW:
    default:
        return u->Cout * u->Cin;
    }
}

static const char *
unit_name(const struct mn_unit *u)
{
    return u->kind == MN_UNIT_STEM ? "stem" : u->kind == MN_UNIT_DW ? "dw"
                                                                     : "pw";
}

/* Whether unit i keeps its BN + ReLU6 output. A depthwise conv applies
 * its input's BN + ReLU6 while copying each image (bnrelu6_fold()), so
 * units followed by one (the stem, pointwise convs) only keep y: a write
 * and a read of their largest tensors saved, and a third of the
 * activation memory. The stage's last unit keeps a: it is the output. */
static bool
stores_a(const struct mn_stage *s, size_t i)
{
    return i + 1 >= s->n_units || s->units[i + 1].kind != MN_UNIT_DW;
}

/* Fills the units' shapes and the stage's sizes (s->cfg, first, last and
 * units set); '*nact' gets the floats of activations and '*maxact' the
 * largest single activation, both at batch capacity. */
static void
plan_stage(struct mn_stage *s, size_t *nact_out, size_t *maxact_out)
{
    const struct mn_config *c = &s->cfg;
    int first = s->first, last = s->last;
    /* Shapes. */
    int h = 0, w = 0, ch = 0;
    mn_block_shape(c, first - 1, &h, &w, &ch);
    s->in_h = h, s->in_w = w, s->in_c = ch;
    size_t H = h, W = w, C = ch, k = 0;
    for (int b = first; b <= last; b++) {
        struct mn_unit *u;
        if (b == 1) {
            u = &s->units[k++];
            u->kind = MN_UNIT_STEM, u->stride = 2;
            u->H = H, u->W = W, u->Cin = C;
            u->Ho = (H + 1) / 2, u->Wo = (W + 1) / 2;
            u->Cout = width(c, STEM_OUT);
            H = u->Ho, W = u->Wo, C = u->Cout;
            u->block = b;
        }
        u = &s->units[k++];
        u->kind = MN_UNIT_DW, u->stride = dw_layers[b - 1].stride;
        u->H = H, u->W = W, u->Cin = C;
        u->Ho = (H - 1) / u->stride + 1, u->Wo = (W - 1) / u->stride + 1;
        u->Cout = C;
        u->block = b;
        H = u->Ho, W = u->Wo;
        u = &s->units[k++];
        u->kind = MN_UNIT_PW, u->stride = 1;
        u->H = u->Ho = H, u->W = u->Wo = W, u->Cin = C;
        u->Cout = width(c, dw_layers[b - 1].out);
        u->block = b;
        C = u->Cout;
    }
    s->out_h = H, s->out_w = W, s->out_c = C;
    size_t side = H < W ? H : W;
    s->pool = (size_t) c->head_pool < side ? (size_t) c->head_pool : side;
    s->feat = s->pool * s->pool * C;
    s->classes = (size_t) c->classes;

    /* Flat parameters: decayed weights, then BN vectors and the bias. */
    size_t nw = 0, nv = 0, nb = 0;
    for (size_t i = 0; i < s->n_units; i++) {
        nw += unit_weight_count(&s->units[i]);
        nv += 2 * s->units[i].Cout;
        nb += 2 * s->units[i].Cout;
    }
    nw += s->classes * s->feat;
    nv += s->classes;
    s->n_decay = nw;
    s->n_params = nw + nv;
    s->n_bufs = nb;

    /* Activations: y (and a) per unit, BN stats. */
    size_t cap = (size_t) c->batch_capacity, nact = 0, maxact = 0;
    for (size_t i = 0; i < s->n_units; i++) {
        const struct mn_unit *u = &s->units[i];
        size_t sz = cap * u->Ho * u->Wo * u->Cout;
        nact += (stores_a(s, i) ? 2 : 1) * sz + 4 * u->Cout;
        maxact = sz > maxact ? sz : maxact;
    }
    *nact_out = nact;
    *maxact_out = maxact;
}

size_t
mn_stage_bytes(const struct mn_config *c, int first, int last)
{
    if (mn_config_check(c, NULL, 0) || first < 1 || last > MN_BLOCKS
        || first > last) {
        return 0;
    }
    struct mn_stage s = {.cfg = *c, .first = first, .last = last};
    s.n_units = (size_t) (last - first + 1) * 2 + (first == 1);
    s.units = calloc(s.n_units, sizeof *s.units);
    if (!s.units) {
        return 0;
    }
    size_t nact, maxact, cap = (size_t) c->batch_capacity;
    plan_stage(&s, &nact, &maxact);
    free(s.units);
    /* params, grads, Adam's two moments, running stats, activations, the
     * two gradient buffers, head buffers. */
    size_t floats = 4 * s.n_params + s.n_bufs + nact + 2 * maxact
                    + cap * (2 * s.feat + 3 * s.classes);
    return floats * sizeof(float);
}

struct mn_stage *
mn_stage_create(const struct mn_config *c, int first, int last, char *err,
                size_t errlen)
{
    if (mn_config_check(c, err, errlen)) {
        return NULL;
    }
    if (first < 1 || last > MN_BLOCKS || first > last) {
        set_err(err, errlen, "block range %d-%d invalid (blocks are 1-%d)",
                first, last, MN_BLOCKS);
        return NULL;
    }
    struct mn_stage *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *c;
    s->first = first;
    s->last = last;
    s->opt_kind = -1;
    s->n_units = (size_t) (last - first + 1) * 2 + (first == 1);
    s->units = calloc(s->n_units, sizeof *s->units);

    if (!s->units) {
        set_err(err, errlen, "out of memory");
        mn_stage_destroy(s);
        return NULL;
    }
    size_t nact, maxact, cap = (size_t) c->batch_capacity;
    plan_stage(s, &nact, &maxact);
    size_t nw = s->n_decay;
    s->params = calloc(s->n_params, sizeof(float));
    s->grads = calloc(s->n_params, sizeof(float));
    s->bufs = calloc(s->n_bufs, sizeof(float));
    s->act = malloc(nact * sizeof(float));
    s->g1 = malloc(maxact * sizeof(float));
    s->g2 = malloc(maxact * sizeof(float));
    s->pooled = malloc(cap * s->feat * sizeof(float));
    s->dpooled = malloc(cap * s->feat * sizeof(float));
    s->logits = malloc(cap * s->classes * sizeof(float));
    s->probs = malloc(cap * s->classes * sizeof(float));
    s->dlogits = malloc(cap * s->classes * sizeof(float));
    if (!s->units || !s->params || !s->grads || !s->bufs || !s->act || !s->g1
        || !s->g2 || !s->pooled || !s->dpooled || !s->logits || !s->probs
        || !s->dlogits) {
        set_err(err, errlen, "out of memory for blocks %d-%d at batch %d",
                first, last, c->batch_capacity);
        mn_stage_destroy(s);
        return NULL;
    }

    /* Views and tensor table. */
    float *pw = s->params, *pv = s->params + nw, *pb = s->bufs;
    float *gw = s->grads, *gv = s->grads + nw, *act = s->act;
    char name[32];
    for (size_t i = 0; i < s->n_units; i++) {
        struct mn_unit *u = &s->units[i];
        size_t n = unit_weight_count(u), sz = cap * u->Ho * u->Wo * u->Cout;
        u->w = pw, u->dw = gw;
        pw += n, gw += n;
        u->gamma = pv, u->dgamma = gv;
        u->beta = pv + u->Cout, u->dbeta = gv + u->Cout;
        pv += 2 * u->Cout, gv += 2 * u->Cout;
        u->run_mean = pb, u->run_var = pb + u->Cout;
        pb += 2 * u->Cout;
        u->y = act;
        act += sz;
        u->a = stores_a(s, i) ? act : NULL;
        act += u->a ? sz : 0;
        u->mean = act, u->invstd = act + u->Cout;
        u->scale = act + 2 * u->Cout, u->shift = act + 3 * u->Cout;
        act += 4 * u->Cout;
    }
    s->head_w = pw, s->head_dw = gw;
    s->head_b = pv, s->head_db = gv;

    for (size_t i = 0; i < s->n_units; i++) {
        struct mn_unit *u = &s->units[i];
        int co = (int) u->Cout, ci = (int) u->Cin;
        snprintf(name, sizeof name, "b%d.%s.w", u->block, unit_name(u));
        if (u->kind == MN_UNIT_STEM) {
            add_tensor(s, name, u->w, u->dw, 4, co, 3, 3, ci);
        } else if (u->kind == MN_UNIT_DW) {
            add_tensor(s, name, u->w, u->dw, 3, 3, 3, co, 0);
        } else {
            add_tensor(s, name, u->w, u->dw, 2, co, ci, 0, 0);
        }
    }
    add_tensor(s, "head.w", s->head_w, s->head_dw, 2, (int) s->classes,
               (int) s->feat, 0, 0);
    for (size_t i = 0; i < s->n_units; i++) {
        struct mn_unit *u = &s->units[i];
        snprintf(name, sizeof name, "b%d.%s.bn.gamma", u->block,
                 unit_name(u));
        add_tensor(s, name, u->gamma, u->dgamma, 1, (int) u->Cout, 0, 0, 0);
        snprintf(name, sizeof name, "b%d.%s.bn.beta", u->block, unit_name(u));
        add_tensor(s, name, u->beta, u->dbeta, 1, (int) u->Cout, 0, 0, 0);
    }
    add_tensor(s, "head.b", s->head_b, s->head_db, 1, (int) s->classes, 0, 0,
               0);
    for (size_t i = 0; i < s->n_units; i++) {
        struct mn_unit *u = &s->units[i];
        snprintf(name, sizeof name, "b%d.%s.bn.rmean", u->block,
                 unit_name(u));
        add_tensor(s, name, u->run_mean, NULL, 1, (int) u->Cout, 0, 0, 0);
        snprintf(name, sizeof name, "b%d.%s.bn.rvar", u->block, unit_name(u));
        add_tensor(s, name, u->run_var, NULL, 1, (int) u->Cout, 0, 0, 0);
    }

    /* Initialisation (He normal, fan-out, as torchvision's MobileNets;
     * head N(0, 0.01)), seeded per block and unit so any split of the
     * blocks into stages starts from the same weights. */
    for (size_t i = 0; i < s->n_units; i++) {
        struct mn_unit *u = &s->units[i];
        size_t fan_out = u->kind == MN_UNIT_PW ? u->Cout : 9 * u->Cout;
        fill_normal(u->w, unit_weight_count(u), sqrtf(2.0f / fan_out),
                    c->seed, (uint64_t) u->block * 8 + u->kind + 1);
        for (size_t j = 0; j < u->Cout; j++) {
            u->gamma[j] = 1.0f, u->beta[j] = 0.0f;
            u->run_mean[j] = 0.0f, u->run_var[j] = 1.0f;
        }
    }
    fill_normal(s->head_w, s->classes * s->feat, 0.01f, c->seed,
                1000 + (uint64_t) last);
    return s;
}

void
mn_stage_destroy(struct mn_stage *s)
{
    if (!s) {
        return;
    }
    prof_report();
    free(s->units);
    free(s->params);
    free(s->grads);
    free(s->bufs);
    free(s->opt);
    free(s->act);
    free(s->g1);
    free(s->g2);
    free(s->pooled);
    free(s->dpooled);
    free(s->logits);
    free(s->probs);
    free(s->dlogits);
    free(s);
}

const struct mn_config *
mn_stage_config(const struct mn_stage *s)
{
    return &s->cfg;
}

void
mn_stage_range(const struct mn_stage *s, int *first, int *last)
{
    *first = s->first;
    *last = s->last;
}

void
mn_stage_input_shape(const struct mn_stage *s, int *h, int *w, int *c)
{
    *h = (int) s->in_h, *w = (int) s->in_w, *c = (int) s->in_c;
}

void
mn_stage_output_shape(const struct mn_stage *s, int *h, int *w, int *c)
{
    *h = (int) s->out_h, *w = (int) s->out_w, *c = (int) s->out_c;
}

int
mn_stage_head_pool(const struct mn_stage *s)
{
    return (int) s->pool;
}

size_t
mn_stage_tensor_count(const struct mn_stage *s)
{
    return s->n_tensors;
}

const struct mn_tensor *
mn_stage_tensor(const struct mn_stage *s, size_t i)
{
    return i < s->n_tensors ? &s->tensors[i] : NULL;
}

const struct mn_tensor *
mn_stage_tensor_by_name(const struct mn_stage *s, const char *name)
{
    for (size_t i = 0; i < s->n_tensors; i++) {
        if (!strcmp(s->tensors[i].name, name)) {
            return &s->tensors[i];
        }
    }
    return NULL;
}

float *
mn_stage_params(struct mn_stage *s, size_t *n)
{
    *n = s->n_params;
    return s->params;
}

float *
mn_stage_grads(struct mn_stage *s, size_t *n)
{
    *n = s->n_params;
    return s->grads;
}

double
mn_stage_train_flops(const struct mn_stage *s)
{
    double f = 0.0;
    for (int b = s->first; b <= s->last; b++) {
        f += mn_block_flops(&s->cfg, b);
    }
    f += 2.0 * (double) s->feat * (double) s->classes;
    return 3.0 * f;
}

/* ---- forward and backward --------------------------------------------------*/

/* EDGETRAIN_PROFILE=1 makes every stage print, when destroyed, where its
 * time went (seconds per layer kind and direction). */
enum prof_slot {
    P_STEM_F, P_DW_F, P_PW_F, P_BN_F, P_HEAD_F,
    P_STEM_B, P_DW_B, P_PW_B, P_BN_B, P_HEAD_B, P_SLOTS
};
static const char *prof_names[P_SLOTS] = {
    "stem fwd", "dw fwd", "pw fwd", "bn+relu6 fwd", "head fwd",
    "stem bwd", "dw bwd", "pw bwd", "bn+relu6 bwd", "head bwd",
};
static double prof[P_SLOTS];
static int prof_on = -1;

static double
prof_tick(enum prof_slot slot, double t0)
{
    if (prof_on < 0) {
        const char *e = getenv("EDGETRAIN_PROFILE");
        prof_on = e && *e && strcmp(e, "0");
    }
    if (!prof_on) {
        return 0.0;
    }
    double t = omp_get_wtime();
    if (t0 > 0.0) {
        prof[slot] += t - t0;
    }
    return t;
}

static void
prof_report(void)
{
    if (prof_on <= 0) {
        return;
    }
    double total = 0.0;
    for (int i = 0; i < P_SLOTS; i++) {
        total += prof[i];
    }
    for (int i = 0; i < P_SLOTS; i++) {
        fprintf(stderr, "profile: %-13s %8.3f s %5.1f%%\n", prof_names[i],
                prof[i], total > 0 ? 100.0 * prof[i] / total : 0.0);
        prof[i] = 0.0;
    }
}

int
mn_stage_forward(struct mn_stage *s, const float *in, size_t n, bool train)
{
    if (n == 0 || n > (size_t) s->cfg.batch_capacity) {
        return EINVAL;
    }
    s->input = in;
    s->n = n;
    s->trained_forward = train;
    const float *x = in;
    const struct mn_unit *prev = NULL;
    for (size_t i = 0; i < s->n_units; i++) {
        struct mn_unit *u = &s->units[i];
        size_t M = n * u->Ho * u->Wo;
        double t0 = prof_tick(0, 0.0);
        bool fused = prev && !prev->a;   /* x is prev's y, BN pending */
        switch (u->kind) {
        case MN_UNIT_STEM:
            stemconv3x3s2_forward(u->y, x, u->w, n, u->H, u->W,
                                  u->Cin, u->Cout);
            break;
        case MN_UNIT_DW:
            dwconv3x3_bnrelu6_forward(u->y, x, fused ? prev->scale : NULL,
                                      fused ? prev->shift : NULL, u->w, n,
                                      u->H, u->W, u->Cin, u->stride);
            break;
        case MN_UNIT_PW:
            pwconv_forward(u->y, x, u->w, M, u->Cin, u->Cout);
            break;
        }
        t0 = prof_tick(P_STEM_F + u->kind, t0);
        if (!u->a) {
            /* Statistics only; the next depthwise conv applies them. */
            if (train) {
                bnrelu6_forward_train(NULL, u->mean, u->invstd, u->run_mean,
                                      u->run_var, u->y, u->gamma, u->beta, M,
                                      u->Cout, s->cfg.bn_momentum,
                                      s->cfg.bn_eps);
                bnrelu6_fold(u->scale, u->shift, u->gamma, u->beta, u->mean,
                             u->invstd, u->Cout);
            } else {
                bnrelu6_eval_invstd(u->invstd, u->run_var, u->Cout,
                                    s->cfg.bn_eps);
                bnrelu6_fold(u->scale, u->shift, u->gamma, u->beta,
                             u->run_mean, u->invstd, u->Cout);
            }
            prof_tick(P_BN_F, t0);
            x = u->y;
            prev = u;
            continue;
        }
        if (train) {
            bnrelu6_forward_train(u->a, u->mean, u->invstd, u->run_mean,
                                  u->run_var, u->y, u->gamma, u->beta, M,
                                  u->Cout, s->cfg.bn_momentum,
                                  s->cfg.bn_eps);
        } else {
            bnrelu6_forward_eval(u->a, u->y, u->gamma, u->beta, u->run_mean,
                                 u->run_var, M, u->Cout, s->cfg.bn_eps);
        }
        prof_tick(P_BN_F, t0);
        x = u->a;
        prev = u;
    }
    double t0 = prof_tick(0, 0.0);
    avgpool_adaptive_forward(s->pooled, x, n, s->out_h, s->out_w, s->out_c,
                             s->pool);
    dense_forward(s->logits, s->pooled, s->head_w, s->head_b, n, s->feat,
                  s->classes);
    prof_tick(P_HEAD_F, t0);
    return 0;
}

const float *
mn_stage_output(const struct mn_stage *s)
{
    return s->units[s->n_units - 1].a;
}

const float *
mn_stage_logits(const struct mn_stage *s)
{
    return s->logits;
}

int
mn_stage_loss(struct mn_stage *s, const uint32_t *labels,
              struct mn_metrics *m, char *err, size_t errlen)
{
    if (!s->n) {
        set_err(err, errlen, "loss requested before any forward pass");
        return EINVAL;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (labels[i] >= s->classes) {
            set_err(err, errlen, "label %u of row %zu out of range (%zu "
                    "classes)", labels[i], i, s->classes);
            return EINVAL;
        }
    }
    size_t top1, top3;
    float loss = softmax_xent_forward(s->probs, s->logits, labels, s->n,
                                      s->classes, &top1, &top3);
    if (m) {
        m->loss = loss;
        m->correct = top1;
        m->correct_top3 = top3;
        m->n = s->n;
    }
    return 0;
}

int
mn_stage_backward(struct mn_stage *s, const uint32_t *labels,
                  struct mn_metrics *m, char *err, size_t errlen)
{
    if (!s->trained_forward) {
        set_err(err, errlen, "backward needs a training-mode forward first");
        return EINVAL;
    }
    int e = mn_stage_loss(s, labels, m, err, errlen);
    if (e) {
        return e;
    }
    size_t n = s->n;
    double t0 = prof_tick(0, 0.0);
    softmax_xent_backward(s->dlogits, s->probs, labels, n, s->classes);
    dense_backward(s->dpooled, s->head_dw, s->head_db, s->dlogits, s->pooled,
                   s->head_w, n, s->feat, s->classes);
    float *g = s->g1, *gnext = s->g2;
    avgpool_adaptive_backward(g, s->dpooled, n, s->out_h, s->out_w, s->out_c,
                              s->pool);
    t0 = prof_tick(P_HEAD_B, t0);
    for (size_t i = s->n_units; i-- > 0;) {
        struct mn_unit *u = &s->units[i];
        size_t M = n * u->Ho * u->Wo;
        const struct mn_unit *prev = i ? &s->units[i - 1] : NULL;
        const float *x = !prev ? s->input : prev->a ? prev->a : prev->y;
        bool fused = prev && !prev->a;
        float *din = i ? gnext : NULL;   /* the stage input is a constant */
        bnrelu6_backward(g, u->dgamma, u->dbeta, g, u->y, u->mean, u->invstd,
                         u->gamma, u->beta, M, u->Cout);
        t0 = prof_tick(P_BN_B, t0);
        switch (u->kind) {
        case MN_UNIT_STEM:
            stemconv3x3s2_backward(u->dw, g, x, n, u->H, u->W, u->Cin,
                                   u->Cout);
            break;
        case MN_UNIT_DW:
            dwconv3x3_bnrelu6_backward(din, u->dw, g, x,
                                       fused ? prev->scale : NULL,
                                       fused ? prev->shift : NULL, u->w, n,
                                       u->H, u->W, u->Cin, u->stride);
            break;
        case MN_UNIT_PW:
            pwconv_backward(din, u->dw, g, x, u->w, M, u->Cin, u->Cout);
            break;
        }
        t0 = prof_tick(P_STEM_B + u->kind, t0);
        float *t = g;
        g = gnext;
        gnext = t;
    }
    return 0;
}
