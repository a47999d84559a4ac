/* Resuming a stage from a replicated checkpoint: the controller's store
 * (controller/ckptstore.h: checks, eviction, choosing the epoch boundary
 * every stage can resume from), its copies on disk read back after a
 * restart (controller/ckptdir.h: good, corrupt, truncated, foreign and
 * stale files), the agent's checks of the checkpoint the controller sends
 * and of its own copy (agent/resume.h: local hit, miss -> request), then
 * the stage loader refusing a checkpoint of another model. Real
 * checkpoints of a small stage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "agent.h"
#include "ckpt_id.h"
#include "ckptdir.h"
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
    return mn_checkpoint_crc(b, n);
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


static void
test_dir_parses_names(void **state)
{
    (void) state;
    char prod[64];
    uint64_t run;
    uint32_t f, l, e;
    assert_int_equal(ckptdir_parse_name("pi-2-00000000deadbeef-b3-13-e12.ckpt",
                                        prod, sizeof prod, &run, &f, &l, &e),
                     0);
    assert_string_equal(prod, "pi-2");
    assert_true(run == 0xdeadbeefULL && f == 3 && l == 13 && e == 12);
    static const char *const bad[] = {
        "pi1-00000000deadbeef-b3-13-e12.ckp",       /* suffix */
        "pi1-00000000deadbeef-b3-13-e12.ckpt.tmp",
        "-00000000deadbeef-b3-13-e12.ckpt",         /* no producer */
        "pi1-0000000deadbeef-b3-13-e12.ckpt",       /* 15 hex digits */
        "pi1-00000000DEADBEEF-b3-13-e12.ckpt",      /* upper case */
        "pi1-00000000deadbeef-b3-2-e12.ckpt",       /* last < first */
        "pi1-00000000deadbeef-b0-2-e1.ckpt",        /* block 0 */
        "pi1-00000000deadbeef-b3-13-e0.ckpt",       /* epoch 0 */
        "pi1-00000000deadbeef-b3-13-e1234567890.ckpt", /* too long */
        "pi1-00000000deadbeef-b3-13-e12x.ckpt",
        "pi1-00000000deadbeef-b+3-13-e12.ckpt",
        "notes.txt", ".ckpt", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ckptdir_parse_name(bad[i], prod, sizeof prod, &run,
                                            &f, &l, &e), EINVAL);
    }
    /* A producer longer than the caller's buffer. */
    assert_int_equal(ckptdir_parse_name("pi1-00000000deadbeef-b3-13-e1.ckpt",
                                        prod, 3, &run, &f, &l, &e), EINVAL);
}

