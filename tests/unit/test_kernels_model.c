/* The model API: block shapes, stage construction, deterministic and
 * split-invariant initialisation, training progress, schedules, and
 * checkpoints (round trips through memory and files, and refusals of
 * corrupt, truncated and mismatched ones). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "kernels_check.h"
#include "model.h"

static struct mn_config
small_config(void)
{
    struct mn_config c;
    mn_config_default(&c);
    c.alpha = 0.25f, c.input_size = 16, c.in_channels = 1, c.classes = 6;
    c.head_pool = 2, c.batch_capacity = 8, c.seed = 7;
    return c;
}

static void
test_block_shapes(void **state)
{
    struct mn_config c;
    mn_config_default(&c);   /* alpha 1, 64x64x1 */
    static const int side[14] = {64, 32, 16, 16, 8, 8, 4, 4, 4, 4, 4, 4, 2, 2};
    static const int ch[14] = {1,   64,  128, 128, 256, 256, 512,
                               512, 512, 512, 512, 512, 1024, 1024};
    for (int b = 0; b <= MN_BLOCKS; b++) {
        int h, w, k;
        assert_int_equal(mn_block_shape(&c, b, &h, &w, &k), 0);
        assert_int_equal(h, side[b]);
        assert_int_equal(w, side[b]);
        assert_int_equal(k, ch[b]);
    }
    int h, w, k;
    assert_int_equal(mn_block_shape(&c, 14, &h, &w, &k), EINVAL);
    /* 64x64 MobileNet v1: ~3.2M conv/BN parameters, ~93 MFLOP forward. */
    double f = 0;
    size_t p = 0;
    for (int b = 1; b <= MN_BLOCKS; b++) {
        f += mn_block_flops(&c, b);
        p += mn_block_params(&c, b);
    }
    printf("  full model: %.1f MFLOP forward, %zu params\n", f / 1e6, p);
    assert_true(f > 85e6 && f < 100e6);
    assert_true(p > 3.1e6 && p < 3.3e6);
}

static void
test_config_errors(void **state)
{
    struct mn_config c = small_config();
    char err[256];
    assert_int_equal(mn_config_check(&c, err, sizeof err), 0);
    c.in_channels = 2;
    assert_int_equal(mn_config_check(&c, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "in_channels"));
    c = small_config();
    assert_null(mn_stage_create(&c, 0, 3, err, sizeof err));
    assert_non_null(strstr(err, "block range"));
    assert_null(mn_stage_create(&c, 4, 3, err, sizeof err));
    assert_null(mn_stage_create(&c, 1, 14, err, sizeof err));
    c.alpha = 0;
    assert_null(mn_stage_create(&c, 1, 1, err, sizeof err));
    assert_non_null(strstr(err, "alpha"));
}

static void
test_stage_shapes(void **state)
{
    struct mn_config c = small_config();
    struct mn_stage *s = mn_stage_create(&c, 2, 3, NULL, 0);
    assert_non_null(s);
    int h, w, k;
    mn_stage_input_shape(s, &h, &w, &k);
    assert_true(h == 8 && w == 8 && k == 16);
    mn_stage_output_shape(s, &h, &w, &k);
    assert_true(h == 4 && w == 4 && k == 32);
    assert_int_equal(mn_stage_head_pool(s), 2);
    const struct mn_tensor *t = mn_stage_tensor_by_name(s, "head.w");
    assert_non_null(t);
    assert_true(t->dims[0] == 6 && t->dims[1] == 2 * 2 * 32);
    assert_null(mn_stage_tensor_by_name(s, "b1.stem.w"));
    mn_stage_destroy(s);
    /* The last blocks are 1x1 at 16x16 input: the head pool clamps to 1. */
    s = mn_stage_create(&c, 12, 13, NULL, 0);
    assert_int_equal(mn_stage_head_pool(s), 1);
    float x[8 * 1 * 1 * 64] = {0};
    assert_int_equal(mn_stage_forward(s, x, 9, true), EINVAL);
    assert_int_equal(mn_stage_forward(s, x, 0, true), EINVAL);
    mn_stage_destroy(s);
    mn_stage_destroy(NULL);

    /* Memory estimate: block 1 of the paper's model at batch 256 fits a Pi
     * 3 (1 GB) with room; the whole network needs more; bad input is 0. */
    struct mn_config p;
    mn_config_default(&p);
    size_t b1 = mn_stage_bytes(&p, 1, 1), all = mn_stage_bytes(&p, 1, 13);
    printf("  stage bytes at batch 256: block 1 %zu MB, blocks 1-13 %zu MB\n",
           b1 >> 20, all >> 20);
    assert_true(b1 > (200u << 20) && b1 < (512u << 20));
    assert_true(all > b1);
    assert_int_equal(mn_stage_bytes(&p, 3, 2), 0);
}

