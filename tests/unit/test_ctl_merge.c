/* Failover with no spare agent (controller/ctl_merge.c): the dead stage's
 * blocks go to the neighbour that gives the lower planned bottleneck, the
 * other stages keep their blocks and agents; a merged stage that fits no
 * neighbour's memory, or two dead stages, fall back to the planner. On
 * linear-4pi with its 4 Pis, stages 1-4, 5-7, 8-10, 11-13. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-private.h"
#include "linkstate.h"
#include "plan.h"
#include "policy.h"
#include "topology.h"

static const uint32_t ranges4[4][2] = {{1, 4}, {5, 7}, {8, 10}, {11, 13}};

struct fixture {
    struct ctl ctl;
    struct policy_registry *reg;
};

/* A controller running stage s on agent s; 'gflops' per agent. */
static void
setup(struct fixture *f, const double gflops[4], double memory_bytes)
{
    memset(f, 0, sizeof *f);
    struct ctl *ctl = &f->ctl;
    char err[256];
    assert_int_equal(topology_load("topology/linear-4pi.json", &ctl->topo,
                                   err, sizeof err), 0);
    ctl->ls = linkstate_create(ctl->topo);
    f->reg = policy_registry_create();
    ctl->routing = policy_find_routing(f->reg, "ksp-waterfill");
    ctl->cfg.plan = (struct plan_options) {
        .model = {0.5, 32, 1, 10, 4, 128}, .k = 3,
    };
    ctl->agents = calloc(4, sizeof *ctl->agents);
    struct plan_agent pa[4];
    for (size_t i = 0; i < 4; i++) {
        ctl->agents[i].alive = true;
        ctl->agents[i].gflops = gflops[i];
        ctl->agents[i].memory_bytes = memory_bytes;
        pa[i] = (struct plan_agent) {i, gflops[i], memory_bytes};
    }
    assert_int_equal(plan_adopt(ctl->topo, ctl->ls, pa, ranges4, 4,
                                ctl->routing, &ctl->cfg.plan, &ctl->plan, err,
                                sizeof err), 0);
    ctl->have_plan = true;
}

static void
teardown(struct fixture *f)
{
    plan_clear(&f->ctl.plan);
    free(f->ctl.agents);
    linkstate_destroy(f->ctl.ls);
    topology_destroy(f->ctl.topo);
    policy_registry_destroy(f->reg);
}

/* Checks 'np' is the 3 stages 'want' on agents 'agents'. */
static void
check_stages(const struct plan *np, const uint32_t want[3][2],
             const size_t agents[3])
{
    assert_int_equal(np->placement.n_stages, 3);
    for (size_t s = 0; s < 3; s++) {
        assert_int_equal(np->placement.stages[s].first_block, want[s][0]);
        assert_int_equal(np->placement.stages[s].last_block, want[s][1]);
        assert_int_equal(plan_stage_agent(np, s), agents[s]);
    }
}

static void
test_dead_blocks_go_to_the_faster_neighbour(void **state)
{
    (void) state;
    struct fixture f;
    /* pi1 slow: blocks 5-7 are better on pi3 with 8-10. */
    setup(&f, (const double[4]) {2, 11, 30, 11}, 0);
    f.ctl.agents[1].alive = false;
    struct plan np = {0};
    assert_int_equal(ctl_merge_failover_plan(&f.ctl, &np), 0);
    check_stages(&np, (const uint32_t[3][2]) {{1, 4}, {5, 10}, {11, 13}},
                 (const size_t[3]) {0, 2, 3});
    assert_true(f.ctl.merge.valid);
    assert_int_equal(f.ctl.merge.first, 5);
    assert_int_equal(f.ctl.merge.split, 7);
    assert_int_equal(f.ctl.merge.last, 10);
    plan_clear(&np);
    teardown(&f);

    /* pi3 slow: blocks 5-7 join 1-4 on pi1. */
    setup(&f, (const double[4]) {30, 11, 2, 11}, 0);
    f.ctl.agents[1].alive = false;
    assert_int_equal(ctl_merge_failover_plan(&f.ctl, &np), 0);
    check_stages(&np, (const uint32_t[3][2]) {{1, 7}, {8, 10}, {11, 13}},
                 (const size_t[3]) {0, 2, 3});
    assert_int_equal(f.ctl.merge.first, 1);
    assert_int_equal(f.ctl.merge.split, 4);
    assert_int_equal(f.ctl.merge.last, 7);
    /* The current plan is not the merged one yet. */
    assert_false(ctl_merge_active(&f.ctl));
    plan_clear(&f.ctl.plan);
    f.ctl.plan = np;
    assert_true(ctl_merge_active(&f.ctl));
    teardown(&f);

    /* The last stage dead: only the previous neighbour. */
    setup(&f, (const double[4]) {11, 11, 11, 11}, 0);
    f.ctl.agents[3].alive = false;
    memset(&np, 0, sizeof np);
    assert_int_equal(ctl_merge_failover_plan(&f.ctl, &np), 0);
    check_stages(&np, (const uint32_t[3][2]) {{1, 4}, {5, 7}, {8, 13}},
                 (const size_t[3]) {0, 1, 2});
    plan_clear(&np);
    teardown(&f);
}

static void
test_falls_back_when_merging_cannot_help(void **state)
{
    (void) state;
    struct fixture f;
    setup(&f, (const double[4]) {11, 11, 11, 11}, 0);
    /* Each agent has the memory its stage needs and no more. */
    for (size_t s = 0; s < 4; s++) {
        f.ctl.agents[s].memory_bytes =
            f.ctl.plan.placement.stages[s].memory_bytes;
    }
    f.ctl.agents[1].alive = false;
    struct plan np = {0};
    assert_int_equal(ctl_merge_failover_plan(&f.ctl, &np), ENOSPC);
    assert_false(f.ctl.merge.valid);
    assert_int_equal(np.placement.n_stages, 0);

    /* Two stages dead at once: not merged here. */
    for (size_t i = 0; i < 4; i++) {
        f.ctl.agents[i].memory_bytes = 0;
    }
    f.ctl.agents[2].alive = false;
    assert_int_equal(ctl_merge_failover_plan(&f.ctl, &np), ENOENT);
    assert_false(f.ctl.merge.valid);
    teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_blocks_go_to_the_faster_neighbour),
        cmocka_unit_test(test_falls_back_when_merging_cannot_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
