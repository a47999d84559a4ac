/* plan: placement + routing end to end on the shipped topologies and on a
 * large random one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linkstate.h"
#include "plan.h"
#include "policy.h"
#include "topogen.h"
#include "topology.h"

static const struct plan_options paper = {
    .model = {1.0, 64, 1, 340, 4, 256}, .k = 3, .edge_disjoint = true,
    .loopback_substreams = 2, .loopback_mbps = 10000,
};

/* Checks the structural invariants every plan must satisfy. */
static void
check_plan(const struct topology *t, const struct plan *pl)
{
    const struct placement *p = &pl->placement;
    assert_true(p->n_stages >= 1);
    assert_int_equal(p->stages[0].first_block, 1);
    assert_int_equal(p->stages[p->n_stages - 1].last_block, 13);
    assert_int_equal(pl->n_routes, p->n_stages - 1);
    for (size_t s = 0; s + 1 < p->n_stages; s++) {
        assert_int_equal(p->stages[s + 1].first_block,
                         p->stages[s].last_block + 1);
        const struct plan_route *rt = &pl->routes[s];
        assert_int_equal(rt->src, plan_stage_agent(pl, s));
        assert_int_equal(rt->dst, plan_stage_agent(pl, s + 1));
        assert_true(rt->n_sub >= 1);
        double sum = 0;
        for (size_t k = 0; k < rt->n_sub; k++) {
            const struct plan_substream *ss = &rt->sub[k];
            sum += ss->weight;
            assert_int_equal(ss->nodes[0], topology_agent_node(t, rt->src));
            assert_int_equal(ss->nodes[ss->n_links ? ss->n_links : 1],
                             topology_agent_node(t, rt->dst));
            for (size_t i = 0; i < ss->n_links; i++) {
                const struct topo_link *l = &t->links[ss->links[i]];
                assert_true((l->a == ss->nodes[i] && l->b == ss->nodes[i + 1])
                            || (l->b == ss->nodes[i]
                                && l->a == ss->nodes[i + 1]));
            }
        }
        assert_true(fabs(sum - 1) < 1e-9);
    }
}

static void
test_plan_diamond(void **state)
{
    struct topology *t;
    char err[256];
    assert_int_equal(topology_load("topology/diamond-4pi.json", &t, err,
                                   sizeof err), 0);
    struct linkstate *ls = linkstate_create(t);
    struct policy_registry *reg = policy_registry_create();
    struct plan_agent agents[4];
    for (size_t i = 0; i < 4; i++) {
        agents[i] = (struct plan_agent) {i, 11, 1024.0 * 1048576};
    }
    struct plan pl = {0};
    int e = plan_compute(t, ls, agents, 4, 0,
                         policy_find_placement(reg, "bottleneck-dp"),
                         policy_find_routing(reg, "ksp-waterfill"), &paper,
                         &pl, err, sizeof err);
    if (e) {
        fail_msg("%s", err);
    }
    check_plan(t, &pl);
    /* Four equal Pis on a 150 Mbit/s diamond: the DP uses more than one. */
    assert_true(pl.placement.n_stages >= 2);
    assert_string_equal(t->agents[plan_stage_agent(&pl, 0)].name, "pi1");
    /* Both disjoint paths (via c1 and c2) carry each stream. */
    assert_int_equal(pl.routes[0].n_sub, 2);
    assert_true(fabs(pl.routes[0].rate_mbps - 150) < 1e-6);
    assert_string_equal(topology_node_name(t, pl.routes[0].sub[0].nodes[2]),
                        "c1");
    /* Every stage within a Pi's 1 GiB. */
    for (size_t s = 0; s < pl.placement.n_stages; s++) {
        assert_true(pl.placement.stages[s].memory_bytes <= 1024.0 * 1048576);
    }
    double before = pl.bottleneck_s;

    /* c1's links at 90%: reroute keeps the placement, shifts weight. */
    int dir;
    for (int port = 1; port <= 4; port++) {
        int l = topology_link_at_port(t, topology_find_node(t, "c1"), port,
                                      &dir);
        linkstate_set_rate(ls, l, 0, 90);
        linkstate_set_rate(ls, l, 1, 90);
    }
    size_t stages = pl.placement.n_stages;
    assert_int_equal(plan_reroute(t, ls, policy_find_routing(reg,
                                                             "ksp-waterfill"),
                                  &paper, &pl, err, sizeof err), 0);
    check_plan(t, &pl);
    assert_int_equal(pl.placement.n_stages, stages);
    assert_true(fabs(pl.routes[0].rate_mbps - 60) < 1e-6);
    assert_true(pl.bottleneck_s >= before);
    plan_clear(&pl);
    policy_registry_destroy(reg);
    linkstate_destroy(ls);
    topology_destroy(t);
}

