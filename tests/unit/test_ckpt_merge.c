/* A merged stage's checkpoint (controller/ckpt_merge.h, kernels'
 * mn_stage_merge()): assembled from the checkpoints of two adjacent
 * stages that trained a few steps, it computes what the two parts compute
 * one after the other (backbone output and the last part's head), carries
 * their optimiser state and step count, passes the controller's and the
 * agent's checks, and parts that do not belong together are refused with
 * a reason. Split again (controller/ckpt_split.h, mn_stage_split()): a
 * merge then a split gives back the parts' checkpoints byte for byte,
 * every sub-range split out of a merged stage computes what the merged
 * stage computes up to its last block, a missing head starts fresh, and
 * mismatches are refused with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckpt_id.h"
#include "ckpt_merge.h"
#include "ckpt_split.h"
#include "ckptstore.h"
#include "model.h"
#include "resume.h"

#define RUN 0x5eed0001ULL
#define BATCH 4
#define EPOCH 2

static struct mn_config
small_config(void)
{
    struct mn_config c;
    mn_config_default(&c);
    c.alpha = 0.25f;
    c.input_size = 32;
    c.in_channels = 1;
    c.classes = 10;
    c.head_pool = 2;
    c.batch_capacity = BATCH;
    c.seed = 11;
    return c;
}

/* A fixed input batch (BATCH, 32, 32, 1) and labels. */
static void
fixed_input(float *x, uint32_t *labels, uint32_t salt)
{
    uint32_t r = 12345u + salt * 7919u;
    for (size_t i = 0; i < BATCH * 32 * 32; i++) {
        r = r * 1103515245u + 12345u;
        x[i] = (float) ((r >> 8) & 0xffff) / 65536.0f - 0.3f;
    }
    for (size_t i = 0; i < BATCH; i++) {
        labels[i] = (uint32_t) (i * 3 + salt) % 10;
    }
}

struct parts {
    struct mn_stage *a, *b;      /* blocks 1-3 and 4-6 */
};

/* Trains blocks 1-3 and 4-6 as two pipeline stages for 'steps' steps with
 * Adam, so that weights, BN statistics, heads and optimiser state all
 * differ from their initial values. 'extra_b' more steps for the second
 * part (a step count mismatch). */
static struct parts
train_parts(int steps, int extra_b)
{
    struct mn_config c = small_config();
    char err[256];
    struct parts p = {mn_stage_create(&c, 1, 3, err, sizeof err),
                      mn_stage_create(&c, 4, 6, err, sizeof err)};
    assert_non_null(p.a);
    assert_non_null(p.b);
    struct mn_optim o;
    mn_optim_default(&o);
    float x[BATCH * 32 * 32];
    uint32_t y[BATCH];
    int h, w, ch;
    mn_stage_output_shape(p.a, &h, &w, &ch);
    float *mid = malloc(sizeof *mid * BATCH * h * w * ch);
    assert_non_null(mid);
    struct mn_metrics m;
    for (int s = 0; s < steps + extra_b; s++) {
        fixed_input(x, y, (uint32_t) s + 1);
        assert_int_equal(mn_stage_forward(p.a, x, BATCH, true), 0);
        memcpy(mid, mn_stage_output(p.a), sizeof *mid * BATCH * h * w * ch);
        if (s < steps) {
            assert_int_equal(mn_stage_backward(p.a, y, &m, err, sizeof err),
                             0);
            assert_int_equal(mn_stage_step(p.a, &o, 1e-2f), 0);
        }
        assert_int_equal(mn_stage_forward(p.b, mid, BATCH, true), 0);
        assert_int_equal(mn_stage_backward(p.b, y, &m, err, sizeof err), 0);
        assert_int_equal(mn_stage_step(p.b, &o, 1e-2f), 0);
    }
    free(mid);
    return p;
}

/* Entry 'x' holding stage 's' saved with its optimiser state (buf
 * malloc'd). */
static void
entry_of(struct ckpt_entry *x, const struct mn_stage *s, uint64_t run,
         uint32_t epoch)
{
    memset(x, 0, sizeof *x);
    int first, last;
    mn_stage_range(s, &first, &last);
    assert_int_equal(mn_stage_save_buf(s, true, &x->buf, &x->len), 0);
    x->run_id = run;
    x->first = (uint32_t) first;
    x->last = (uint32_t) last;
    x->epoch = epoch;
    x->crc32 = mn_checkpoint_crc(x->buf, x->len);
    snprintf(x->producer, sizeof x->producer, "pi%d", first);
}

