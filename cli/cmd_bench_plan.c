/* edgetrain bench-plan: how long the controller takes to plan (placement +
 * multipath routing) a large random network. The goal is 1,000 switches /
 * 5,000 links / 64 agents in under 100 ms. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "linkstate.h"
#include "plan.h"
#include "policy.h"
#include "topogen.h"
#include "topology.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: edgetrain bench-plan [--switches N] [--links N]"
               " [--agents N] [--seed N]\n"
               "         [--placement NAME] [--routing NAME] [--k N]"
               " [--disjoint] [--repeat N]\n"
               "Plans MobileNet (alpha 1, 64x64x1, 340 classes, batch 256)"
               " on a random connected\nnetwork with random link load."
               " Last line: plan_ms=<float> (median of the repeats).\n");
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static long
num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "bench-plan: --%s %s: want %ld..%ld\n", what, s, lo,
                hi);
        return -1;
    }
    return v;
}

int
cmd_bench_plan(int argc, char **argv)
{
    static const struct option options[] = {
        {"switches", required_argument, NULL, 's'},
        {"links", required_argument, NULL, 'l'},
        {"agents", required_argument, NULL, 'a'},
        {"seed", required_argument, NULL, 'S'},
        {"placement", required_argument, NULL, 'p'},
        {"routing", required_argument, NULL, 'r'},
        {"k", required_argument, NULL, 'k'},
        {"disjoint", no_argument, NULL, 'd'},
        {"repeat", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long n_sw = 1000, n_links = 5000, n_agents = 64, seed = 1, k = 3;
    long repeat = 5;
    const char *pname = "bottleneck-dp", *rname = "ksp-waterfill";
    bool disjoint = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 's': n_sw = num(optarg, 1, 1000000, "switches"); break;
        case 'l': n_links = num(optarg, 0, 10000000, "links"); break;
        case 'a': n_agents = num(optarg, 1, 100000, "agents"); break;
        case 'S': seed = num(optarg, 0, 1L << 40, "seed"); break;
        case 'k': k = num(optarg, 1, POLICY_MAX_PATHS, "k"); break;
        case 'n': repeat = num(optarg, 1, 1000, "repeat"); break;
        case 'p': pname = optarg; break;
        case 'r': rname = optarg; break;
        case 'd': disjoint = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (n_sw < 0 || n_links < 0 || n_agents < 0 || seed < 0 || k < 0
            || repeat < 0) {
            return 2;
        }
    }
    struct topology *t;
    if (topogen_random(n_sw, n_links, n_agents, seed, &t)) {
        fprintf(stderr, "bench-plan: cannot build a connected network of %ld "
                "switches, %ld links, %ld agents\n", n_sw, n_links, n_agents);
        return 2;
    }
    struct policy_registry *reg = policy_registry_create();
    const struct policy_placement *pp = policy_find_placement(reg, pname);
    const struct policy_routing *pr = policy_find_routing(reg, rname);
    if (!pp || !pr) {
        fprintf(stderr, "bench-plan: unknown policy %s\n", pp ? rname : pname);
        policy_registry_destroy(reg);
        topology_destroy(t);
        return 2;
    }
    struct linkstate *ls = linkstate_create(t);
    topogen_random_load(ls, 0.8, seed);
    struct plan_agent *agents = calloc(n_agents, sizeof *agents);
    for (long i = 0; i < n_agents; i++) {
        agents[i] = (struct plan_agent) {
            (size_t) i, t->agents[i].gflops,
            (double) t->agents[i].memory_bytes};
    }
    struct plan_options opt = {
        .model = {1.0, 64, 1, 340, 4, 256},
        .k = (size_t) k, .edge_disjoint = disjoint,
    };
    double *ms = calloc(repeat, sizeof *ms);
    struct plan pl = {0};
    char err[256];
    int rc = 0;
    for (long r = 0; r < repeat; r++) {
        if (plan_compute(t, ls, agents, n_agents, 0, pp, pr, &opt, &pl, err,
                         sizeof err)) {
            fprintf(stderr, "bench-plan: %s\n", err);
            rc = 1;
            break;
        }
        ms[r] = pl.plan_ms;
    }
    if (!rc) {
        printf("network: %zu switches, %ld links, %zu agents (seed %ld)\n",
               t->n_switches, n_links, t->n_agents, seed);
        printf("policies: placement %s, routing %s, k %ld%s\n", pp->name,
               pr->name, k, disjoint ? " edge-disjoint" : "");
        for (size_t s = 0; s < pl.placement.n_stages; s++) {
            const struct placement_stage *st = &pl.placement.stages[s];
            printf("stage %zu: %s blocks %u-%u compute %.3f s transfer %.3f s",
                   s, t->agents[plan_stage_agent(&pl, s)].name,
                   st->first_block, st->last_block, st->compute_s,
                   st->transfer_s);
            if (s + 1 < pl.placement.n_stages) {
                const struct plan_route *rt = &pl.routes[s];
                printf(" -> %zu paths, %.0f Mbit/s for %.1f Mbit/s demand",
                       rt->n_sub, rt->rate_mbps, rt->demand_mbps);
            }
            printf("\n");
        }
        printf("bottleneck_s=%.4f\n", pl.bottleneck_s);
        for (long r = 0; r < repeat; r++) {
            printf("run %ld: %.2f ms\n", r, ms[r]);
        }
        qsort(ms, repeat, sizeof *ms, cmp_double);
        printf("plan_ms=%.2f\n", ms[repeat / 2]);
    }
    plan_clear(&pl);
    free(ms);
    free(agents);
    linkstate_destroy(ls);
    policy_registry_destroy(reg);
    topology_destroy(t);
    return rc;
}