/* plan_evaluate: the figures of paths set by the caller (a restarted
 * controller keeping the installed ones) are those plan_compute gives the
 * same paths; a path that does not lead to its destination is refused. */
static void
test_plan_evaluate(void **state)
{
    struct topology *t;
    char err[256];
    assert_int_equal(topology_load("topology/diamond-4pi.json", &t, err,
                                   sizeof err), 0);
    struct linkstate *ls = linkstate_create(t);
    struct policy_registry *reg = policy_registry_create();
    struct plan_agent agents[4];
    for (size_t i = 0; i < 4; i++) {
        agents[i] = (struct plan_agent) {i, 11, 1024.0 * 1048576};
    }
    struct plan pl = {0};
    assert_int_equal(plan_compute(t, ls, agents, 4, 0,
                                  policy_find_placement(reg, "bottleneck-dp"),
                                  policy_find_routing(reg, "ksp-waterfill"),
                                  &paper, &pl, err, sizeof err), 0);
    struct plan_route *rt = &pl.routes[0];
    assert_int_equal(rt->n_sub, 2);
    double rate = rt->rate_mbps, bottleneck = pl.bottleneck_s;
    double delay[2] = {rt->sub[0].delay_ms, rt->sub[1].delay_ms};
    double width[2] = {rt->sub[0].bottleneck_mbps, rt->sub[1].bottleneck_mbps};
    rt->rate_mbps = rt->sub[0].delay_ms = rt->sub[1].bottleneck_mbps = 0;
    pl.bottleneck_s = 0;

    /* The same paths: the same figures. */
    assert_int_equal(plan_evaluate(t, ls, &paper, &pl, err, sizeof err), 0);
    check_plan(t, &pl);
    assert_true(fabs(rt->rate_mbps - rate) < 1e-9);
    assert_true(fabs(pl.bottleneck_s - bottleneck) < 1e-12);
    for (int k = 0; k < 2; k++) {
        assert_true(fabs(rt->sub[k].delay_ms - delay[k]) < 1e-9);
        assert_true(fabs(rt->sub[k].bottleneck_mbps - width[k]) < 1e-9);
    }

    /* Only the path via c1 (100 Mbit/s), all the weight on it: the
     * stream gets 100 of the 150 Mbit/s and its transfer takes longer. */
    double transfer = pl.placement.stages[1].transfer_s;
    free(rt->sub[1].links);
    free(rt->sub[1].nodes);
    rt->sub[1].links = NULL;
    rt->sub[1].nodes = NULL;
    rt->n_sub = 1;
    rt->sub[0].weight = 1;
    assert_int_equal(plan_evaluate(t, ls, &paper, &pl, err, sizeof err), 0);
    check_plan(t, &pl);
    assert_true(fabs(rt->rate_mbps - 100) < 1e-9);
    assert_true(pl.placement.stages[1].transfer_s > transfer);

    /* Planned again: other routes than these, the same placement; other
     * blocks or another agent for a stage make another placement. */
    struct plan again = {0};
    assert_int_equal(plan_compute(t, ls, agents, 4, 0,
                                  policy_find_placement(reg, "bottleneck-dp"),
                                  policy_find_routing(reg, "ksp-waterfill"),
                                  &paper, &again, err, sizeof err), 0);
    assert_true(again.routes[0].n_sub != rt->n_sub);
    assert_true(plan_same_placement(&again, &pl));
    again.placement.stages[1].first_block++;
    assert_false(plan_same_placement(&again, &pl));
    again.placement.stages[1].first_block--;
    size_t a0 = again.placement.stages[0].agent;
    again.placement.stages[0].agent = again.placement.stages[1].agent;
    assert_false(plan_same_placement(&again, &pl));
    again.placement.stages[0].agent = a0;
    assert_true(plan_same_placement(&again, &pl));
    plan_clear(&again);

    /* A hop that does not continue the path. */
    int saved = rt->sub[0].nodes[2];
    rt->sub[0].nodes[2] = topology_find_node(t, "c2");
    assert_int_equal(plan_evaluate(t, ls, &paper, &pl, err, sizeof err),
                     EINVAL);
    assert_non_null(strstr(err, "does not continue"));
    rt->sub[0].nodes[2] = saved;
    plan_clear(&pl);
    policy_registry_destroy(reg);
    linkstate_destroy(ls);
    topology_destroy(t);
}

/* The scaling benchmark's job (alpha 0.5, 32x32, batch 128) on the diamond:
 * in int8 the DP cuts after block 2 (16 KB/image in f32, 4 in int8) into
 * the stages the memory-term cost model balances; in f32 it cannot, and
 * the streams' demand is charged at the encoded size. */
