/* Finite-difference gradient checks of every layer and of a whole stage.
 *
 * Each layer's output is reduced to L = sum(out * R) with a fixed random R
 * (so dL/dout = R), its backward is run with dout = R, and every gradient
 * element (tiny shapes) is compared with the central difference
 * (L(x+h) - L(x-h)) / 2h. Tolerance: |analytic - numeric| <=
 * 2e-3 * max|numeric| + 2e-2 * |numeric| (float forward, double L).
 * Whole stages: a few coordinates per tensor, 3e-2 * max + 5e-2, the
 * better of two step sizes (ReLU6 kinks); test_kernels_golden checks the
 * same gradients exactly against PyTorch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kernels_check.h"
#include "layers.h"
#include "model.h"

#define H_STEP 1e-2f

/* The function under test: fills its output and returns L. */
struct fd_case {
    double (*loss)(struct fd_case *);
    float *out, *R;
    size_t nout;
    /* layer inputs/params and shapes, used by the loss functions */
    float *x, *w, *b, *g, *be, *mean, *invstd, *rm, *rv;
    size_t N, H, W, C, Cin, Cout, stride, P, M, F, K;
    uint32_t *labels;
};

static double
dot_out(struct fd_case *c)
{
    double L = 0.0;
    for (size_t i = 0; i < c->nout; i++) {
        L += (double) c->out[i] * c->R[i];
    }
    return L;
}

/* Checks analytic 'grad' of the n values at 'p' against finite differences
 * of c->loss. Returns the worst tolerance ratio. */
static double
fd_check(const char *what, struct fd_case *c, float *p, const float *grad,
         size_t n, float h)
{
    float *num = malloc(n * sizeof *num);
    double maxabs = 0.0;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + h;
        double lp = c->loss(c);
        p[i] = keep - h;
        double lm = c->loss(c);
        p[i] = keep;
        num[i] = (float) ((lp - lm) / (2.0 * h));
        maxabs = fabs(num[i]) > maxabs ? fabs(num[i]) : maxabs;
    }
    double worst = kc_compare(what, grad, num, n, 2e-3 * maxabs + 1e-6,
                              2e-2);
    free(num);
    return worst;
}

/* ---- stem -------------------------------------------------------------------*/

static double
stem_loss(struct fd_case *c)
{
    stemconv3x3s2_forward(c->out, c->x, c->w, c->N, c->H, c->W,
                          c->Cin, c->Cout);
    return dot_out(c);
}

static void
check_stem(size_t Cin)
{
    uint64_t s = 11 + Cin;
    struct fd_case c = {.loss = stem_loss, .N = 2, .H = 7, .W = 6,
                        .Cin = Cin, .Cout = 4};
    size_t Ho = 4, Wo = 3, nw = c.Cout * 9 * Cin;
    c.nout = c.N * Ho * Wo * c.Cout;
    c.x = kc_randn(c.N * c.H * c.W * Cin, &s, 1, 0);
    c.w = kc_randn(nw, &s, 0.5f, 0);
    c.R = kc_randn(c.nout, &s, 1, 0);
    c.out = malloc(c.nout * sizeof(float));
    float *dw = malloc(nw * sizeof *dw);
    stem_loss(&c);
    stemconv3x3s2_backward(dw, c.R, c.x, c.N, c.H, c.W, Cin, c.Cout);
    assert_true(fd_check(Cin == 1 ? "stem (Cin 1) dw" : "stem (Cin 3) dw",
                         &c, c.w, dw, nw, H_STEP) <= 1.0);
    free(c.x), free(c.w), free(c.R), free(c.out), free(dw);
}

static void
test_stem(void **state)
{
    check_stem(1);
    check_stem(3);
}

/* ---- depthwise ----------------------------------------------------------------*/

static double
dw_loss(struct fd_case *c)
{
    dwconv3x3_forward(c->out, c->x, c->w, c->N, c->H, c->W, c->C, c->stride);
    return dot_out(c);
}

