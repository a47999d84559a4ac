/* Every layer, a small whole MobileNet stage and the optimisers against
 * PyTorch 1.13 reference vectors (tests/golden/, made by gen_golden.py).
 *
 * Tolerances (|got - want| <= atol + rtol*|want|, atol relative to the
 * largest |want| of the tensor):
 *   layer forward and gradients  atol 1e-5*max, rtol 1e-4
 *   stage forward, loss          atol 1e-4*max, rtol 1e-3
 *   stage gradients              atol 1e-3*max, rtol 1e-2 (float32 sums
 *                                in a different order through ~9 layers)
 *   optimiser steps              atol 1e-5*max, rtol 1e-4 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "golden.h"
#include "kernels_check.h"
#include "layers.h"
#include "model.h"

#define LAYER_TOL 1e-5, 1e-4

static struct golden G;

/* Compares n floats at 'got' with golden tensor 'name'. */
static void
cmp(const char *name, const float *got, double atol_rel, double rtol)
{
    struct golden_tensor *t = golden_get(&G, name);
    assert_non_null(t);
    double maxabs = 0.0;
    for (size_t i = 0; i < t->count; i++) {
        double v = fabs(t->data[i]);   /* not fmax: GCC 12 aarch64 ICEs */
        maxabs = v > maxabs ? v : maxabs;
    }
    double r = kc_compare(name, got, t->data, t->count,
                          atol_rel * fmax(maxabs, 1e-3), rtol);
    assert_true(r <= 1.0);
}

static float *
buf(size_t n)
{
    return calloc(n, sizeof(float));
}

static void
test_stem(void **state)
{
    for (size_t cin = 1; cin <= 3; cin += 2) {
        char p[64];
        float *x, *w, *dy;
        snprintf(p, sizeof p, "stem%zu.x", cin);
        x = golden_data(&G, p);
        snprintf(p, sizeof p, "stem%zu.w", cin);
        w = golden_data(&G, p);
        snprintf(p, sizeof p, "stem%zu.dy", cin);
        dy = golden_data(&G, p);
        size_t N = 2, H = 7, W = 6, Cout = 4, M = N * 4 * 3;
        float *y = buf(M * Cout);
        float *dw = buf(Cout * 9 * cin);
        stemconv3x3s2_forward(y, x, w, N, H, W, cin, Cout);
        stemconv3x3s2_backward(dw, dy, x, N, H, W, cin, Cout);
        snprintf(p, sizeof p, "stem%zu.y", cin);
        cmp(p, y, LAYER_TOL);
        snprintf(p, sizeof p, "stem%zu.dw", cin);
        cmp(p, dw, LAYER_TOL);
        free(y), free(dw);
    }
}

static void
test_dwconv(void **state)
{
    for (size_t s = 1; s <= 2; s++) {
        char p[64];
#define GD(field) (snprintf(p, sizeof p, "dw%zu." field, s), golden_data(&G, p))
        float *x = GD("x"), *w = GD("w"), *dy = GD("dy");
        size_t N = 2, H = 5, W = 6, C = 3;
        size_t Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1;
        float *y = buf(N * Ho * Wo * C), *dx = buf(N * H * W * C);
        float *dw = buf(9 * C);
        dwconv3x3_forward(y, x, w, N, H, W, C, s);
        dwconv3x3_backward(dx, dw, dy, x, w, N, H, W, C, s);
        snprintf(p, sizeof p, "dw%zu.y", s);
        cmp(p, y, LAYER_TOL);
        snprintf(p, sizeof p, "dw%zu.dx", s);
        cmp(p, dx, LAYER_TOL);
        snprintf(p, sizeof p, "dw%zu.dw", s);
        cmp(p, dw, LAYER_TOL);
#undef GD
        free(y), free(dx), free(dw);
    }
}

static void
test_pwconv(void **state)
{
    size_t M = 2 * 3 * 4, Cin = 5, Cout = 7;
    float *y = buf(M * Cout), *dx = buf(M * Cin), *dw = buf(Cout * Cin);
    pwconv_forward(y, golden_data(&G, "pw.x"), golden_data(&G, "pw.w"), M,
                   Cin, Cout);
    pwconv_backward(dx, dw, golden_data(&G, "pw.dy"),
                    golden_data(&G, "pw.x"), golden_data(&G, "pw.w"), M, Cin,
                    Cout);
    cmp("pw.y", y, LAYER_TOL);
    cmp("pw.dx", dx, LAYER_TOL);
    cmp("pw.dw", dw, LAYER_TOL);
    free(y), free(dx), free(dw);
}

