/* policy: built-in policies by name, and loading the example plugin (a
 * real .so through dlopen) and running its policies. */
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

#include "linkstate.h"
#include "policy.h"
#include "topology.h"

static void
plugin_path(char *buf, size_t size)
{
    const char *build = getenv("BUILD");
    snprintf(buf, size, "%s/plugins/example_policies.so",
             build && *build ? build : "build");
}

static void
diamond(struct topology **t, struct pgraph *g)
{
    char err[256];
    assert_int_equal(topology_load("topology/diamond-4pi.json", t, err,
                                   sizeof err), 0);
    pgraph_build(g, *t, NULL, 0);
}

static void
test_builtins(void **state)
{
    struct policy_registry *reg = policy_registry_create();
    char names[256];
    policy_list(reg, false, names, sizeof names);
    assert_string_equal(names, "bottleneck-dp, equal, round-robin, single");
    policy_list(reg, true, names, sizeof names);
    assert_string_equal(names, "ksp-waterfill, ksp-delay-equal, shortest");
    assert_null(policy_find_routing(reg, "nope"));

    struct topology *t;
    struct pgraph g;
    diamond(&t, &g);
    struct routing_request req = {&g, topology_find_node(t, "pi1"),
                                  topology_find_node(t, "pi2"), 3, true, 60,
                                  1e6};
    struct routing_result r;
    const struct policy_routing *wf = policy_find_routing(reg, "ksp-waterfill");
    assert_int_equal(wf->route(&req, &r, wf->aux), 0);
    assert_int_equal(r.n, 2);
    assert_true(fabs(r.weights[0] - 2.0 / 3) < 1e-9);
    routing_result_clear(&r);

    /* Delay-equal at 60 of 150 Mbit/s: the faster c1 path carries more
     * than its capacity share, both are used. */
    const struct policy_routing *de = policy_find_routing(reg,
                                                          "ksp-delay-equal");
    assert_int_equal(de->route(&req, &r, de->aux), 0);
    assert_int_equal(r.n, 2);
    assert_true(r.weights[0] > 2.0 / 3 && r.weights[0] < 1);
    assert_true(fabs(r.weights[0] + r.weights[1] - 1) < 1e-12);
    routing_result_clear(&r);

    const struct policy_routing *sp = policy_find_routing(reg, "shortest");
    assert_int_equal(sp->route(&req, &r, sp->aux), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.paths[0].n_edges, 4);
    routing_result_clear(&r);
    pgraph_destroy(&g);
    topology_destroy(t);
    policy_registry_destroy(reg);
}

static void
test_plugin(void **state)
{
    struct policy_registry *reg = policy_registry_create();
    char path[512], err[512];
    plugin_path(path, sizeof path);
    int e = policy_load_plugin(reg, path, err, sizeof err);
    if (e) {
        fail_msg("%s", err);
    }
    const struct policy_placement *pp = policy_find_placement(
        reg, "compute-proportional");
    const struct policy_routing *pr = policy_find_routing(reg, "ksp-equal");
    assert_non_null(pp);
    assert_non_null(pr);
    assert_non_null(policy_find_placement(reg, "bottleneck-dp"));

    /* 8 equal blocks, agents of 1 and 3 gflops: 2 + 6 blocks. */
    struct blockcost blocks[8] = {{0}};
    for (int b = 0; b < 8; b++) {
        blocks[b].train_flops = blocks[b].train_cost = 1e9;
    }
    struct placement_agent agents[2] = {{"a", 0, 1, 0}, {"b", 1, 3, 0}};
    double rate[4] = {0, 100, 100, 0}, delay[4] = {0};
    struct placement_problem prob = {blocks, 8, 1, 0, agents, 2, rate, delay,
                                     0};
    struct placement pl = {0};
    assert_int_equal(pp->place(&prob, &pl, pp->aux), 0);
    assert_int_equal(pl.n_stages, 2);
    assert_int_equal(pl.stages[0].last_block, 2);
    assert_int_equal(pl.stages[1].last_block, 8);
    assert_true(fabs(pl.bottleneck_s - 2) < 1e-9);   /* evaluated by host */
    placement_clear(&pl);

    struct topology *t;
    struct pgraph g;
    diamond(&t, &g);
    struct routing_request req = {&g, topology_find_node(t, "pi1"),
                                  topology_find_node(t, "pi3"), 2, false, 10,
                                  1e6};
    struct routing_result r;
    assert_int_equal(pr->route(&req, &r, pr->aux), 0);
    assert_int_equal(r.n, 2);
    assert_true(r.weights[0] == 0.5 && r.weights[1] == 0.5);
    routing_result_clear(&r);
    pgraph_destroy(&g);
    topology_destroy(t);

    /* Loading it twice: its names are taken, nothing is added. */
    assert_int_equal(policy_load_plugin(reg, path, err, sizeof err), EEXIST);
    assert_non_null(strstr(err, "already taken"));
    char names[256];
    policy_list(reg, true, names, sizeof names);
    assert_string_equal(names,
                        "ksp-waterfill, ksp-delay-equal, shortest, ksp-equal");
    policy_registry_destroy(reg);
}

static void
test_bad_plugins(void **state)
{
    struct policy_registry *reg = policy_registry_create();
    char err[512];
    assert_int_equal(policy_load_plugin(reg, "topology/loopback-3.json", err,
                                        sizeof err), ENOENT);
    assert_non_null(strstr(err, "cannot load"));
    assert_int_equal(policy_load_plugin(reg, "/nonexistent/x.so", err,
                                        sizeof err), ENOENT);
    /* A real shared object without the init symbol. */
    assert_int_equal(policy_load_plugin(reg, "libm.so.6", err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "no symbol edgetrain_policy_plugin_init"));
    policy_registry_destroy(reg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_plugin),
        cmocka_unit_test(test_bad_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