/* Block b's weights depend on the seed and b only, so 1-3 equals 1-1
 * followed by 2-3, and the seed changes them. */
static void
test_split_invariant_init(void **state)
{
    struct mn_config c = small_config();
    struct mn_stage *all = mn_stage_create(&c, 1, 3, NULL, 0);
    struct mn_stage *a = mn_stage_create(&c, 1, 1, NULL, 0);
    struct mn_stage *b = mn_stage_create(&c, 2, 3, NULL, 0);
    for (size_t i = 0; i < mn_stage_tensor_count(all); i++) {
        const struct mn_tensor *t = mn_stage_tensor(all, i);
        if (!strncmp(t->name, "head", 4)) {
            continue;
        }
        const struct mn_tensor *u = mn_stage_tensor_by_name(a, t->name);
        if (!u) {
            u = mn_stage_tensor_by_name(b, t->name);
        }
        assert_non_null(u);
        assert_memory_equal(t->data, u->data, t->count * sizeof(float));
    }
    c.seed = 8;
    struct mn_stage *d = mn_stage_create(&c, 1, 1, NULL, 0);
    const struct mn_tensor *t1 = mn_stage_tensor_by_name(a, "b1.stem.w");
    const struct mn_tensor *t2 = mn_stage_tensor_by_name(d, "b1.stem.w");
    assert_true(memcmp(t1->data, t2->data, t1->count * sizeof(float)) != 0);
    mn_stage_destroy(all), mn_stage_destroy(a), mn_stage_destroy(b);
    mn_stage_destroy(d);
}

/* Trains 'st' on a fixed batch for 'steps'; returns the last loss. */
static float
train_steps(struct mn_stage *st, const float *x, const uint32_t *labels,
            size_t n, int steps, const struct mn_optim *o, float lr)
{
    struct mn_metrics m = {0};
    for (int i = 0; i < steps; i++) {
        assert_int_equal(mn_stage_forward(st, x, n, true), 0);
        assert_int_equal(mn_stage_backward(st, labels, &m, NULL, 0), 0);
        assert_int_equal(mn_stage_step(st, o, lr), 0);
    }
    return m.loss;
}

/* Blockwise: stage 2-3 learns from stage 1's detached output; e2e: one
 * stage over all 13 blocks. Both fit a small fixed batch. */
static void
test_training_progress(void **state)
{
    struct mn_config c = small_config();
    uint64_t r = 3;
    size_t n = 8;
    float *x = kc_randn(n * 16 * 16, &r, 1, 0);
    uint32_t labels[8] = {0, 1, 2, 3, 4, 5, 0, 1};
    struct mn_optim o;
    mn_optim_default(&o);
    struct mn_stage *s1 = mn_stage_create(&c, 1, 1, NULL, 0);
    struct mn_stage *s2 = mn_stage_create(&c, 2, 3, NULL, 0);
    struct mn_metrics m0, m1, m2;
    assert_int_equal(mn_stage_forward(s1, x, n, true), 0);
    assert_int_equal(mn_stage_loss(s1, labels, &m0, NULL, 0), 0);
    for (int i = 0; i < 30; i++) {
        mn_stage_forward(s1, x, n, true);
        mn_stage_backward(s1, labels, &m1, NULL, 0);
        mn_stage_step(s1, &o, 3e-3f);
        mn_stage_forward(s2, mn_stage_output(s1), n, true);
        mn_stage_backward(s2, labels, &m2, NULL, 0);
        mn_stage_step(s2, &o, 3e-3f);
    }
    printf("  blockwise: loss %.3f -> head1 %.3f head2 %.3f (%zu/%zu)\n",
           m0.loss, m1.loss, m2.loss, m2.correct, m2.n);
    assert_true(m1.loss < 0.75f * m0.loss && m2.loss < 0.25f * m0.loss);
    assert_int_equal(m2.correct, n);

    struct mn_stage *e2e = mn_stage_create(&c, 1, MN_BLOCKS, NULL, 0);
    float first = train_steps(e2e, x, labels, n, 1, &o, 3e-3f);
    float last = train_steps(e2e, x, labels, n, 30, &o, 3e-3f);
    printf("  e2e: loss %.3f -> %.3f\n", first, last);
    assert_true(last < 0.5f * first);
    /* Eval mode uses running statistics and does not allow backward. */
    assert_int_equal(mn_stage_forward(e2e, x, n, false), 0);
    assert_int_equal(mn_stage_loss(e2e, labels, &m0, NULL, 0), 0);
    char err[128];
    assert_int_equal(mn_stage_backward(e2e, labels, &m0, err, sizeof err),
                     EINVAL);
    uint32_t bad[8] = {0, 1, 2, 3, 4, 6, 0, 1};
    assert_int_equal(mn_stage_loss(e2e, bad, &m0, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "label 6 of row 5"));
    mn_stage_destroy(s1), mn_stage_destroy(s2), mn_stage_destroy(e2e);
    free(x);
}