static void
test_bnrelu6(void **state)
{
    size_t M = 2 * 3 * 4, C = 3;
    float *y = buf(M * C), *dx = buf(M * C), *dg = buf(C), *db = buf(C);
    float *mean = buf(C), *invstd = buf(C), *rm = buf(C), *rv = buf(C);
    memcpy(rm, golden_data(&G, "bn.rmean0"), C * sizeof *rm);
    memcpy(rv, golden_data(&G, "bn.rvar0"), C * sizeof *rv);
    float *x = golden_data(&G, "bn.x"), *g = golden_data(&G, "bn.gamma");
    float *b = golden_data(&G, "bn.beta");
    bnrelu6_forward_train(y, mean, invstd, rm, rv, x, g, b, M, C, 0.1f,
                          1e-5f);
    bnrelu6_backward(dx, dg, db, golden_data(&G, "bn.dy"), x, mean, invstd,
                     g, b, M, C);
    cmp("bn.y", y, LAYER_TOL);
    cmp("bn.dx", dx, LAYER_TOL);
    cmp("bn.dgamma", dg, LAYER_TOL);
    cmp("bn.dbeta", db, LAYER_TOL);
    cmp("bn.rmean", rm, LAYER_TOL);
    cmp("bn.rvar", rv, LAYER_TOL);
    bnrelu6_forward_eval(y, x, g, b, rm, rv, M, C, 1e-5f);
    cmp("bn.y_eval", y, LAYER_TOL);
    free(y), free(dx), free(dg), free(db), free(mean), free(invstd);
    free(rm), free(rv);
}

static void
test_pool(void **state)
{
    for (size_t P = 1; P <= 3; P += 2) {
        char p[64];
        size_t N = 2, H = 5, W = 7, C = 3;
        float *y = buf(N * P * P * C), *dx = buf(N * H * W * C);
        snprintf(p, sizeof p, "pool%zu.x", P);
        avgpool_adaptive_forward(y, golden_data(&G, p), N, H, W, C, P);
        snprintf(p, sizeof p, "pool%zu.dy", P);
        avgpool_adaptive_backward(dx, golden_data(&G, p), N, H, W, C, P);
        snprintf(p, sizeof p, "pool%zu.y", P);
        cmp(p, y, LAYER_TOL);
        snprintf(p, sizeof p, "pool%zu.dx", P);
        cmp(p, dx, LAYER_TOL);
        free(y), free(dx);
    }
}

static void
test_dense(void **state)
{
    size_t N = 3, F = 8, K = 5;
    float *y = buf(N * K), *dx = buf(N * F), *dw = buf(K * F), *db = buf(K);
    float *x = golden_data(&G, "dense.x"), *w = golden_data(&G, "dense.w");
    dense_forward(y, x, w, golden_data(&G, "dense.b"), N, F, K);
    dense_backward(dx, dw, db, golden_data(&G, "dense.dy"), x, w, N, F, K);
    cmp("dense.y", y, LAYER_TOL);
    cmp("dense.dx", dx, LAYER_TOL);
    cmp("dense.dw", dw, LAYER_TOL);
    cmp("dense.db", db, LAYER_TOL);
    free(y), free(dx), free(dw), free(db);
}

static void
test_softmax_xent(void **state)
{
    size_t N = 4, K = 5;
    uint32_t labels[4];
    float *lf = golden_data(&G, "xent.labels");
    for (size_t i = 0; i < N; i++) {
        labels[i] = (uint32_t) lf[i];
    }
    float *probs = buf(N * K), *dz = buf(N * K);
    float loss = softmax_xent_forward(probs, golden_data(&G, "xent.logits"),
                                      labels, N, K, NULL, NULL);
    softmax_xent_backward(dz, probs, labels, N, K);
    cmp("xent.loss", &loss, LAYER_TOL);
    cmp("xent.dlogits", dz, LAYER_TOL);
    free(probs), free(dz);
}

static void
test_onecycle(void **state)
{
    struct mn_lr_schedule s = {.kind = MN_LR_ONECYCLE, .lr_max = 0.01f,
                               .total_steps = 20, .pct_start = 0.3f,
                               .div_factor = 25, .final_div = 1e4f};
    float lr[20];
    for (long i = 0; i < 20; i++) {
        lr[i] = mn_lr_at(&s, i);
    }
    cmp("onecycle.lr", lr, LAYER_TOL);
}

/* ---- whole stages ----------------------------------------------------------------*/

