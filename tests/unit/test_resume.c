/* Resuming a stage from a replicated checkpoint: the controller's store
 * (controller/ckptstore.h: checks, eviction, choosing the epoch boundary
 * every stage can resume from) and the agent's checks of the checkpoint
 * the controller sends (agent/resume.h), then the stage loader refusing
 * a checkpoint of another model. Real checkpoints of a small stage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckpt_id.h"
#include "ckptstore.h"
#include "model.h"
#include "resume.h"

#define RUN 0x1234abcdULL

static struct mn_config
small_config(float alpha)
{
    struct mn_config c;
    mn_config_default(&c);
    c.alpha = alpha;
    c.input_size = 32;
    c.in_channels = 1;
    c.classes = 10;
    c.head_pool = 2;
    c.batch_capacity = 4;
    c.seed = 7;
    return c;
}

/* The checkpoint bytes of blocks first..last (malloc'd). */
static uint8_t *
make_ckpt(float alpha, int first, int last, size_t *len)
{
    struct mn_config c = small_config(alpha);
    char err[256];
    struct mn_stage *s = mn_stage_create(&c, first, last, err, sizeof err);
    assert_non_null(s);
    /* One optimiser step: the checkpoint carries Adam's state and count. */
    struct mn_optim o;
    mn_optim_default(&o);
    assert_int_equal(mn_stage_step(s, &o, 1e-3f), 0);
    uint8_t *buf;
    assert_int_equal(mn_stage_save_buf(s, true, &buf, len), 0);
    mn_stage_destroy(s);
    return buf;
}

static uint32_t
crc(const uint8_t *b, size_t n)
{
    return (uint32_t) crc32(0, b, (uInt) n);
}

static int
put(struct ckptstore *st, uint64_t run, uint32_t first, uint32_t last,
    uint32_t epoch, const uint8_t *b, size_t n)
{
    char err[256];
    return ckptstore_put(st, "pi1", run, first, last, epoch, crc(b, n), b, n,
                         err, sizeof err);
}

static void
test_store_refuses_bad_copies(void **state)
{
    (void) state;
    struct ckptstore *st = ckptstore_create(2);
    size_t n;
    uint8_t *b = make_ckpt(0.25f, 1, 2, &n);
    char err[256];
    /* Wrong CRC in the frame. */
    assert_int_equal(ckptstore_put(st, "pi1", RUN, 1, 2, 1, crc(b, n) ^ 1,
                                   b, n, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "crc32"));
    /* Said to be blocks 1-3, holds 1-2. */
    assert_int_equal(put(st, RUN, 1, 3, 1, b, n), EINVAL);
    /* Epoch 0 is no boundary to resume at. */
    assert_int_equal(put(st, RUN, 1, 2, 0, b, n), EINVAL);
    /* A flipped byte inside: the file's own CRC catches it. */
    b[n / 2] ^= 0x40;
    assert_int_equal(ckptstore_put(st, "pi1", RUN, 1, 2, 1, crc(b, n), b, n,
                                   err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "corrupt"));
    assert_int_equal(ckptstore_count(st, NULL), 0);
    free(b);
    ckptstore_destroy(st);
}

static void
test_store_keeps_newest_and_one_run(void **state)
{
    (void) state;
    struct ckptstore *st = ckptstore_create(2);
    size_t n;
    uint8_t *b = make_ckpt(0.25f, 1, 2, &n);
    for (uint32_t e = 1; e <= 3; e++) {
        assert_int_equal(put(st, RUN, 1, 2, e, b, n), 0);
    }
    assert_null(ckptstore_get(st, RUN, 1, 2, 1));        /* evicted */
    const struct ckpt_entry *x = ckptstore_get(st, RUN, 1, 2, 3);
    assert_non_null(x);
    assert_int_equal(x->len, n);
    assert_memory_equal(x->buf, b, n);
    assert_string_equal(x->producer, "pi1");
    size_t bytes;
    assert_int_equal(ckptstore_count(st, &bytes), 2);
    assert_int_equal(bytes, 2 * n);
    /* Same epoch again replaces, not adds. */
    assert_int_equal(put(st, RUN, 1, 2, 3, b, n), 0);
    assert_int_equal(ckptstore_count(st, NULL), 2);
    /* A new run's checkpoint drops the old run's. */
    assert_int_equal(put(st, RUN + 1, 1, 2, 1, b, n), 0);
    assert_int_equal(ckptstore_count(st, NULL), 1);
    assert_null(ckptstore_get(st, RUN, 1, 2, 3));
    free(b);
    ckptstore_destroy(st);
}