/* Work is chunked by problem size, not by thread count: 1 and 2 threads
 * give bit-identical training (what lets devices with different core
 * counts reproduce the single-process trainer). */
static void
test_thread_count_invariance(void **state)
{
    struct mn_config c = small_config();
    c.batch_capacity = 8;
    uint64_t r = 9;
    size_t n = 8;
    float *x = kc_randn(n * 16 * 16, &r, 1, 0);
    uint32_t labels[8] = {5, 4, 3, 2, 1, 0, 1, 2};
    struct mn_optim o;
    mn_optim_default(&o);
    float *p[2];
    size_t np = 0;
    struct mn_stage *st[2];
    for (int t = 0; t < 2; t++) {
        mn_set_threads(t + 1);
        st[t] = mn_stage_create(&c, 1, 4, NULL, 0);
        train_steps(st[t], x, labels, n, 3, &o, 1e-3f);
        p[t] = mn_stage_params(st[t], &np);
    }
    mn_set_threads(2);
    assert_memory_equal(p[0], p[1], np * sizeof(float));
    mn_stage_destroy(st[0]), mn_stage_destroy(st[1]);
    free(x);
}

/* A batch smaller than the capacity behaves like a full batch of a stage
 * made for that size (BN statistics over the rows given, nothing more). */
static void
test_partial_batch(void **state)
{
    struct mn_config c = small_config();
    uint64_t r = 13;
    float *x = kc_randn(3 * 16 * 16, &r, 1, 0);
    uint32_t labels[3] = {1, 2, 3};
    struct mn_stage *big = mn_stage_create(&c, 1, 2, NULL, 0);
    c.batch_capacity = 3;
    struct mn_stage *small = mn_stage_create(&c, 1, 2, NULL, 0);
    struct mn_metrics mb, ms;
    assert_int_equal(mn_stage_forward(big, x, 3, true), 0);
    assert_int_equal(mn_stage_forward(small, x, 3, true), 0);
    assert_memory_equal(mn_stage_logits(big), mn_stage_logits(small),
                        3 * 6 * sizeof(float));
    assert_int_equal(mn_stage_backward(big, labels, &mb, NULL, 0), 0);
    assert_int_equal(mn_stage_backward(small, labels, &ms, NULL, 0), 0);
    assert_true(mb.loss == ms.loss && mb.n == 3);
    size_t np;
    float *gb = mn_stage_grads(big, &np), *gs = mn_stage_grads(small, &np);
    assert_memory_equal(gb, gs, np * sizeof(float));
    mn_stage_destroy(big), mn_stage_destroy(small);
    free(x);
}

static void
test_schedules(void **state)
{
    struct mn_lr_schedule s = {.kind = MN_LR_WARMUP_COSINE, .lr_max = 0.1f,
                               .lr_min = 0.001f, .warmup_steps = 10,
                               .total_steps = 110};
    assert_float_equal(mn_lr_at(&s, 0), 0.01f, 1e-6);
    assert_float_equal(mn_lr_at(&s, 9), 0.1f, 1e-6);
    assert_float_equal(mn_lr_at(&s, 10), 0.1f, 1e-6);
    assert_float_equal(mn_lr_at(&s, 60), 0.0505f, 1e-5);
    assert_float_equal(mn_lr_at(&s, 110), 0.001f, 1e-6);
    assert_float_equal(mn_lr_at(&s, 500), 0.001f, 1e-6);
    s.kind = MN_LR_CONSTANT;
    assert_float_equal(mn_lr_at(&s, 77), 0.1f, 0);
    assert_int_equal(mn_lr_kind_from_string("onecycle"), MN_LR_ONECYCLE);
    assert_int_equal(mn_lr_kind_from_string("cosine"), MN_LR_WARMUP_COSINE);
    assert_int_equal(mn_lr_kind_from_string("step"), -1);
    assert_int_equal(mn_optim_kind_from_string("adamw"), MN_ADAMW);
    assert_int_equal(mn_optim_kind_from_string("lion"), -1);
}