static void
test_plan_encoding(void **state)
{
    struct topology *t;
    char err[256];
    assert_int_equal(topology_load("topology/diamond-4pi.json", &t, err,
                                   sizeof err), 0);
    struct policy_registry *reg = policy_registry_create();
    struct plan_agent agents[4];
    for (size_t i = 0; i < 4; i++) {
        agents[i] = (struct plan_agent) {i, 11, 1024.0 * 1048576};
    }
    struct plan_options opt = {
        .model = {0.5, 32, 1, 10, 4, 128}, .k = 3, .stages = 4,
        .value_bytes = 1,
    };
    struct plan pl = {0};
    assert_int_equal(plan_compute(t, NULL, agents, 4, 0,
                                  policy_find_placement(reg, "bottleneck-dp"),
                                  policy_find_routing(reg, "ksp-waterfill"),
                                  &opt, &pl, err, sizeof err), 0);
    check_plan(t, &pl);
    static const uint32_t last[4] = {2, 5, 9, 13};
    for (size_t s = 0; s < 4; s++) {
        assert_int_equal(pl.placement.stages[s].last_block, last[s]);
    }
    /* 128 images x 8x8x64 bytes per step, in Mbit/s at the bottleneck. */
    double bits = 128.0 * 8 * 8 * 64 * 8;
    assert_true(fabs(pl.routes[0].demand_mbps
                     - bits / pl.placement.bottleneck_s / 1e6) < 1e-6);
    double int8_bottleneck = pl.bottleneck_s;
    opt.value_bytes = 4;
    assert_int_equal(plan_compute(t, NULL, agents, 4, 0,
                                  policy_find_placement(reg, "bottleneck-dp"),
                                  policy_find_routing(reg, "ksp-waterfill"),
                                  &opt, &pl, err, sizeof err), 0);
    assert_true(pl.placement.stages[0].last_block > 2);
    assert_true(pl.bottleneck_s > 1.2 * int8_bottleneck);
    plan_clear(&pl);
    policy_registry_destroy(reg);
    topology_destroy(t);
}

static void
test_plan_loopback(void **state)
{
    struct topology *t;
    char err[256];
    assert_int_equal(topology_load("topology/loopback-3.json", &t, err,
                                   sizeof err), 0);
    struct policy_registry *reg = policy_registry_create();
    struct plan_agent agents[3] = {{0, 20, 0}, {1, 20, 0}, {2, 20, 0}};
    struct plan pl = {0};
    struct plan_options opt = paper;
    opt.stages = 3;
    assert_int_equal(plan_compute(t, NULL, agents, 3, 1,
                                  policy_find_placement(reg, "equal"),
                                  policy_find_routing(reg, "ksp-waterfill"),
                                  &opt, &pl, err, sizeof err), 0);
    check_plan(t, &pl);
    assert_int_equal(pl.placement.n_stages, 3);
    assert_string_equal(t->agents[plan_stage_agent(&pl, 0)].name, "a2");
    assert_int_equal(pl.routes[1].n_sub, 2);
    assert_int_equal(pl.routes[1].sub[1].n_links, 0);
    assert_true(pl.routes[1].sub[1].weight == 0.5);
    plan_clear(&pl);
    policy_registry_destroy(reg);
    topology_destroy(t);
}

static void
test_plan_random_large(void **state)
{
    struct topology *t;
    assert_int_equal(topogen_random(1000, 5000, 64, 3, &t), 0);
    assert_int_equal(t->n_links, 5064);
    struct linkstate *ls = linkstate_create(t);
    topogen_random_load(ls, 0.8, 3);
    struct policy_registry *reg = policy_registry_create();
    struct plan_agent agents[64];
    for (size_t i = 0; i < 64; i++) {
        agents[i] = (struct plan_agent) {i, t->agents[i].gflops,
                                         (double) t->agents[i].memory_bytes};
    }
    struct plan pl = {0};
    char err[256];
    const char *routings[] = {"ksp-waterfill", "ksp-delay-equal", "shortest"};
    for (int r = 0; r < 3; r++) {
        assert_int_equal(plan_compute(t, ls, agents, 64, 0,
                                      policy_find_placement(reg,
                                                            "bottleneck-dp"),
                                      policy_find_routing(reg, routings[r]),
                                      &paper, &pl, err, sizeof err), 0);
        check_plan(t, &pl);
        /* Generous bound (sanitizer builds, a busy machine). */
        assert_true(pl.plan_ms < 2000);
    }
    plan_clear(&pl);
    struct topology *bad;
    assert_int_equal(topogen_random(10, 5, 2, 1, &bad), EINVAL);
    assert_null(bad);
    policy_registry_destroy(reg);
    linkstate_destroy(ls);
    topology_destroy(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_diamond),
        cmocka_unit_test(test_plan_evaluate),
        cmocka_unit_test(test_plan_loopback),
        cmocka_unit_test(test_plan_encoding),
        cmocka_unit_test(test_plan_random_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
