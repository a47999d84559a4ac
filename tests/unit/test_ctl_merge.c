/* Failover with no spare agent (controller/ctl_merge.c): the dead stage's
 * blocks go to the neighbour that gives the lower planned bottleneck, the
 * other stages keep their blocks and agents; a merged stage that fits no
 * neighbour's memory, or two dead stages, fall back to the planner. The
 * dead agent back (controller/ctl_split.c): at a boundary the merged
 * checkpoint is split into the parts' and the placement before the
 * failover comes back, the earlier part's head from its checkpoint the
 * merge was made of; a split that cannot be made keeps the merged
 * placement. On linear-4pi with its 4 Pis, stages 1-4, 5-7, 8-10, 11-13. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckptstore.h"
#include "ctl-private.h"
#include "model.h"
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

#define RUN 0x5eed0009ULL

/* Puts a checkpoint of blocks first..last after 'epoch' made by
 * 'producer' into the controller's store: a fresh stage of 'classes'
 * classes after one optimiser step (so it has optimiser state), its
 * initialisation seeded by 'seed' (tells heads apart). */
static void
put_stage(struct ctl *ctl, uint32_t first, uint32_t last, uint32_t epoch,
          int classes, uint64_t seed, const char *producer)
{
    struct mn_config c;
    mn_config_default(&c);
    c.alpha = 0.25f;
    c.input_size = 32;
    c.classes = classes;
    c.head_pool = 2;
    c.batch_capacity = 1;
    c.seed = seed;
    char err[256];
    struct mn_stage *s = mn_stage_create(&c, (int) first, (int) last, err,
                                         sizeof err);
    assert_non_null(s);
    struct mn_optim o;
    mn_optim_default(&o);
    assert_int_equal(mn_stage_step(s, &o, 1e-3f), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(mn_stage_save_buf(s, true, &buf, &len), 0);
    assert_int_equal(ckptstore_put(ctl->ckpts, producer, RUN, first, last,
                                   epoch, mn_checkpoint_crc(buf, len), buf,
                                   len, err, sizeof err), 0);
    free(buf);
    mn_stage_destroy(s);
}

/* The values of tensor 'name' in the stored checkpoint of a range (a
 * malloc'd copy, 'n' floats). */
static float *
stored_tensor(const struct ctl *ctl, uint32_t first, uint32_t last,
              uint32_t epoch, const char *name, size_t *n)
{
    const struct ckpt_entry *x = ckptstore_get(ctl->ckpts, RUN, first, last,
                                               epoch);
    assert_non_null(x);
    struct mn_config c;
    int f, l;
    char err[256];
    assert_int_equal(mn_checkpoint_info(x->buf, x->len, &c, &f, &l, err,
                                        sizeof err), 0);
    c.batch_capacity = 1;
    struct mn_stage *s = mn_stage_create(&c, f, l, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(mn_stage_load_buf(s, x->buf, x->len, err, sizeof err),
                     0);
    const struct mn_tensor *t = mn_stage_tensor_by_name(s, name);
    assert_non_null(t);
    float *v = malloc(t->count * sizeof *v);
    assert_non_null(v);
    memcpy(v, t->data, t->count * sizeof *v);
    *n = t->count;
    mn_stage_destroy(s);
    return v;
}

static bool
same_tensor(const struct ctl *ctl, const uint32_t a[3], const uint32_t b[3],
            const char *name)
{
    size_t na, nb;
    float *va = stored_tensor(ctl, a[0], a[1], a[2], name, &na);
    float *vb = stored_tensor(ctl, b[0], b[1], b[2], name, &nb);
    bool same = na == nb && !memcmp(va, vb, na * sizeof *va);
    free(va);
    free(vb);
    return same;
}

/* Stage 2 (blocks 5-7) lost at boundary 1 with no spare, merged into
 * stage 1 on pi1 (blocks 1-7), which trains epoch 2. */
static void
merged_run(struct fixture *f)
{
    /* pi3 slow: blocks 5-7 join 1-4 on pi1. */
    setup(f, (const double[4]) {30, 11, 2, 11}, 0);
    struct ctl *ctl = &f->ctl;
    ctl->run_id = RUN;
    ctl->ckpts = ckptstore_create(CTL_RESUME_KEEP);
    ctl->cfg.seed = 3;
    ctl->state = RUN_RUNNING;
    for (size_t s = 0; s < 4; s++) {
        put_stage(ctl, ranges4[s][0], ranges4[s][1], 1, 10, 100 + s,
                  ctl->topo->agents[s].name);
    }
    ctl_resume_home_save(ctl);
    ctl->agents[1].alive = false;
    struct plan np = {0};
    assert_int_equal(ctl_merge_failover_plan(ctl, &np), 0);
    plan_clear(&ctl->plan);
    ctl->plan = np;
    ctl->boundary_epoch = 1;
    ctl_merge_assemble(ctl);
    assert_non_null(ckptstore_get(ctl->ckpts, RUN, 1, 7, 1));
    ctl_split_keep_head(ctl, 1);      /* the merged generation resumed */
    assert_non_null(ctl->merge.head);
    /* What the store holds of blocks 1-4 from now on does not matter:
     * the head is the kept copy's (another checkpoint in its place). */
    put_stage(ctl, 1, 4, 1, 10, 999, "pi1");
    ctl->boundary_epoch = 2;
}

static void
teardown_run(struct fixture *f)
{
    ctl_split_clear(&f->ctl);
    ckptstore_destroy(f->ctl.ckpts);
    teardown(f);
}

static void
test_returning_agent_gets_its_blocks_back(void **state)
{
    (void) state;
    struct fixture f;
    merged_run(&f);
    struct ctl *ctl = &f.ctl;
    struct plan np = {0};

    /* Still dead at boundary 2: the merged placement stays. */
    assert_false(ctl_split_home_plan(ctl, 2, &np));
    assert_int_equal(ctl->merge.split_wait, 0);

    /* Back, but the merged stage's checkpoint of epoch 2 is not in yet:
     * the split waits for it. */
    ctl->agents[1].alive = true;
    assert_false(ctl_split_home_plan(ctl, 2, &np));
    assert_int_equal(ctl->merge.split_wait, 2);
    assert_false(ctl_split_ready(ctl, &np));
    for (size_t s = 2; s < 4; s++) {
        put_stage(ctl, ranges4[s][0], ranges4[s][1], 2, 10, 300 + s,
                  ctl->topo->agents[s].name);
    }
    put_stage(ctl, 1, 7, 2, 10, 400, "pi1");
    assert_true(ctl_split_ready(ctl, &np));
    assert_int_equal(ctl->merge.split_wait, 0);

    /* The home placement: 4 stages on their agents, and every range has a
     * checkpoint of boundary 2 to resume from. */
    assert_int_equal(np.placement.n_stages, 4);
    for (size_t s = 0; s < 4; s++) {
        assert_int_equal(np.placement.stages[s].first_block, ranges4[s][0]);
        assert_int_equal(np.placement.stages[s].last_block, ranges4[s][1]);
        assert_int_equal(plan_stage_agent(&np, s), s);
    }
    assert_int_equal(ckptstore_resume_epoch(ctl->ckpts, RUN, ranges4, 4, 2),
                     2);
    const struct ckpt_entry *a = ckptstore_get(ctl->ckpts, RUN, 1, 4, 2);
    const struct ckpt_entry *b = ckptstore_get(ctl->ckpts, RUN, 5, 7, 2);
    assert_string_equal(a->producer, "pi1/split");
    assert_string_equal(b->producer, "pi1/split");
    assert_int_equal(ctl->merge.split_epoch, 2);
    assert_int_equal(ctl->merge.split_head_epoch, 1);
    /* Blocks from the merged stage; blocks 5-7 keep its head, blocks
     * 1-4 get the head they had before the merge. */
    const uint32_t m2[3] = {1, 7, 2}, p1[3] = {1, 4, 2}, p2[3] = {5, 7, 2};
    assert_true(same_tensor(ctl, m2, p1, "b1.stem.w"));
    assert_true(same_tensor(ctl, m2, p2, "b6.pw.bn.rvar"));
    assert_true(same_tensor(ctl, m2, p2, "head.w"));
    size_t n0, n1;
    float *h_old = stored_tensor(ctl, 1, 4, 2, "head.w", &n0);
    put_stage(ctl, 1, 4, 1, 10, 100, "pi1");   /* epoch 1's copy again */
    float *h_pre = stored_tensor(ctl, 1, 4, 1, "head.w", &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(h_old, h_pre, n0 * sizeof *h_old);
    free(h_old);
    free(h_pre);
    plan_clear(&ctl->plan);
    ctl->plan = np;
    assert_false(ctl_merge_active(ctl));
    teardown_run(&f);
}

static void
test_split_refused_keeps_the_merged_placement(void **state)
{
    (void) state;
    struct fixture f;
    merged_run(&f);
    struct ctl *ctl = &f.ctl;
    struct plan np = {0};
    ctl->agents[1].alive = true;

    /* The merged stage's checkpoint is of another model than the head
     * kept for blocks 1-4. */
    put_stage(ctl, 1, 7, 2, 20, 400, "pi1");
    assert_false(ctl_split_home_plan(ctl, 2, &np));
    assert_int_equal(ctl->merge.split_refused_epoch, 2);
    assert_int_equal(ctl->merge.split_epoch, 0);
    assert_true(ctl_merge_active(ctl));
    assert_true(ctl->home.valid);       /* a later boundary may try again */
    assert_null(ckptstore_get(ctl->ckpts, RUN, 5, 7, 2));

    /* The placement before the failover is not the merged one split. */
    put_stage(ctl, 1, 7, 2, 10, 400, "pi1");
    ctl->home.ranges[1][1] = 6;
    ctl->home.ranges[2][0] = 7;
    assert_false(ctl_split_home_plan(ctl, 3, &np));
    assert_int_equal(ctl->merge.split_refused_epoch, 3);

    /* Put right, the next boundary splits with a fresh head if none was
     * kept. */
    ctl->home.ranges[1][1] = 7;
    ctl->home.ranges[2][0] = 8;
    ctl_split_clear(ctl);
    assert_true(ctl_split_home_plan(ctl, 2, &np));
    assert_int_equal(ctl->merge.split_head_epoch, 0);
    const uint32_t m2[3] = {1, 7, 2}, p1[3] = {1, 4, 2};
    assert_true(same_tensor(ctl, m2, p1, "b4.dw.w"));
    plan_clear(&np);
    teardown_run(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_blocks_go_to_the_faster_neighbour),
        cmocka_unit_test(test_falls_back_when_merging_cannot_help),
        cmocka_unit_test(test_returning_agent_gets_its_blocks_back),
        cmocka_unit_test(test_split_refused_keeps_the_merged_placement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