static void
test_checkpoint_round_trip(void **state)
{
    struct mn_config c = small_config();
    uint64_t r = 5;
    size_t n = 4;
    float *x = kc_randn(n * 8 * 8 * 16, &r, 2, 2);
    uint32_t labels[4] = {1, 2, 3, 4};
    struct mn_optim o;
    mn_optim_default(&o);
    struct mn_stage *a = mn_stage_create(&c, 2, 3, NULL, 0);
    train_steps(a, x, labels, n, 3, &o, 1e-3f);

    /* Memory, with optimiser state: b continues exactly like a. */
    uint8_t *buf;
    size_t len;
    assert_int_equal(mn_stage_save_buf(a, true, &buf, &len), 0);
    c.seed = 99;   /* different init, overwritten by the load */
    struct mn_stage *b = mn_stage_create(&c, 2, 3, NULL, 0);
    char err[256] = "";
    assert_int_equal(mn_stage_load_buf(b, buf, len, err, sizeof err), 0);
    train_steps(a, x, labels, n, 2, &o, 1e-3f);
    train_steps(b, x, labels, n, 2, &o, 1e-3f);
    size_t np;
    float *pa = mn_stage_params(a, &np), *pb = mn_stage_params(b, &np);
    assert_memory_equal(pa, pb, np * sizeof *pa);
    const struct mn_tensor *ra = mn_stage_tensor_by_name(a, "b3.pw.bn.rvar");
    const struct mn_tensor *rb = mn_stage_tensor_by_name(b, "b3.pw.bn.rvar");
    assert_memory_equal(ra->data, rb->data, ra->count * sizeof(float));

    struct mn_config ci;
    int first, last;
    assert_int_equal(mn_checkpoint_info(buf, len, &ci, &first, &last, err,
                                        sizeof err), 0);
    assert_true(first == 2 && last == 3 && ci.classes == 6
                && ci.alpha == 0.25f && ci.head_pool == 2);

    /* The CRC that names a checkpoint on the wire is its trailer, and two
     * checkpoints of the same stage a step apart have different names. */
    uint32_t trailer = buf[len - 4] | (uint32_t) buf[len - 3] << 8
                       | (uint32_t) buf[len - 2] << 16
                       | (uint32_t) buf[len - 1] << 24;
    assert_int_equal(mn_checkpoint_crc(buf, len), trailer);
    uint8_t *buf2;
    size_t len2;
    assert_int_equal(mn_stage_save_buf(a, true, &buf2, &len2), 0);
    assert_int_equal(len2, len);
    assert_int_not_equal(mn_checkpoint_crc(buf2, len2),
                         mn_checkpoint_crc(buf, len));
    free(buf2);
    assert_int_equal(mn_checkpoint_crc(buf, 3), 0);

    /* Every single flipped byte and every truncation is refused, and the
     * stage is left as it was. */
    float *before = malloc(np * sizeof *before);
    memcpy(before, pb, np * sizeof *before);
    size_t probes[] = {0, 9, 20, 60, 200, len / 2, len - 5, len - 1};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        buf[probes[i]] ^= 0x10;
        assert_int_not_equal(mn_stage_load_buf(b, buf, len, err, sizeof err),
                             0);
        buf[probes[i]] ^= 0x10;
    }
    assert_non_null(strstr(err, "CRC32"));
    for (size_t cut = 0; cut < len; cut += len / 7 + 1) {
        assert_int_not_equal(mn_stage_load_buf(b, buf, cut, err, sizeof err),
                             0);
    }
    assert_memory_equal(before, pb, np * sizeof *before);
    free(before);

    /* Mismatches: other blocks, other config. */
    struct mn_stage *other = mn_stage_create(&c, 2, 4, NULL, 0);
    assert_int_equal(mn_stage_load_buf(other, buf, len, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "blocks 2-3"));
    mn_stage_destroy(other);
    struct mn_config c2 = c;
    c2.classes = 7;
    other = mn_stage_create(&c2, 2, 3, NULL, 0);
    assert_int_equal(mn_stage_load_buf(other, buf, len, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "classes 6"));
    mn_stage_destroy(other);
    free(buf);

    /* File, without optimiser state. */
    char path[] = "/tmp/et_ckpt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mn_stage_save(a, path, false, err, sizeof err), 0);
    struct mn_stage *f = mn_stage_create(&c, 2, 3, NULL, 0);
    assert_int_equal(mn_stage_load(f, path, err, sizeof err), 0);
    float *pf = mn_stage_params(f, &np);
    pa = mn_stage_params(a, &np);
    assert_memory_equal(pa, pf, np * sizeof *pa);
    unlink(path);
    assert_int_equal(mn_stage_load(f, path, err, sizeof err), ENOENT);
    assert_non_null(strstr(err, path));
    /* Not a checkpoint at all. */
    uint8_t junk[64] = "hello";
    assert_int_equal(mn_stage_load_buf(f, junk, sizeof junk, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "magic"));
    mn_stage_destroy(a), mn_stage_destroy(b), mn_stage_destroy(f);
    free(x);
}

int
main(void)
{
    mn_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_shapes),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_stage_shapes),
        cmocka_unit_test(test_split_invariant_init),
        cmocka_unit_test(test_training_progress),
        cmocka_unit_test(test_thread_count_invariance),
        cmocka_unit_test(test_partial_batch),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_checkpoint_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