static void
check_dw(size_t stride)
{
    uint64_t s = 21 + stride;
    struct fd_case c = {.loss = dw_loss, .N = 2, .H = 5, .W = 6, .C = 3,
                        .stride = stride};
    size_t Ho = (c.H - 1) / stride + 1, Wo = (c.W - 1) / stride + 1;
    size_t nx = c.N * c.H * c.W * c.C;
    c.nout = c.N * Ho * Wo * c.C;
    c.x = kc_randn(nx, &s, 1, 0);
    c.w = kc_randn(9 * c.C, &s, 0.5f, 0);
    c.R = kc_randn(c.nout, &s, 1, 0);
    c.out = malloc(c.nout * sizeof(float));
    float *dx = malloc(nx * sizeof *dx), *dw = malloc(9 * c.C * sizeof *dw);
    dwconv3x3_backward(dx, dw, c.R, c.x, c.w, c.N, c.H, c.W, c.C, stride);
    char what[64];
    snprintf(what, sizeof what, "dwconv s%zu dx", stride);
    assert_true(fd_check(what, &c, c.x, dx, nx, H_STEP) <= 1.0);
    snprintf(what, sizeof what, "dwconv s%zu dw", stride);
    assert_true(fd_check(what, &c, c.w, dw, 9 * c.C, H_STEP) <= 1.0);
    /* din = NULL must give the same dw. */
    float *dw2 = malloc(9 * c.C * sizeof *dw2);
    dwconv3x3_backward(NULL, dw2, c.R, c.x, c.w, c.N, c.H, c.W, c.C, stride);
    assert_memory_equal(dw, dw2, 9 * c.C * sizeof *dw);
    free(c.x), free(c.w), free(c.R), free(c.out), free(dx), free(dw);
    free(dw2);
}

static void
test_dwconv(void **state)
{
    check_dw(1);
    check_dw(2);
}

/* The fused variant (previous BN + ReLU6 applied while reading) equals
 * the plain conv on the applied activations. */
static void
test_dwconv_fused(void **state)
{
    uint64_t s = 25;
    size_t N = 2, H = 6, W = 5, C = 24, stride = 2;
    size_t Ho = 3, Wo = 3, nx = N * H * W * C, ny = N * Ho * Wo * C;
    float *y = kc_randn(nx, &s, 3, 1), *w = kc_randn(9 * C, &s, 0.5f, 0);
    float *scale = kc_randn(C, &s, 0.5f, 1.5f), *shift = kc_randn(C, &s, 1, 2);
    float *g = kc_randn(ny, &s, 1, 0), *a = malloc(nx * sizeof *a);
    for (size_t i = 0; i < nx; i++) {
        a[i] = bnrelu6_apply(y[i], scale[i % C], shift[i % C]);
    }
    float *o1 = malloc(ny * 4), *o2 = malloc(ny * 4);
    float *d1 = malloc(nx * 4), *d2 = malloc(nx * 4);
    float *w1 = malloc(9 * C * 4), *w2 = malloc(9 * C * 4);
    dwconv3x3_forward(o1, a, w, N, H, W, C, stride);
    dwconv3x3_bnrelu6_forward(o2, y, scale, shift, w, N, H, W, C, stride);
    dwconv3x3_backward(d1, w1, g, a, w, N, H, W, C, stride);
    dwconv3x3_bnrelu6_backward(d2, w2, g, y, scale, shift, w, N, H, W, C,
                               stride);
    assert_true(kc_compare("dwconv fused fwd", o2, o1, ny, 1e-6, 1e-6) <= 1);
    assert_true(kc_compare("dwconv fused din", d2, d1, nx, 1e-6, 1e-6) <= 1);
    assert_true(kc_compare("dwconv fused dw", w2, w1, 9 * C, 1e-6, 1e-6)
                <= 1);
    free(y), free(w), free(scale), free(shift), free(g), free(a);
    free(o1), free(o2), free(d1), free(d2), free(w1), free(w2);
}

/* ---- pointwise ---------------------------------------------------------------*/

static double
pw_loss(struct fd_case *c)
{
    pwconv_forward(c->out, c->x, c->w, c->M, c->Cin, c->Cout);
    return dot_out(c);
}

static void
test_pwconv(void **state)
{
    uint64_t s = 31;
    struct fd_case c = {.loss = pw_loss, .M = 10, .Cin = 5, .Cout = 7};
    c.nout = c.M * c.Cout;
    c.x = kc_randn(c.M * c.Cin, &s, 1, 0);
    c.w = kc_randn(c.Cout * c.Cin, &s, 0.5f, 0);
    c.R = kc_randn(c.nout, &s, 1, 0);
    c.out = malloc(c.nout * sizeof(float));
    float *dx = malloc(c.M * c.Cin * sizeof *dx);
    float *dw = malloc(c.Cout * c.Cin * sizeof *dw);
    pwconv_backward(dx, dw, c.R, c.x, c.w, c.M, c.Cin, c.Cout);
    assert_true(fd_check("pwconv dx", &c, c.x, dx, c.M * c.Cin, H_STEP)
                <= 1.0);
    assert_true(fd_check("pwconv dw", &c, c.w, dw, c.Cout * c.Cin, H_STEP)
                <= 1.0);
    free(c.x), free(c.w), free(c.R), free(c.out), free(dx), free(dw);
}