static void
test_store_resume_epoch(void **state)
{
    (void) state;
    struct ckptstore *st = ckptstore_create(2);
    size_t n1, n2;
    uint8_t *b1 = make_ckpt(0.25f, 1, 2, &n1);
    uint8_t *b2 = make_ckpt(0.25f, 3, 13, &n2);
    const uint32_t ranges[2][2] = {{1, 2}, {3, 13}};
    assert_int_equal(ckptstore_resume_epoch(st, RUN, ranges, 2, 5), 0);
    assert_int_equal(put(st, RUN, 1, 2, 1, b1, n1), 0);
    assert_int_equal(put(st, RUN, 3, 13, 1, b2, n2), 0);
    assert_int_equal(put(st, RUN, 1, 2, 2, b1, n1), 0);
    /* Stage 2's epoch-2 copy is still on its way: boundary 1 is the
     * latest every stage can resume from. */
    assert_int_equal(ckptstore_resume_epoch(st, RUN, ranges, 2, 2), 1);
    assert_int_equal(put(st, RUN, 3, 13, 2, b2, n2), 0);
    assert_int_equal(ckptstore_resume_epoch(st, RUN, ranges, 2, 2), 2);
    /* Never past the boundary asked for. */
    assert_int_equal(ckptstore_resume_epoch(st, RUN, ranges, 2, 1), 1);
    /* A range nobody checkpointed (the stages changed): none. */
    const uint32_t other[2][2] = {{1, 3}, {4, 13}};
    assert_int_equal(ckptstore_resume_epoch(st, RUN, other, 2, 2), 0);
    assert_int_equal(ckptstore_resume_epoch(st, RUN + 1, ranges, 2, 2), 0);
    free(b1);
    free(b2);
    ckptstore_destroy(st);
}

/* An Assignment resuming blocks 1-2 of RUN at epoch 2 and the matching
 * Checkpoint meta for 'buf'. */
static void
resume_pair(Edgetrain__Assignment *a, Edgetrain__Checkpoint *c, char *id,
            const uint8_t *buf, size_t len)
{
    edgetrain__assignment__init(a);
    edgetrain__checkpoint__init(c);
    a->run_id = RUN;
    a->first_block = 1;
    a->last_block = 2;
    a->start_epoch = 2;
    et_ckpt_id(id, ET_CKPT_ID_LEN, RUN, 1, 2, 2);
    a->resume_from = id;
    c->name = "pi3";
    c->run_id = RUN;
    c->first_block = 1;
    c->last_block = 2;
    c->epoch = 2;
    c->crc32 = crc(buf, len);
}

static void
test_agent_checks_the_checkpoint(void **state)
{
    (void) state;
    size_t n;
    uint8_t *b = make_ckpt(0.25f, 1, 2, &n);
    Edgetrain__Assignment a;
    Edgetrain__Checkpoint c;
    char id[ET_CKPT_ID_LEN], err[300];
    resume_pair(&a, &c, id, b, n);
    assert_int_equal(agent_resume_check(&a, &c, b, n, err, sizeof err), 0);
    assert_int_equal(agent_resume_check(&a, NULL, b, n, err, sizeof err),
                     EINVAL);
    /* Another epoch than the assignment starts at. */
    c.epoch = 1;
    assert_int_equal(agent_resume_check(&a, &c, b, n, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "not"));
    c.epoch = 2;
    /* Named right but for other blocks than assigned. */
    a.last_block = 3;
    assert_int_equal(agent_resume_check(&a, &c, b, n, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "blocks 1-3"));
    a.last_block = 2;
    /* Damaged on the way. */
    b[10] ^= 1;
    assert_int_equal(agent_resume_check(&a, &c, b, n, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "corrupt"));
    free(b);
}

static void
test_stage_refuses_other_model(void **state)
{
    (void) state;
    size_t n;
    uint8_t *b = make_ckpt(0.5f, 1, 2, &n);     /* alpha 0.5 */
    struct mn_config c = small_config(0.25f);   /* stage alpha 0.25 */
    char err[256];
    struct mn_stage *s = mn_stage_create(&c, 1, 2, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(mn_stage_load_buf(s, b, n, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "alpha"));
    assert_int_equal(mn_stage_optim_steps(s), 0);
    free(b);
    /* The same model loads, optimiser state and step count included. */
    b = make_ckpt(0.25f, 1, 2, &n);
    assert_int_equal(mn_stage_load_buf(s, b, n, err, sizeof err), 0);
    assert_int_equal(mn_stage_optim_steps(s), 1);
    free(b);
    mn_stage_destroy(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_refuses_bad_copies),
        cmocka_unit_test(test_store_keeps_newest_and_one_run),
        cmocka_unit_test(test_store_resume_epoch),
        cmocka_unit_test(test_agent_checks_the_checkpoint),
        cmocka_unit_test(test_stage_refuses_other_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