static void
check_stage(const char *file)
{
    struct golden g0 = G;
    assert_int_equal(golden_load(&G, file), 0);
    float *cfgv = golden_data(&G, "config");
    struct mn_config c;
    mn_config_default(&c);
    c.alpha = cfgv[0], c.input_size = (int) cfgv[1];
    c.in_channels = (int) cfgv[2], c.classes = (int) cfgv[3];
    c.head_pool = (int) cfgv[4], c.batch_capacity = (int) cfgv[5];
    int first = (int) cfgv[6], last = (int) cfgv[7];
    size_t n = (size_t) cfgv[5];
    printf("  %s: blocks %d-%d alpha %g input %d\n", file, first, last,
           c.alpha, c.input_size);
    char err[256] = "";
    struct mn_stage *s = mn_stage_create(&c, first, last, err, sizeof err);
    assert_non_null(s);

    /* Load every tensor (parameters and running stats) by name. */
    size_t nt = mn_stage_tensor_count(s);
    for (size_t i = 0; i < nt; i++) {
        const struct mn_tensor *t = mn_stage_tensor(s, i);
        char name[64];
        snprintf(name, sizeof name, "%s%s", t->name,
                 t->grad ? "" : "0");      /* rmean0 / rvar0 */
        struct golden_tensor *gt = golden_get(&G, name);
        assert_non_null(gt);
        assert_int_equal(gt->count, t->count);
        memcpy(t->data, gt->data, t->count * sizeof(float));
    }
    uint32_t labels[16];
    for (size_t i = 0; i < n; i++) {
        labels[i] = (uint32_t) golden_data(&G, "labels")[i];
    }
    struct mn_metrics m;
    assert_int_equal(mn_stage_forward(s, golden_data(&G, "x"), n, true), 0);
    assert_int_equal(mn_stage_backward(s, labels, &m, err, sizeof err), 0);
    cmp("out", mn_stage_output(s), 1e-4, 1e-3);
    cmp("logits", mn_stage_logits(s), 1e-4, 1e-3);
    cmp("loss", &m.loss, 1e-4, 1e-3);
    for (size_t i = 0; i < nt; i++) {
        const struct mn_tensor *t = mn_stage_tensor(s, i);
        char name[64];
        if (t->grad) {
            snprintf(name, sizeof name, "grad:%s", t->name);
            cmp(name, t->grad, 1e-3, 1e-2);
        } else {
            cmp(t->name, t->data, 1e-4, 1e-3);   /* updated running stats */
        }
    }
    /* Inference with the running statistics. */
    assert_int_equal(mn_stage_forward(s, golden_data(&G, "x"), n, false), 0);
    cmp("eval_logits", mn_stage_logits(s), 1e-4, 1e-3);
    assert_int_equal(mn_stage_backward(s, labels, &m, err, sizeof err),
                     EINVAL);    /* backward needs a training forward */

    /* Three optimiser steps on PyTorch's gradients (Adam amplifies the
     * float noise of near-zero gradients), from the same start. */
    size_t np;
    float *params = mn_stage_params(s, &np);
    float *start = malloc(np * sizeof *start);
    memcpy(start, params, np * sizeof *start);
    for (size_t i = 0; i < nt; i++) {
        const struct mn_tensor *t = mn_stage_tensor(s, i);
        char name[64];
        if (t->grad) {
            snprintf(name, sizeof name, "grad:%s", t->name);
            memcpy(t->grad, golden_data(&G, name), t->count * sizeof(float));
        }
    }
    const char *kinds[] = {"sgd", "adam", "adamw"};
    for (int k = 0; k < 3; k++) {
        struct mn_optim o;
        mn_optim_default(&o);
        o.kind = mn_optim_kind_from_string(kinds[k]);
        o.weight_decay = 0.05f;
        o.momentum = 0.9f;
        memcpy(params, start, np * sizeof *start);
        float lr = k == 0 ? 0.1f : 0.01f;
        for (int i = 0; i < 3; i++) {
            assert_int_equal(mn_stage_step(s, &o, lr), 0);
        }
        for (size_t i = 0; i < nt; i++) {
            const struct mn_tensor *t = mn_stage_tensor(s, i);
            char name[64];
            if (t->grad) {
                snprintf(name, sizeof name, "%s:%s", kinds[k], t->name);
                cmp(name, t->data, 1e-5, 1e-4);
            }
        }
    }
    free(start);
    mn_stage_destroy(s);
    golden_free(&G);
    G = g0;
}

static void
test_stage_1_3(void **state)
{
    check_stage("stage_1_3.bin");
}

static void
test_stage_2_4(void **state)
{
    check_stage("stage_2_4.bin");
}

int
main(void)
{
    mn_set_threads(2);
    if (golden_load(&G, "layers.bin")) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stem),         cmocka_unit_test(test_dwconv),
        cmocka_unit_test(test_pwconv),       cmocka_unit_test(test_bnrelu6),
        cmocka_unit_test(test_pool),         cmocka_unit_test(test_dense),
        cmocka_unit_test(test_softmax_xent), cmocka_unit_test(test_onecycle),
        cmocka_unit_test(test_stage_1_3),    cmocka_unit_test(test_stage_2_4),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    golden_free(&G);
    return rc;
}