/* Largest |a - b| over n floats, scaled by the largest |b| (>= 1). */
static double
worst_diff(const float *a, const float *b, size_t n)
{
    double worst = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double) a[i] - b[i]));
        scale = fmax(scale, fabs((double) b[i]));
    }
    return worst / scale;
}

static void
test_merged_stage_computes_what_the_parts_do(void **state)
{
    (void) state;
    struct parts p = train_parts(3, 0);
    struct ckpt_entry ea, eb;
    entry_of(&ea, p.a, RUN, EPOCH);
    entry_of(&eb, p.b, RUN, EPOCH);
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t crc = 0;
    char err[300];
    assert_int_equal(ckpt_merge(&ea, &eb, &buf, &len, &crc, err, sizeof err),
                     0);
    assert_int_equal(crc, mn_checkpoint_crc(buf, len));

    /* The controller keeps it like an agent's copy... */
    struct ckptstore *st = ckptstore_create(2);
    assert_int_equal(ckptstore_put(st, "pi1+pi4", RUN, 1, 6, EPOCH, crc, buf,
                                   len, err, sizeof err), 0);
    ckptstore_destroy(st);
    /* ...and the agent takes it for an Assignment of blocks 1-6 resuming
     * at the boundary, by its id. */
    Edgetrain__Assignment a = EDGETRAIN__ASSIGNMENT__INIT;
    Edgetrain__Checkpoint c = EDGETRAIN__CHECKPOINT__INIT;
    char id[ET_CKPT_ID_LEN];
    et_ckpt_id(id, sizeof id, RUN, 1, 6, EPOCH);
    assert_string_equal(id, "000000005eed0001-b1-6-e2");
    a.run_id = c.run_id = RUN;
    a.first_block = c.first_block = 1;
    a.last_block = c.last_block = 6;
    a.start_epoch = c.epoch = EPOCH;
    a.resume_from = id;
    c.crc32 = crc;
    assert_int_equal(agent_resume_check(&a, &c, buf, len, err, sizeof err),
                     0);

    struct mn_config cfg = small_config();
    struct mn_stage *m = mn_stage_create(&cfg, 1, 6, err, sizeof err);
    assert_non_null(m);
    assert_int_equal(mn_stage_load_buf(m, buf, len, err, sizeof err), 0);
    assert_int_equal(mn_stage_optim_steps(m), 3);

    /* Inference on a fixed batch: merged = part 1 then part 2. */
    float x[BATCH * 32 * 32];
    uint32_t y[BATCH];
    fixed_input(x, y, 99);
    int h, w, ch, h2, w2, ch2;
    mn_stage_output_shape(p.a, &h, &w, &ch);
    size_t nmid = (size_t) BATCH * h * w * ch;
    float *mid = malloc(sizeof *mid * nmid);
    assert_non_null(mid);
    assert_int_equal(mn_stage_forward(p.a, x, BATCH, false), 0);
    memcpy(mid, mn_stage_output(p.a), sizeof *mid * nmid);
    assert_int_equal(mn_stage_forward(p.b, mid, BATCH, false), 0);
    assert_int_equal(mn_stage_forward(m, x, BATCH, false), 0);
    mn_stage_output_shape(m, &h2, &w2, &ch2);
    mn_stage_output_shape(p.b, &h, &w, &ch);
    assert_true(h == h2 && w == w2 && ch == ch2);
    size_t nout = (size_t) BATCH * h * w * ch, nlog = BATCH * 10;
    double dout = worst_diff(mn_stage_output(m), mn_stage_output(p.b), nout);
    double dlog = worst_diff(mn_stage_logits(m), mn_stage_logits(p.b), nlog);
    print_message("merged 1-6 vs 1-3 then 4-6: output worst diff %.3g, "
                  "logits worst diff %.3g (relative to max |value|)\n",
                  dout, dlog);
    assert_true(dout <= 1e-6);
    assert_true(dlog <= 1e-6);

    /* Optimiser state: with zero gradients an Adam step moves every
     * parameter by its moments alone, so the merged stage's step equals
     * each part's step parameter for parameter. */
    struct mn_stage *all[3] = {m, p.a, p.b};
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        float *g = mn_stage_grads(all[i], &n);
        memset(g, 0, n * sizeof *g);
    }
    struct mn_optim o;
    mn_optim_default(&o);
    assert_int_equal(mn_stage_step(m, &o, 1e-2f), 0);
    assert_int_equal(mn_stage_step(p.a, &o, 1e-2f), 0);
    assert_int_equal(mn_stage_step(p.b, &o, 1e-2f), 0);
    double worst = 0;
    size_t compared = 0;
    for (size_t i = 0; i < mn_stage_tensor_count(m); i++) {
        const struct mn_tensor *t = mn_stage_tensor(m, i);
        int block = 0;
        bool head = !strncmp(t->name, "head.", 5);
        assert_true(head || sscanf(t->name, "b%d.", &block) == 1);
        const struct mn_stage *part = head || block >= 4 ? p.b : p.a;
        const struct mn_tensor *u = mn_stage_tensor_by_name(part, t->name);
        assert_non_null(u);
        assert_int_equal(u->count, t->count);
        double d = worst_diff(t->data, u->data, t->count);
        if (d > 1e-6) {
            print_message("  %s differs by %.3g\n", t->name, d);
        }
        worst = fmax(worst, d);
        compared++;
    }
    print_message("after one more step: %zu tensors, worst diff %.3g\n",
                  compared, worst);
    assert_int_equal(compared, mn_stage_tensor_count(m));
    assert_true(worst <= 1e-6);

    free(mid);
    free(buf);
    free(ea.buf);
    free(eb.buf);
    mn_stage_destroy(m);
    mn_stage_destroy(p.a);
    mn_stage_destroy(p.b);
}

