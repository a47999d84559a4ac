/* The agent's Assignment check (agent/assign.c): what the controller sends
 * is accepted; each rule refuses with a message naming what is wrong; and
 * the model defaults are the compute thread's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "assign.h"
#include "model.h"

/* A middle stage of a three-stage run, as send_assignment() builds it. */
struct fixture {
    Edgetrain__Assignment a;
    Edgetrain__ModelConfig m;
    Edgetrain__Peer up, down, *ups[1], *downs[1];
    Edgetrain__SubStream s[2], *subs[2];
    uint8_t token[16];
};

static void
fixture_init(struct fixture *f)
{
    edgetrain__model_config__init(&f->m);
    f->m.alpha = 0.25f, f->m.input_size = 32, f->m.in_channels = 1;
    f->m.classes = 10, f->m.batch = 32, f->m.micro_batch = 8;
    f->m.epochs = 2, f->m.optimizer = "adam", f->m.schedule = "onecycle";
    f->m.lr = 0.004f, f->m.head_pool = 4;
    for (int i = 0; i < 2; i++) {
        edgetrain__sub_stream__init(&f->s[i]);
        f->s[i].id = (uint32_t) i;
        f->s[i].local_port = 41000 + (uint32_t) i;
        f->s[i].remote_port = 7103;
        f->s[i].weight = 0.5;
        f->subs[i] = &f->s[i];
    }
    edgetrain__peer__init(&f->up);
    edgetrain__peer__init(&f->down);
    f->up.name = "a1", f->up.data_addr = "127.0.0.1:7101";
    f->down.name = "a3", f->down.data_addr = "127.0.0.1:7103";
    f->down.n_substreams = 2, f->down.substreams = f->subs;
    f->ups[0] = &f->up, f->downs[0] = &f->down;
    memset(f->token, 0xab, sizeof f->token);
    edgetrain__assignment__init(&f->a);
    f->a.run_id = 7, f->a.generation = 1;
    f->a.first_block = 4, f->a.last_block = 8;
    f->a.stage_index = 1, f->a.stage_count = 3;
    f->a.model = &f->m;
    f->a.n_upstream = 1, f->a.upstream = f->ups;
    f->a.n_downstream = 1, f->a.downstream = f->downs;
    f->a.token.data = f->token, f->a.token.len = sizeof f->token;
}

/* Refused with EINVAL and a message containing 'what'. */
static void
assert_refused(const struct fixture *f, uint64_t memory, const char *what)
{
    char err[256] = "";
    assert_int_equal(agent_assignment_check(&f->a, memory, err, sizeof err),
                     EINVAL);
    if (!strstr(err, what)) {
        fail_msg("refusal '%s' does not mention '%s'", err, what);
    }
}

static void
test_controller_assignment_accepted(void **state)
{
    struct fixture f;
    fixture_init(&f);
    char err[256] = "";
    assert_int_equal(agent_assignment_check(&f.a, 1ull << 30, err,
                                            sizeof err), 0);
    /* Source and last stage too. */
    f.a.first_block = 1, f.a.n_upstream = 0;
    assert_int_equal(agent_assignment_check(&f.a, 0, err, sizeof err), 0);
    f.a.first_block = 9, f.a.last_block = 13, f.a.n_downstream = 0;
    f.a.n_upstream = 1;
    assert_int_equal(agent_assignment_check(&f.a, 0, err, sizeof err), 0);
}

static void
test_model_and_blocks(void **state)
{
    struct fixture f;
    fixture_init(&f);
    f.a.model = NULL;
    assert_refused(&f, 0, "without a model");
    fixture_init(&f);
    f.a.first_block = 0;
    assert_refused(&f, 0, "blocks 0-8");
    f.a.first_block = 9;
    assert_refused(&f, 0, "blocks 9-8");
    f.a.first_block = 4, f.a.last_block = 14;
    assert_refused(&f, 0, "outside the model's 1-13");
    fixture_init(&f);
    f.a.stage_index = 3;
    assert_refused(&f, 0, "stage 3 of 3");
    fixture_init(&f);
    f.m.input_size = 4096;
    assert_refused(&f, 0, "input size 4096");
    fixture_init(&f);
    f.m.classes = 0xffffffffu;          /* negative once an int */
    assert_refused(&f, 0, "classes");
    fixture_init(&f);
    f.m.optimizer = "adagrad";
    assert_refused(&f, 0, "unknown optimizer 'adagrad'");
    fixture_init(&f);
    f.m.schedule = "step";
    assert_refused(&f, 0, "unknown schedule 'step'");
    fixture_init(&f);
    f.m.lr = -1;
    assert_refused(&f, 0, "lr -1");
}

static void
test_peers_and_token(void **state)
{
    struct fixture f;
    fixture_init(&f);
    f.a.token.len = 0;
    assert_refused(&f, 0, "token of 0 bytes");
    fixture_init(&f);
    f.a.token.len = 65;
    assert_refused(&f, 0, "token of 65 bytes");
    fixture_init(&f);
    Edgetrain__Peer *two[2] = {&f.down, &f.down};
    f.a.n_downstream = 2, f.a.downstream = two;
    assert_refused(&f, 0, "2 downstream");
    fixture_init(&f);
    f.up.name = "";
    assert_refused(&f, 0, "upstream peer 0 has no name");
    fixture_init(&f);
    f.down.data_addr = "127.0.0.1";
    assert_refused(&f, 0, "bad data address '127.0.0.1'");
    f.down.data_addr = "127.0.0.1:0";
    assert_refused(&f, 0, "bad data address");
    f.down.data_addr = "pi3.lan:7103";  /* names are resolved later */
    char err[256];
    assert_int_equal(agent_assignment_check(&f.a, 0, err, sizeof err), 0);
    fixture_init(&f);
    f.s[1].local_port = 70000;
    assert_refused(&f, 0, "port 70000");
    fixture_init(&f);
    f.down.n_substreams = 17;
    assert_refused(&f, 0, "17 sub-streams");
}

static void
test_memory_bound(void **state)
{
    struct fixture f;
    fixture_init(&f);
    f.m.alpha = 1, f.m.input_size = 224, f.m.batch = 256;
    f.a.first_block = 1;
    f.a.n_upstream = 0;
    struct mn_config c;
    agent_model_config(&f.m, &c);
    size_t need = mn_stage_bytes(&c, 1, 8);
    assert_true(need > (64u << 20));
    assert_refused(&f, 64u << 20, "more than this device's 64.0 MiB");
    char err[256];
    assert_int_equal(agent_assignment_check(&f.a, (uint64_t) need * 2, err,
                                            sizeof err), 0);
    assert_int_equal(agent_assignment_check(&f.a, 0, err, sizeof err), 0);
}

static void
test_model_defaults(void **state)
{
    Edgetrain__ModelConfig m = EDGETRAIN__MODEL_CONFIG__INIT;
    struct mn_config c;
    agent_model_config(&m, &c);
    assert_true(c.alpha == 0.5f);
    assert_int_equal(c.input_size, 32);
    assert_int_equal(c.in_channels, 1);
    assert_int_equal(c.classes, 10);
    assert_int_equal(c.head_pool, 4);
    assert_int_equal(c.batch_capacity, 128);
    assert_int_equal(mn_config_check(&c, NULL, 0), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_controller_assignment_accepted),
        cmocka_unit_test(test_model_and_blocks),
        cmocka_unit_test(test_peers_and_token),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_model_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