/* ---- batch norm + ReLU6 ------------------------------------------------------*/

static double
bn_loss(struct fd_case *c)
{
    bnrelu6_forward_train(c->out, c->mean, c->invstd, c->rm, c->rv, c->x,
                          c->g, c->be, c->M, c->C, 0.1f, 1e-5f);
    return dot_out(c);
}

static void
test_bnrelu6(void **state)
{
    uint64_t s = 41;
    /* gamma 2.5, beta 3: some outputs clip at 0 and 6, most do not. */
    struct fd_case c = {.loss = bn_loss, .M = 24, .C = 3};
    c.nout = c.M * c.C;
    c.x = kc_randn(c.nout, &s, 2, 0.5f);
    c.g = kc_randn(c.C, &s, 0.3f, 2.5f);
    c.be = kc_randn(c.C, &s, 0.3f, 3.0f);
    c.R = kc_randn(c.nout, &s, 1, 0);
    c.out = malloc(c.nout * sizeof(float));
    c.mean = malloc(c.C * sizeof(float));
    c.invstd = malloc(c.C * sizeof(float));
    c.rm = calloc(c.C, sizeof(float));
    c.rv = calloc(c.C, sizeof(float));
    float *dx = malloc(c.nout * sizeof *dx), *dg = malloc(c.C * 4);
    float *db = malloc(c.C * 4);
    bn_loss(&c);
    size_t clipped = 0;
    for (size_t i = 0; i < c.nout; i++) {
        clipped += c.out[i] == 0.0f || c.out[i] == 6.0f;
    }
    assert_true(clipped > 0 && clipped < c.nout / 2);
    bnrelu6_backward(dx, dg, db, c.R, c.x, c.mean, c.invstd, c.g, c.be, c.M,
                     c.C);
    assert_true(fd_check("bnrelu6 dx", &c, c.x, dx, c.nout, 1e-3f) <= 1.0);
    assert_true(fd_check("bnrelu6 dgamma", &c, c.g, dg, c.C, 1e-3f) <= 1.0);
    assert_true(fd_check("bnrelu6 dbeta", &c, c.be, db, c.C, 1e-3f) <= 1.0);
    /* In place (dy aliasing da) gives the same. */
    float *inplace = malloc(c.nout * sizeof *inplace);
    memcpy(inplace, c.R, c.nout * sizeof *inplace);
    bnrelu6_backward(inplace, dg, db, inplace, c.x, c.mean, c.invstd, c.g,
                     c.be, c.M, c.C);
    assert_memory_equal(inplace, dx, c.nout * sizeof *dx);
    free(c.x), free(c.g), free(c.be), free(c.R), free(c.out), free(c.mean);
    free(c.invstd), free(c.rm), free(c.rv), free(dx), free(dg), free(db);
    free(inplace);
}

/* ---- pooling -------------------------------------------------------------------*/

static double
pool_loss(struct fd_case *c)
{
    avgpool_adaptive_forward(c->out, c->x, c->N, c->H, c->W, c->C, c->P);
    return dot_out(c);
}

static void
check_pool(size_t P)
{
    uint64_t s = 51 + P;
    struct fd_case c = {.loss = pool_loss, .N = 2, .H = 5, .W = 7, .C = 3,
                        .P = P};
    size_t nx = c.N * c.H * c.W * c.C;
    c.nout = c.N * P * P * c.C;
    c.x = kc_randn(nx, &s, 1, 0);
    c.R = kc_randn(c.nout, &s, 1, 0);
    c.out = malloc(c.nout * sizeof(float));
    float *dx = malloc(nx * sizeof *dx);
    avgpool_adaptive_backward(dx, c.R, c.N, c.H, c.W, c.C, P);
    char what[64];
    snprintf(what, sizeof what, "avgpool P=%zu dx", P);
    assert_true(fd_check(what, &c, c.x, dx, nx, H_STEP) <= 1.0);
    free(c.x), free(c.R), free(c.out), free(dx);
}