static void
test_mismatched_parts_are_refused(void **state)
{
    (void) state;
    struct parts p = train_parts(2, 0);
    struct parts q = train_parts(2, 1);      /* part 2 one step ahead */
    struct ckpt_entry ea, eb, eb_ahead;
    entry_of(&ea, p.a, RUN, EPOCH);
    entry_of(&eb, p.b, RUN, EPOCH);
    entry_of(&eb_ahead, q.b, RUN, EPOCH);
    uint8_t *buf = NULL;
    size_t len;
    uint32_t crc;
    char err[300];

    assert_int_equal(ckpt_merge(&ea, &eb_ahead, &buf, &len, &crc, err,
                                sizeof err), EINVAL);
    print_message("step counts: %s\n", err);
    assert_non_null(strstr(err, "step counts differ"));
    assert_null(buf);

    eb.run_id = RUN + 1;
    assert_int_equal(ckpt_merge(&ea, &eb, &buf, &len, &crc, err, sizeof err),
                     EINVAL);
    print_message("runs: %s\n", err);
    assert_non_null(strstr(err, "of run"));
    eb.run_id = RUN;

    eb.epoch = EPOCH + 1;
    assert_int_equal(ckpt_merge(&ea, &eb, &buf, &len, &crc, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "after epoch"));
    eb.epoch = EPOCH;

    /* Blocks 4-6 before 1-3, and 1-3 with 1-3: not adjacent. */
    assert_int_equal(ckpt_merge(&eb, &ea, &buf, &len, &crc, err, sizeof err),
                     EINVAL);
    print_message("order: %s\n", err);
    assert_non_null(strstr(err, "not adjacent"));
    assert_int_equal(ckpt_merge(&ea, &ea, &buf, &len, &crc, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "not adjacent"));

    /* The entries' ranges say 1-3 and 4-6 but the bytes of part 2 are
     * 1-3's: refused. */
    struct ckpt_entry liar = eb;
    liar.buf = ea.buf;
    liar.len = ea.len;
    assert_int_equal(ckpt_merge(&ea, &liar, &buf, &len, &crc, err,
                                sizeof err), EINVAL);
    print_message("wrong bytes: %s\n", err);
    assert_non_null(strstr(err, "holds blocks 1-3"));
    assert_null(buf);

    /* Kernel level: parts that leave a gap in the merged range. */
    struct mn_config c = small_config();
    struct mn_stage *m = mn_stage_create(&c, 1, 7, err, sizeof err);
    assert_non_null(m);
    const struct mn_stage *parts[2] = {p.a, p.b};
    assert_int_equal(mn_stage_merge(m, parts, 2, err, sizeof err), EINVAL);
    print_message("gap: %s\n", err);
    assert_non_null(strstr(err, "end at block 6"));
    mn_stage_destroy(m);

    free(ea.buf);
    free(eb.buf);
    free(eb_ahead.buf);
    mn_stage_destroy(p.a);
    mn_stage_destroy(p.b);
    mn_stage_destroy(q.a);
    mn_stage_destroy(q.b);
}

