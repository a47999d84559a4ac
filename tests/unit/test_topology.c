/* topology: the shipped files parse; every validation error is reported
 * with the item at fault. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "topology.h"

static void
test_loopback_file(void **state)
{
    struct topology *t;
    char err[256];
    assert_int_equal(topology_load("topology/loopback-3.json", &t, err,
                                   sizeof err), 0);
    assert_int_equal(t->n_switches, 0);
    assert_int_equal(t->n_agents, 3);
    assert_int_equal(t->n_links, 0);
    assert_string_equal(t->agents[1].name, "a2");
    assert_int_equal(t->agents[1].data_port, 7102);
    assert_int_equal(t->agents[1].ip, 0x7f000001);
    assert_int_equal(t->agents[1].sw, -1);
    assert_int_equal(t->agents[2].memory_bytes, 2048ull << 20);
    topology_destroy(t);
}

static void
test_diamond_file(void **state)
{
    struct topology *t;
    char err[256];
    int e = topology_load("topology/diamond-4pi.json", &t, err, sizeof err);
    if (e) {
        fail_msg("%s", err);
    }
    assert_int_equal(t->n_switches, 6);
    assert_int_equal(t->n_agents, 4);
    assert_int_equal(t->n_links, 4 + 8);       /* access + switch links */
    assert_int_equal(t->switches[4].dpid, 0x11);
    assert_int_equal(topology_find_node(t, "pi3"), 6 + 2);
    int dir;
    int l = topology_link_at_port(t, topology_find_node(t, "c2"), 3, &dir);
    assert_true(l >= 0);
    assert_int_equal(dir, 1);
    assert_string_equal(topology_node_name(t, t->links[l].a), "e3");
    assert_true(t->links[l].capacity_mbps == 50);
    l = topology_link_at_port(t, topology_find_node(t, "e2"), 1, &dir);
    assert_true(t->links[l].access);
    assert_int_equal(topology_find_switch_dpid(t, 0x12), 5);
    topology_destroy(t);
}

/* Each case: JSON text and a substring the error must contain. */
struct bad_case {
    const char *json;
    const char *expect;
};

#define SW2 "\"switches\":[{\"name\":\"s1\",\"dpid\":1},{\"name\":\"s2\",\"dpid\":2}],"
#define AG2 "\"agents\":[{\"name\":\"h1\",\"data\":\"10.0.0.1:7100\",\"switch\":\"s1\",\"port\":1}," \
            "{\"name\":\"h2\",\"data\":\"10.0.0.2:7100\",\"switch\":\"s2\",\"port\":1}],"