static void
test_pool(void **state)
{
    check_pool(1);
    check_pool(3);   /* overlapping bins on 5 and 7 */
}

/* ---- dense ---------------------------------------------------------------------*/

static double
dense_loss(struct fd_case *c)
{
    dense_forward(c->out, c->x, c->w, c->b, c->N, c->F, c->K);
    return dot_out(c);
}

static void
test_dense(void **state)
{
    uint64_t s = 61;
    struct fd_case c = {.loss = dense_loss, .N = 3, .F = 8, .K = 5};
    c.nout = c.N * c.K;
    c.x = kc_randn(c.N * c.F, &s, 1, 0);
    c.w = kc_randn(c.K * c.F, &s, 0.5f, 0);
    c.b = kc_randn(c.K, &s, 0.5f, 0);
    c.R = kc_randn(c.nout, &s, 1, 0);
    c.out = malloc(c.nout * sizeof(float));
    float *dx = malloc(c.N * c.F * 4), *dw = malloc(c.K * c.F * 4);
    float *db = malloc(c.K * 4);
    dense_backward(dx, dw, db, c.R, c.x, c.w, c.N, c.F, c.K);
    assert_true(fd_check("dense dx", &c, c.x, dx, c.N * c.F, H_STEP) <= 1.0);
    assert_true(fd_check("dense dw", &c, c.w, dw, c.K * c.F, H_STEP) <= 1.0);
    assert_true(fd_check("dense db", &c, c.b, db, c.K, H_STEP) <= 1.0);
    free(c.x), free(c.w), free(c.b), free(c.R), free(c.out), free(dx);
    free(dw), free(db);
}

/* ---- softmax cross-entropy ----------------------------------------------------*/

static double
xent_loss(struct fd_case *c)
{
    return softmax_xent_forward(c->out, c->x, c->labels, c->N, c->K, NULL,
                                NULL);
}

static void
test_softmax_xent(void **state)
{
    uint64_t s = 71;
    uint32_t labels[4] = {0, 3, 4, 2};
    struct fd_case c = {.loss = xent_loss, .N = 4, .K = 5, .labels = labels};
    c.x = kc_randn(c.N * c.K, &s, 2, 0);
    c.out = malloc(c.N * c.K * sizeof(float));
    float *dz = malloc(c.N * c.K * 4);
    xent_loss(&c);
    softmax_xent_backward(dz, c.out, labels, c.N, c.K);
    assert_true(fd_check("softmax_xent dlogits", &c, c.x, dz, c.N * c.K,
                         1e-2f) <= 1.0);
    /* Accuracy: make row 1 certainly right and row 0 certainly wrong. */
    c.x[1 * 5 + 3] = 50.0f;
    c.x[0 * 5 + 0] = -50.0f;
    size_t top1, top3;
    softmax_xent_forward(c.out, c.x, labels, c.N, c.K, &top1, &top3);
    assert_true(top1 >= 1 && top1 <= 3 && top3 >= top1 && top3 <= 3);
    free(c.x), free(c.out), free(dz);
}

/* ---- a whole stage -------------------------------------------------------------*/

struct stage_case {
    struct mn_stage *s;
    const float *x;
    const uint32_t *labels;
    size_t n;
};

static double
stage_loss(struct stage_case *sc)
{
    struct mn_metrics m;
    assert_int_equal(mn_stage_forward(sc->s, sc->x, sc->n, true), 0);
    assert_int_equal(mn_stage_loss(sc->s, sc->labels, &m, NULL, 0), 0);
    return m.loss;
}

/* Every parameter tensor of blocks 1-2 and 2-3: the 4 coordinates with the
 * largest gradient plus 2 random ones each. */