/* A merged checkpoint of parts 'p' (epoch EPOCH), as the controller holds
 * it. */
static struct ckpt_entry
merged_entry(const struct parts *p, struct ckpt_entry *ea,
             struct ckpt_entry *eb)
{
    entry_of(ea, p->a, RUN, EPOCH);
    entry_of(eb, p->b, RUN, EPOCH);
    struct ckpt_entry m;
    memset(&m, 0, sizeof m);
    char err[300];
    assert_int_equal(ckpt_merge(ea, eb, &m.buf, &m.len, &m.crc32, err,
                                sizeof err), 0);
    m.run_id = RUN;
    m.first = 1;
    m.last = 6;
    m.epoch = EPOCH;
    snprintf(m.producer, sizeof m.producer, "pi1");
    return m;
}

/* Whether checkpoint bytes 'buf' are stage 's' saved with its optimiser
 * state: every parameter, statistic, optimiser float, the step count and
 * the shapes, byte for byte. */
static bool
same_bytes_as(const uint8_t *buf, size_t len, const struct mn_stage *s)
{
    uint8_t *want;
    size_t wlen;
    assert_int_equal(mn_stage_save_buf(s, true, &want, &wlen), 0);
    bool same = wlen == len && !memcmp(want, buf, len);
    free(want);
    return same;
}

static struct mn_stage *
load_bytes(const uint8_t *buf, size_t len, int first, int last)
{
    struct mn_config c = small_config();
    char err[256];
    struct mn_stage *s = mn_stage_create(&c, first, last, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(mn_stage_load_buf(s, buf, len, err, sizeof err), 0);
    return s;
}

static void
test_merge_then_split_gives_the_parts_back(void **state)
{
    (void) state;
    struct parts p = train_parts(3, 0);
    struct ckpt_entry ea, eb;
    struct ckpt_entry m = merged_entry(&p, &ea, &eb);
    struct ckpt_split_part sp[2];
    char err[400];
    /* The earlier part's head from its own checkpoint (the controller
     * keeps the one the merge was made of). */
    assert_int_equal(ckpt_split(&m, 3, &ea, 11, sp, err, sizeof err), 0);
    assert_int_equal(sp[0].first, 1);
    assert_int_equal(sp[0].last, 3);
    assert_int_equal(sp[1].first, 4);
    assert_int_equal(sp[1].last, 6);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(sp[i].crc, mn_checkpoint_crc(sp[i].buf,
                                                      sp[i].len));
        assert_int_equal(ckptstore_check(sp[i].buf, sp[i].len, sp[i].first,
                                         sp[i].last, err, sizeof err), 0);
    }
    bool same_a = same_bytes_as(sp[0].buf, sp[0].len, p.a);
    bool same_b = same_bytes_as(sp[1].buf, sp[1].len, p.b);
    print_message("merge then split: blocks 1-3 %s, 4-6 %s (%zu, %zu "
                  "bytes)\n", same_a ? "identical" : "DIFFER",
                  same_b ? "identical" : "DIFFER", sp[0].len, sp[1].len);
    assert_true(same_a);
    assert_true(same_b);
    ckpt_split_free(sp);

    /* Without the old head: the blocks come back exactly, the head is the
     * fresh one of the run's seed with no optimiser history (an Adam step
     * of zero gradients does not move it), the step count is kept. */
    assert_int_equal(ckpt_split(&m, 3, NULL, 11, sp, err, sizeof err), 0);
    struct mn_stage *a = load_bytes(sp[0].buf, sp[0].len, 1, 3);
    struct mn_config c = small_config();
    struct mn_stage *fresh = mn_stage_create(&c, 1, 3, err, sizeof err);
    assert_non_null(fresh);
    assert_int_equal(mn_stage_optim_steps(a), 3);
    size_t n;
    float *g = mn_stage_grads(a, &n);
    memset(g, 0, n * sizeof *g);
    struct mn_optim o;
    mn_optim_default(&o);
    const struct mn_tensor *hw = mn_stage_tensor_by_name(a, "head.w");
    float *before = malloc(hw->count * sizeof *before);
    assert_non_null(before);
    memcpy(before, hw->data, hw->count * sizeof *before);
    assert_int_equal(mn_stage_step(a, &o, 1e-2f), 0);
    size_t blocks = 0, heads = 0;
    for (size_t i = 0; i < mn_stage_tensor_count(a); i++) {
        const struct mn_tensor *t = mn_stage_tensor(a, i);
        if (!strncmp(t->name, "head.", 5)) {
            const struct mn_tensor *u = mn_stage_tensor_by_name(fresh,
                                                                t->name);
            assert_memory_equal(u->data, !strcmp(t->name, "head.w")
                                ? before : t->data, t->count * sizeof *u->data);
            heads++;
        } else if (!t->grad) {
            /* Running statistics: untouched by the step. */
            const struct mn_tensor *u = mn_stage_tensor_by_name(p.a, t->name);
            assert_memory_equal(u->data, t->data, t->count * sizeof *u->data);
            blocks++;
        }
    }
    assert_memory_equal(before, hw->data, hw->count * sizeof *before);
    print_message("fresh head: %zu head tensors as initialised, unmoved by "
                  "a zero-gradient step; %zu statistics tensors kept\n",
                  heads, blocks);
    assert_int_equal(heads, 2);
    assert_true(blocks > 0);
    free(before);
    mn_stage_destroy(a);
    mn_stage_destroy(fresh);
    ckpt_split_free(sp);

    free(m.buf);
    free(ea.buf);
    free(eb.buf);
    mn_stage_destroy(p.a);
    mn_stage_destroy(p.b);
}