static const struct bad_case bad_cases[] = {
    {"{\"agents\": [", "line 1: JSON syntax error"},
    {"[]", "top level must be an object"},
    {"{}", "missing \"agents\" array"},
    {"{\"agents\": []}", "\"agents\" is empty"},
    {"{\"agents\": [{\"data\":\"1.2.3.4:5\"}]}", "agents[0]: missing \"name\""},
    {"{\"agents\": [{\"name\":\"a\",\"data\":\"1.2.3.4\"}]}",
     "agents[0]: bad \"data\" address '1.2.3.4'"},
    {"{\"agents\": [{\"name\":\"a\",\"data\":\"1.2.3.4:70000\"}]}",
     "agents[0]: bad \"data\" address"},
    /* duplicate name */
    {"{\"agents\": [{\"name\":\"a\",\"data\":\"1.1.1.1:1\"},"
     "{\"name\":\"a\",\"data\":\"1.1.1.1:2\"}]}",
     "agents[1]: duplicate name 'a'"},
    {"{" SW2 "\"agents\": [{\"name\":\"s2\",\"data\":\"1.1.1.1:1\",\"switch\":\"s1\",\"port\":1}]}",
     "agents[0]: duplicate name 's2'"},
    {"{\"agents\": [{\"name\":\"a\",\"data\":\"1.1.1.1:1\"},"
     "{\"name\":\"b\",\"data\":\"1.1.1.1:1\"}]}",
     "agents[1]: duplicate data address"},
    /* bad numbers */
    {"{\"agents\": [{\"name\":\"a\",\"data\":\"1.1.1.1:1\",\"gflops\":-3}]}",
     "agents[0]: bad number for \"gflops\": -3"},
    {"{\"agents\": [{\"name\":\"a\",\"data\":\"1.1.1.1:1\",\"memory_mb\":\"lots\"}]}",
     "agents[0]: bad number for \"memory_mb\": \"lots\""},
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,\"b\":\"s2\",\"b_port\":2,"
     "\"capacity_mbps\":0}]}", "links[0]: bad number for \"capacity_mbps\": 0"},
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2.5,\"b\":\"s2\",\"b_port\":2,"
     "\"capacity_mbps\":10}]}", "links[0]: bad number for \"a_port\": 2.5 is not an integer"},
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,\"b\":\"s2\",\"b_port\":2,"
     "\"capacity_mbps\":10,\"loss_pct\":101}]}", "links[0]: bad number for \"loss_pct\""},
    {"{\"switches\":[{\"name\":\"s1\",\"dpid\":\"xyz\"}],\"agents\":[]}",
     "switches[0]: bad number for \"dpid\""},
    {"{\"switches\":[{\"name\":\"s1\",\"dpid\":1},{\"name\":\"s2\",\"dpid\":\"0x1\"}],"
     "\"agents\":[]}", "switches[1]: duplicate dpid"},
    /* unknown node */
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,\"b\":\"s9\",\"b_port\":2,"
     "\"capacity_mbps\":10}]}", "links[0]: unknown node 's9'"},
    {"{" SW2 "\"agents\":[{\"name\":\"h1\",\"data\":\"10.0.0.1:1\",\"switch\":\"s7\",\"port\":1}]}",
     "agents[0]: unknown node 's7'"},
    {"{" SW2 "\"agents\":[{\"name\":\"h1\",\"data\":\"10.0.0.1:1\"}]}",
     "agents[0]: missing \"switch\""},
    {"{\"agents\":[{\"name\":\"h1\",\"data\":\"10.0.0.1:1\",\"switch\":\"s1\"}]}",
     "agents[0]: unknown node 's1' (the topology has no switches)"},
    /* duplicate port */
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":1,\"b\":\"s2\",\"b_port\":2,"
     "\"capacity_mbps\":10}]}", "links[0]: duplicate port 1 on switch 's1'"},
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,\"b\":\"s2\",\"b_port\":2,"
     "\"capacity_mbps\":10},{\"a\":\"s2\",\"a_port\":2,\"b\":\"s1\",\"b_port\":3,"
     "\"capacity_mbps\":10}]}", "links[1]: duplicate port 2 on switch 's2'"},
    /* dangling link */
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,\"capacity_mbps\":10}]}",
     "links[0]: dangling link"},
    {"{\"agents\":[{\"name\":\"h1\",\"data\":\"10.0.0.1:1\"}],\"links\":[{}]}",
     "links[0]: dangling link (the topology has no switches)"},
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,\"b\":\"h2\",\"b_port\":2,"
     "\"capacity_mbps\":10}]}", "links[0]: 'h2' is an agent"},
    {"{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,\"b\":\"s1\",\"b_port\":3,"
     "\"capacity_mbps\":10}]}", "links[0]: link from 's1' to itself"},
    /* disconnected agents */
    {"{" SW2 AG2 "\"links\":[]}", "agents[1]: agent 'h2' cannot reach agent 'h1'"},
};

static void
test_bad_files(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        struct topology *t = (void *) 1;
        char err[256];
        int e = topology_parse(bad_cases[i].json, "t.json", &t, err,
                               sizeof err);
        if (e != EINVAL || t || !strstr(err, bad_cases[i].expect)
            || strncmp(err, "t.json: ", 8)) {
            fail_msg("case %zu: e=%d err='%s', expected '%s'", i, e, err,
                     bad_cases[i].expect);
        }
    }
}

static void
test_good_inline(void **state)
{
    struct topology *t;
    char err[256];
    const char *json = "{" SW2 AG2 "\"links\":[{\"a\":\"s1\",\"a_port\":2,"
                       "\"b\":\"s2\",\"b_port\":2,\"capacity_mbps\":10,"
                       "\"delay_ms\":3}]}";
    assert_int_equal(topology_parse(json, "t", &t, err, sizeof err), 0);
    assert_int_equal(t->n_links, 3);
    assert_true(t->links[2].delay_ms == 3);
    assert_false(t->links[2].access);
    assert_true(t->links[0].capacity_mbps == 1000);   /* access default */
    topology_destroy(t);

    assert_int_equal(topology_load("/nonexistent.json", &t, err, sizeof err),
                     ENOENT);
    assert_non_null(strstr(err, "/nonexistent.json"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_file),
        cmocka_unit_test(test_diamond_file),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_good_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