static void
check_stage(int first, int last)
{
    struct mn_config c;
    mn_config_default(&c);
    c.alpha = 0.125f, c.input_size = 12, c.in_channels = 3, c.classes = 4;
    c.head_pool = 2, c.batch_capacity = 4, c.seed = 5;
    struct mn_stage *s = mn_stage_create(&c, first, last, NULL, 0);
    assert_non_null(s);
    int h, w, ch;
    mn_stage_input_shape(s, &h, &w, &ch);
    uint64_t r = 81;
    size_t n = 4;
    float *x = kc_randn(n * h * w * ch, &r, 1, first == 1 ? 0 : 1.5f);
    uint32_t labels[4] = {1, 0, 3, 2};
    /* Non-trivial BN affine so the ReLU6 clip is exercised both ways. */
    for (size_t t = 0; t < mn_stage_tensor_count(s); t++) {
        const struct mn_tensor *tn = mn_stage_tensor(s, t);
        if (strstr(tn->name, "bn.gamma")) {
            for (size_t i = 0; i < tn->count; i++) {
                tn->data[i] = 1.5f + 0.5f * kc_rand(&r);
            }
        } else if (strstr(tn->name, "bn.beta")) {
            for (size_t i = 0; i < tn->count; i++) {
                tn->data[i] = 1.0f + kc_rand(&r);
            }
        } else if (!strcmp(tn->name, "head.w")) {
            for (size_t i = 0; i < tn->count; i++) {
                tn->data[i] = 0.3f * kc_rand(&r);
            }
        }
    }
    struct stage_case sc = {s, x, labels, n};
    struct mn_metrics m;
    assert_int_equal(mn_stage_forward(s, x, n, true), 0);
    assert_int_equal(mn_stage_backward(s, labels, &m, NULL, 0), 0);
    size_t np;
    float *grads = mn_stage_grads(s, &np);
    float *saved = malloc(np * sizeof *saved);
    memcpy(saved, grads, np * sizeof *saved);
    printf("  stage %d-%d: loss %.4f, %zu params\n", first, last, m.loss, np);
    double worst_all = 0.0;
    for (size_t t = 0; t < mn_stage_tensor_count(s); t++) {
        const struct mn_tensor *tn = mn_stage_tensor(s, t);
        if (!tn->grad) {
            continue;
        }
        const float *g = saved + (tn->grad - grads);
        size_t pick[6], k = 0;
        for (int j = 0; j < 4 && (size_t) j < tn->count; j++) {
            size_t best = 0;
            float bv = -1.0f;
            for (size_t i = 0; i < tn->count; i++) {
                bool used = false;
                for (size_t q = 0; q < k; q++) {
                    used |= pick[q] == i;
                }
                if (!used && fabsf(g[i]) > bv) {
                    bv = fabsf(g[i]), best = i;
                }
            }
            pick[k++] = best;
        }
        for (int j = 0; j < 2; j++) {
            pick[k++] = (size_t) ((kc_rand(&r) + 1.0f) * 0.5f * tn->count)
                        % tn->count;
        }
        float an[6], nu[6];
        double maxabs = 0.0;
        for (size_t q = 0; q < k; q++) {
            /* Two step sizes; the closer one counts: a ReLU6 kink within
             * reach of one step is unlikely to be within reach of both. */
            float *p = &tn->data[pick[q]], keep = *p;
            an[q] = g[pick[q]];
            for (int hs = 0; hs < 2; hs++) {
                float hh = hs ? 2.5e-4f : 1e-3f;
                *p = keep + hh;
                double lp = stage_loss(&sc);
                *p = keep - hh;
                double lm = stage_loss(&sc);
                *p = keep;
                float v = (float) ((lp - lm) / (2.0 * hh));
                if (!hs || fabsf(v - an[q]) < fabsf(nu[q] - an[q])) {
                    nu[q] = v;
                }
            }
            maxabs = fabs(an[q]) > maxabs ? fabs(an[q]) : maxabs;
        }
        double worst = kc_compare(tn->name, an, nu, k, 3e-2 * maxabs + 1e-5,
                                  5e-2);
        worst_all = fmax(worst_all, worst);
    }
    assert_true(worst_all <= 1.0);
    free(saved);
    free(x);
    mn_stage_destroy(s);
}

static void
test_stage_first(void **state)
{
    check_stage(1, 2);
}

static void
test_stage_middle(void **state)
{
    check_stage(2, 3);
}

int
main(void)
{
    mn_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stem),         cmocka_unit_test(test_dwconv),
        cmocka_unit_test(test_dwconv_fused),
        cmocka_unit_test(test_pwconv),       cmocka_unit_test(test_bnrelu6),
        cmocka_unit_test(test_pool),         cmocka_unit_test(test_dense),
        cmocka_unit_test(test_softmax_xent), cmocka_unit_test(test_stage_first),
        cmocka_unit_test(test_stage_middle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