static void
test_split_computes_what_the_merged_stage_does(void **state)
{
    (void) state;
    struct parts p = train_parts(3, 0);
    struct ckpt_entry ea, eb;
    struct ckpt_entry me = merged_entry(&p, &ea, &eb);
    struct mn_stage *m = load_bytes(me.buf, me.len, 1, 6);
    float x[BATCH * 32 * 32];
    uint32_t y[BATCH];
    fixed_input(x, y, 42);
    struct mn_config c = small_config();
    char err[256];
    /* Block by block: single-block stages split out of the merged one,
     * chained, and the stage of blocks 1..k split out of it, give the
     * same output after every block k; at block 6 the merged stage's own
     * output and logits. */
    const float *in = x;
    float *prev = NULL;
    double worst = 0;
    for (int k = 1; k <= 6; k++) {
        struct mn_stage *one = mn_stage_create(&c, k, k, err, sizeof err);
        struct mn_stage *upto = mn_stage_create(&c, 1, k, err, sizeof err);
        assert_non_null(one);
        assert_non_null(upto);
        assert_int_equal(mn_stage_split(one, m, NULL, err, sizeof err), 0);
        assert_int_equal(mn_stage_split(upto, m, NULL, err, sizeof err), 0);
        assert_int_equal(mn_stage_forward(one, in, BATCH, false), 0);
        assert_int_equal(mn_stage_forward(upto, x, BATCH, false), 0);
        int h, w, ch;
        mn_stage_output_shape(one, &h, &w, &ch);
        size_t nout = (size_t) BATCH * h * w * ch;
        double d = worst_diff(mn_stage_output(one), mn_stage_output(upto),
                              nout);
        worst = fmax(worst, d);
        free(prev);
        prev = malloc(nout * sizeof *prev);
        assert_non_null(prev);
        memcpy(prev, mn_stage_output(one), nout * sizeof *prev);
        in = prev;
        if (k == 3) {
            /* The earlier part before the merge computes it too. */
            assert_int_equal(mn_stage_forward(p.a, x, BATCH, false), 0);
            worst = fmax(worst, worst_diff(prev, mn_stage_output(p.a),
                                           nout));
        }
        if (k == 6) {
            assert_int_equal(mn_stage_forward(m, x, BATCH, false), 0);
            worst = fmax(worst, worst_diff(prev, mn_stage_output(m), nout));
            /* Same last block: the merged head, the same logits. */
            double dl = worst_diff(mn_stage_logits(one), mn_stage_logits(m),
                                   BATCH * 10);
            print_message("split block 6's logits vs merged: worst diff "
                          "%.3g\n", dl);
            assert_true(dl <= 1e-6);
        }
        mn_stage_destroy(one);
        mn_stage_destroy(upto);
    }
    print_message("blocks 1-6 split out of merged 1-6 one by one: output "
                  "after every block worst diff %.3g\n", worst);
    assert_true(worst <= 1e-6);
    free(prev);
    mn_stage_destroy(m);
    free(me.buf);
    free(ea.buf);
    free(eb.buf);
    mn_stage_destroy(p.a);
    mn_stage_destroy(p.b);
}

