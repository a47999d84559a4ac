/* Stage runner: stage-list parsing, block-wise steps that learn, and the
 * determinism the distributed agents rely on (a chain split across
 * "devices" that exchange copies of activations computes exactly what the
 * single-process chain computes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "stage_runner.h"
#include "threads.h"

static void
test_stage_list_parse(void **state)
{
    int r[MN_BLOCKS][2];
    size_t n;
    char err[256];
    assert_int_equal(stage_list_parse("1,2-3,4-5,6-11,12-13", r, MN_BLOCKS,
                                      &n, err, sizeof err), 0);
    assert_int_equal(n, 5);
    assert_int_equal(r[3][0], 6);
    assert_int_equal(r[3][1], 11);
    assert_int_equal(stage_list_parse("1-13", r, MN_BLOCKS, &n, err,
                                      sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(stage_list_parse("1,2-4", r, MN_BLOCKS, &n, err,
                                      sizeof err), 0);
    static const char *const bad[] = {
        "", "2-3", "1,3-4", "1,2-14", "1,,2", "1,2-", "1-3,3-4", "x", "1,",
        "1,3-2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(stage_list_parse(bad[i], r, MN_BLOCKS, &n, err,
                                          sizeof err), EINVAL);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(stage_list_parse("1,2,3", r, 2, &n, err, sizeof err),
                     EINVAL);
}

enum { N = 16, SIDE = 16, CLASSES = 4 };

static void
make_batch(float *x, uint32_t *labels, uint64_t seed)
{
    /* Class c: a bright quadrant c on noise, so the task is learnable. */
    uint64_t s = seed;
    for (size_t i = 0; i < N; i++) {
        labels[i] = (uint32_t) (i % CLASSES);
        for (size_t y = 0; y < SIDE; y++) {
            for (size_t xx = 0; xx < SIDE; xx++) {
                size_t q = (y >= SIDE / 2) * 2 + (xx >= SIDE / 2);
                float v = et_rng_uniform(&s) - 0.5f;
                x[(i * SIDE + y) * SIDE + xx] = v + (q == labels[i] ? 2 : 0);
            }
        }
    }
}

static void
config(struct mn_config *c)
{
    mn_config_default(c);
    c->alpha = 0.25f;
    c->input_size = SIDE;
    c->in_channels = 1;
    c->classes = CLASSES;
    c->head_pool = 2;
    c->batch_capacity = N;
    c->seed = 3;
}

static void
test_chain_learns_and_splits_exactly(void **state)
{
    struct mn_config c;
    config(&c);
    struct mn_optim o;
    mn_optim_default(&o);
    struct mn_lr_schedule sch = {.kind = MN_LR_CONSTANT, .lr_max = 0.01f};
    char err[256];
    /* Single process: stages 1 and 2-3 chained in memory.  "Devices": the
     * same stages, fed copies of the upstream output (as frames carry). */
    struct stage_runner *a1, *a2, *b1, *b2;
    assert_int_equal(stage_runner_create(&a1, &c, 1, 1, &o, &sch, err,
                                         sizeof err), 0);
    assert_int_equal(stage_runner_create(&a2, &c, 2, 3, &o, &sch, err,
                                         sizeof err), 0);
    assert_int_equal(stage_runner_create(&b1, &c, 1, 1, &o, &sch, err,
                                         sizeof err), 0);
    assert_int_equal(stage_runner_create(&b2, &c, 2, 3, &o, &sch, err,
                                         sizeof err), 0);
    int h, w, ch;
    mn_stage_output_shape(b1->stage, &h, &w, &ch);
    size_t out_n = (size_t) N * h * w * ch;
    float *wire = malloc(out_n * sizeof *wire);
    float x[N * SIDE * SIDE];
    uint32_t labels[N];
    struct mn_metrics first1 = {0}, m1, m2, mb2;
    for (int step = 0; step < 40; step++) {
        make_batch(x, labels, 100 + (uint64_t) (step % 4));
        const float *out;
        assert_int_equal(stage_runner_train_step(a1, x, labels, N, &out, &m1,
                                                 err, sizeof err), 0);
        assert_int_equal(stage_runner_train_step(a2, out, labels, N, NULL,
                                                 &m2, err, sizeof err), 0);
        if (!step) {
            first1 = m1;
        }
        assert_int_equal(stage_runner_train_step(b1, x, labels, N, &out,
                                                 NULL, err, sizeof err), 0);
        memcpy(wire, out, out_n * sizeof *wire);
        assert_int_equal(stage_runner_train_step(b2, wire, labels, N, NULL,
                                                 &mb2, err, sizeof err), 0);
        assert_true(m2.loss == mb2.loss);
    }
    assert_int_equal(a1->step, 40);
    assert_true(m1.loss < 0.5f * first1.loss);
    assert_int_equal(m1.correct, N);
    /* Bitwise equal parameters on both sides of the split. */
    size_t n1, n2;
    float *p1 = mn_stage_params(a2->stage, &n1);
    float *p2 = mn_stage_params(b2->stage, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(p1, p2, n1 * sizeof *p1);

    /* Evaluation accumulates per-head statistics. */
    struct stage_stats st = {0};
    const float *out;
    make_batch(x, labels, 999);
    assert_int_equal(stage_runner_eval_step(a1, x, labels, N, &out, &st, err,
                                            sizeof err), 0);
    assert_int_equal(st.n, N);
    assert_true(stage_stats_top1(&st) > 0.9);
    /* A bad label is an error with a message, not an abort. */
    labels[3] = 77;
    err[0] = '\0';
    assert_int_not_equal(stage_runner_train_step(a1, x, labels, N, NULL, NULL,
                                                 err, sizeof err), 0);
    assert_true(strlen(err) > 0);
    /* Too large a batch is refused. */
    assert_int_not_equal(stage_runner_eval_step(a1, x, NULL, N + 1, NULL,
                                                NULL, err, sizeof err), 0);
    free(wire);
    stage_runner_destroy(a1);
    stage_runner_destroy(a2);
    stage_runner_destroy(b1);
    stage_runner_destroy(b2);
    stage_runner_destroy(NULL);
}

int
main(void)
{
    train_threads_set(1, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_list_parse),
        cmocka_unit_test(test_chain_learns_and_splits_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