static void
write_file(const char *dir, const char *name, const uint8_t *b, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static bool
exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

#define F(r, fst, lst, e) "pi1-" r "-b" #fst "-" #lst "-e" #e ".ckpt"
#define R1 "000000001234abcd"      /* RUN */
#define R2 "000000001234abce"      /* another run */

static void
test_dir_reload(void **state)
{
    (void) state;
    char dir[] = "/tmp/et-test-ckptdir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    size_t n1, n2;
    uint8_t *b1 = make_ckpt(0.25f, 1, 2, &n1);
    uint8_t *b2 = make_ckpt(0.25f, 3, 13, &n2);
    char err[256];
    /* What a controller wrote over 3 epochs: with keep 2, epoch 1 of each
     * range is deleted as epoch 3 is written. */
    for (uint32_t e = 1; e <= 3; e++) {
        assert_int_equal(ckptdir_write(dir, "pi1", RUN, 1, 2, e, b1, n1, 2,
                                       err, sizeof err), 0);
    }
    assert_false(exists(dir, F(R1, 1, 2, 1)));
    assert_true(exists(dir, F(R1, 1, 2, 2)));
    /* Stale: written by hand, older than the newest two (pruned on load). */
    write_file(dir, F(R1, 3, 13, 1), b2, n2);
    write_file(dir, F(R1, 3, 13, 2), b2, n2);
    write_file(dir, F(R1, 3, 13, 3), b2, n2);
    /* Corrupt: a flipped byte (the file's own CRC). */
    b2[n2 / 2] ^= 0x10;
    write_file(dir, F(R1, 3, 13, 4), b2, n2);
    b2[n2 / 2] ^= 0x10;
    /* Truncated. */
    write_file(dir, F(R1, 1, 2, 4), b1, n1 / 2);
    /* Foreign: not a checkpoint name; a checkpoint of other blocks than
     * its name says; an empty file; a write cut short (deleted). */
    write_file(dir, "notes.txt", (const uint8_t *) "hello", 5);
    write_file(dir, F(R1, 1, 3, 2), b1, n1);
    write_file(dir, F(R1, 5, 6, 2), b1, 0);
    write_file(dir, F(R1, 1, 2, 5) ".tmp", b1, n1 / 3);
    /* Another run's: valid, never loaded into this run, left alone. */
    write_file(dir, F(R2, 1, 2, 9), b1, n1);

    struct ckptdir_index ix;
    memset(&ix, 0, sizeof ix);
    assert_int_equal(ckptdir_scan(dir, &ix), 0);
    assert_int_equal(ix.n, 6);              /* 1-2 e2 e3, 3-13 e1-3, R2 */
    assert_int_equal(ix.skipped, 5);
    assert_false(exists(dir, F(R1, 1, 2, 5) ".tmp"));

    struct ckptstore *st = ckptstore_create(2);
    assert_int_equal(ckptdir_load(&ix, st, RUN, 2), 4);
    assert_int_equal(ckptstore_count(st, NULL), 4);
    const struct ckpt_entry *x = ckptstore_get(st, RUN, 3, 13, 3);
    assert_non_null(x);
    assert_string_equal(x->producer, "pi1");
    assert_int_equal(x->registration, 0);   /* from disk: always sent */
    assert_memory_equal(x->buf, b2, n2);
    assert_non_null(ckptstore_get(st, RUN, 1, 2, 2));
    assert_null(ckptstore_get(st, RUN, 3, 13, 1));
    const uint32_t ranges[2][2] = {{1, 2}, {3, 13}};
    assert_int_equal(ckptstore_resume_epoch(st, RUN, ranges, 2, 9), 3);
    /* The stale file is gone, the bad ones and the other run's stay. */
    assert_false(exists(dir, F(R1, 3, 13, 1)));
    assert_true(exists(dir, F(R1, 3, 13, 2)));
    assert_true(exists(dir, F(R1, 3, 13, 4)));
    assert_true(exists(dir, F(R2, 1, 2, 9)));
    ckptdir_index_clear(&ix);
    ckptstore_destroy(st);

    /* An unreadable directory is an error, not a crash. */
    memset(&ix, 0, sizeof ix);
    assert_int_equal(ckptdir_scan("/nonexistent/et-ckptdir", &ix), ENOENT);
    ckptdir_index_clear(&ix);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(b1);
    free(b2);
}

/* An unpacked copy of 'a' (what the I/O thread owns after decoding). */
static Edgetrain__Assignment *
unpacked(const Edgetrain__Assignment *a)
{
    uint8_t buf[512];
    size_t n = edgetrain__assignment__get_packed_size(a);
    assert_true(n <= sizeof buf);
    edgetrain__assignment__pack(a, buf);
    Edgetrain__Assignment *u = edgetrain__assignment__unpack(NULL, n, buf);
    assert_non_null(u);
    return u;
}

static void
test_agent_own_copy(void **state)
{
    (void) state;
    char dir[] = "/tmp/et-test-state-XXXXXX";
    assert_non_null(mkdtemp(dir));
    size_t n;
    uint8_t *b = make_ckpt(0.25f, 1, 2, &n);
    struct agent *ag = calloc(1, sizeof *ag);
    ag->opt.name = "pi3";
    ag->opt.state_dir = dir;
    Edgetrain__Assignment a;
    Edgetrain__Checkpoint c;
    char id[ET_CKPT_ID_LEN];
    resume_pair(&a, &c, id, b, n);
    a.resume_local = true;
    a.resume_crc32 = crc(b, n);
    /* The agent's own copies of epochs 1..3: the newest two stay. */
    for (uint32_t e = 1; e <= 3; e++) {
        assert_int_equal(agent_resume_save_local(dir, "pi3", &a, e, b, n), 0);
    }
    char path[512], id1[ET_CKPT_ID_LEN];
    et_ckpt_id(id1, sizeof id1, RUN, 1, 2, 1);
    agent_resume_local_path(path, sizeof path, dir, "pi3", id1);
    assert_int_not_equal(access(path, F_OK), 0);
    agent_resume_local_path(path, sizeof path, dir, "pi3", id);
    assert_int_equal(access(path, F_OK), 0);

    /* Hit: the own copy of epoch 2 is kept for the stage, nothing asked. */
    Edgetrain__Assignment *u = unpacked(&a);
    assert_true(agent_resume_prepare(ag, u));
    assert_null(ag->resume_pending);
    assert_int_equal(ag->resume_len, n);
    assert_memory_equal(ag->resume_buf, b, n);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    agent_resume_clear(ag);

    /* Miss (the controller's CRC differs from the file's): parked, asked
     * for once; the answer lets it go on. */
    a.resume_crc32 ^= 1;
    u = unpacked(&a);
    assert_false(agent_resume_prepare(ag, u));
    assert_ptr_equal(ag->resume_pending, u);
    assert_string_equal(ag->resume_asked, id);
    assert_null(ag->resume_buf);
    /* Asked already (the controller had none): goes on, starts fresh. */
    Edgetrain__Assignment *u2 = unpacked(&a);
    assert_true(agent_resume_prepare(ag, u2));
    protobuf_c_message_free_unpacked(&u2->base, NULL);
    agent_resume_drop_pending(ag);
    assert_null(ag->resume_pending);

    /* Miss (file gone), and the payload the controller sends matches. */
    a.resume_crc32 ^= 1;
    ag->resume_asked[0] = '\0';
    unlink(path);
    u = unpacked(&a);
    assert_false(agent_resume_prepare(ag, u));
    Edgetrain__Checkpoint *cm = edgetrain__checkpoint__unpack(
        NULL, 0, (const uint8_t *) "");
    cm->run_id = RUN;
    cm->first_block = 1;
    cm->last_block = 2;
    cm->epoch = 2;
    cm->crc32 = crc(b, n);
    uint8_t *copy = malloc(n);
    memcpy(copy, b, n);
    agent_resume_keep(ag, cm, copy, n);
    char err[300];
    assert_int_equal(agent_resume_check(ag->resume_pending, ag->resume_meta,
                                        ag->resume_buf, ag->resume_len, err,
                                        sizeof err), 0);
    assert_true(agent_resume_prepare(ag, ag->resume_pending));
    agent_resume_drop_pending(ag);
    agent_resume_clear(ag);
    /* Without a state directory nothing is local. */
    ag->opt.state_dir = NULL;
    ag->resume_asked[0] = '\0';
    u = unpacked(&a);
    assert_false(agent_resume_prepare(ag, u));
    agent_resume_drop_pending(ag);
    free(ag);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(b);
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
        cmocka_unit_test(test_dir_parses_names),
        cmocka_unit_test(test_dir_reload),
        cmocka_unit_test(test_agent_own_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