static void
test_mismatched_splits_are_refused(void **state)
{
    (void) state;
    struct parts p = train_parts(2, 0);
    struct ckpt_entry ea, eb;
    struct ckpt_entry m = merged_entry(&p, &ea, &eb);
    struct ckpt_split_part sp[2];
    char err[400];

    assert_int_equal(ckpt_split(&m, 6, &ea, 11, sp, err, sizeof err),
                     EINVAL);
    print_message("split point: %s\n", err);
    assert_non_null(strstr(err, "after block 6"));
    assert_null(sp[0].buf);

    /* A head after another block, of another run, of a later epoch. */
    assert_int_equal(ckpt_split(&m, 3, &eb, 11, sp, err, sizeof err),
                     EINVAL);
    print_message("head: %s\n", err);
    assert_non_null(strstr(err, "follows block 6, not block 3"));
    ea.run_id = RUN + 1;
    assert_int_equal(ckpt_split(&m, 3, &ea, 11, sp, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "of run"));
    ea.run_id = RUN;
    ea.epoch = EPOCH + 1;
    assert_int_equal(ckpt_split(&m, 3, &ea, 11, sp, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "after the merged checkpoint's epoch"));
    ea.epoch = EPOCH;

    /* The merged entry's bytes are not blocks 1-6. */
    struct ckpt_entry liar = m;
    liar.buf = ea.buf;
    liar.len = ea.len;
    assert_int_equal(ckpt_split(&liar, 3, &ea, 11, sp, err, sizeof err),
                     EINVAL);
    print_message("wrong bytes: %s\n", err);
    assert_non_null(strstr(err, "holds blocks 1-3"));
    assert_null(sp[0].buf);
    assert_null(sp[1].buf);

    /* Kernel level: a range outside the merged one, another model, a
     * head of another optimiser. */
    struct mn_config c = small_config();
    struct mn_stage *ms = load_bytes(m.buf, m.len, 1, 6);
    struct mn_stage *out = mn_stage_create(&c, 4, 7, err, sizeof err);
    assert_int_equal(mn_stage_split(out, ms, NULL, err, sizeof err), EINVAL);
    print_message("range: %s\n", err);
    assert_non_null(strstr(err, "not within blocks 1-6"));
    mn_stage_destroy(out);
    struct mn_config c20 = c;
    c20.classes = 20;
    out = mn_stage_create(&c20, 1, 3, err, sizeof err);
    assert_int_equal(mn_stage_split(out, ms, NULL, err, sizeof err), EINVAL);
    print_message("model: %s\n", err);
    assert_non_null(strstr(err, "another model"));
    mn_stage_destroy(out);
    struct mn_stage *sgd = mn_stage_create(&c, 1, 3, err, sizeof err);
    struct mn_optim o;
    mn_optim_default(&o);
    o.kind = MN_SGD;
    assert_int_equal(mn_stage_step(sgd, &o, 1e-2f), 0);
    out = mn_stage_create(&c, 1, 3, err, sizeof err);
    assert_int_equal(mn_stage_split(out, ms, sgd, err, sizeof err), EINVAL);
    print_message("optimiser: %s\n", err);
    assert_non_null(strstr(err, "different optimiser state"));
    mn_stage_destroy(out);
    mn_stage_destroy(sgd);
    mn_stage_destroy(ms);

    free(m.buf);
    free(ea.buf);
    free(eb.buf);
    mn_stage_destroy(p.a);
    mn_stage_destroy(p.b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merged_stage_computes_what_the_parts_do),
        cmocka_unit_test(test_mismatched_parts_are_refused),
        cmocka_unit_test(test_merge_then_split_gives_the_parts_back),
        cmocka_unit_test(test_split_computes_what_the_merged_stage_does),
        cmocka_unit_test(test_mismatched_splits_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
