/* edgetrain plan: what the controller would decide for a topology, offline
 * (every agent of the file taking part, idle links unless --load). With
 * --compare, every placement policy side by side on the same network. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "linkstate.h"
#include "plan.h"
#include "policy.h"
#include "topology.h"

static void
usage(FILE *f)
{
    fprintf(f,
"usage: edgetrain plan --topology FILE [--placement NAME] [--routing NAME]\n"
"         [--plugin FILE.so] [--k N] [--disjoint] [--stages N] [--compare]\n"
"         [--alpha F] [--input N] [--channels N] [--classes N] [--batch N]\n"
"         [--head-pool N] [--encoding f32|f16|int8] [--load F]\n"
"         [--source NAME] [--blocks]\n"
"  --load F    every link direction F (0..1) utilised by background traffic\n"
"  --compare   run every placement policy and print their bottlenecks\n"
"  --encoding  activations on the wire (transfers charged at that size)\n"
"  --blocks    print the cost model's per-block table first (per image)\n");
}

/* The per-block figures placement works with (blockcost.h). */
static void
print_blocks(const struct plan_options *opt)
{
    struct blockcost b[BLOCKCOST_BLOCKS];
    if (blockcost_mobilenet_v1(&opt->model, b)) {
        return;
    }
    printf("block  out (h,w,c)     train MFLOP  saved KB  cost MFLOP-eq"
           "  out KB  head MFLOP\n");
    for (int i = 0; i < BLOCKCOST_BLOCKS; i++) {
        printf("%5d  (%3u,%3u,%4u)  %11.3f  %8.1f  %13.3f  %6.1f  %10.3f\n",
               i + 1, b[i].out_h, b[i].out_w, b[i].out_c,
               b[i].train_flops / 1e6, b[i].saved_bytes / 1e3,
               b[i].train_cost / 1e6, b[i].out_bytes / 1e3,
               b[i].head_train_flops / 1e6);
    }
}

static void
print_plan(const struct topology *t, const struct plan *pl)
{
    for (size_t s = 0; s < pl->placement.n_stages; s++) {
        const struct placement_stage *st = &pl->placement.stages[s];
        printf("  stage %zu: %-8s blocks %2u-%-2u compute %.3f s transfer "
               "%.3f s %6.0f MiB\n", s, t->agents[plan_stage_agent(pl, s)].name,
               st->first_block, st->last_block, st->compute_s, st->transfer_s,
               st->memory_bytes / 1048576.0);
        if (s + 1 < pl->placement.n_stages) {
            const struct plan_route *rt = &pl->routes[s];
            for (size_t k = 0; k < rt->n_sub; k++) {
                const struct plan_substream *ss = &rt->sub[k];
                printf("      #%zu w %.3f via", k, ss->weight);
                for (size_t h = 1; h < ss->n_links; h++) {
                    printf(" %s", topology_node_name(t, ss->nodes[h]));
                }
                printf("%s\n", ss->n_links ? "" : " (direct)");
            }
        }
    }
    printf("  bottleneck %.3f s/step (%.1f images/s), planned in %.2f ms\n",
           pl->bottleneck_s, pl->batch / pl->bottleneck_s, pl->plan_ms);
}

int
cmd_plan(int argc, char **argv)
{
    static const struct option options[] = {
        {"topology", required_argument, NULL, 't'},
        {"placement", required_argument, NULL, 'p'},
        {"routing", required_argument, NULL, 'r'},
        {"plugin", required_argument, NULL, 'P'},
        {"k", required_argument, NULL, 'k'},
        {"disjoint", no_argument, NULL, 'd'},
        {"stages", required_argument, NULL, 's'},
        {"compare", no_argument, NULL, 'c'},
        {"alpha", required_argument, NULL, 'a'},
        {"input", required_argument, NULL, 'i'},
        {"channels", required_argument, NULL, 'C'},
        {"classes", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"load", required_argument, NULL, 'l'},
        {"source", required_argument, NULL, 'S'},
        {"head-pool", required_argument, NULL, 'H'},
        {"encoding", required_argument, NULL, 'e'},
        {"blocks", no_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *pname = "bottleneck-dp", *rname = "ksp-waterfill";
    const char *plugin = NULL, *source = NULL;
    bool compare = false, blocks = false;
    double load = 0;
    struct plan_options opt = {
        .model = {1.0, 64, 1, 340, 4, 256}, .k = 3, .loopback_substreams = 1,
        .loopback_mbps = 10000,
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 't': path = optarg; break;
        case 'p': pname = optarg; break;
        case 'r': rname = optarg; break;
        case 'P': plugin = optarg; break;
        case 'k': opt.k = (size_t) atoi(optarg); break;
        case 'd': opt.edge_disjoint = true; break;
        case 's': opt.stages = (size_t) atoi(optarg); break;
        case 'c': compare = true; break;
        case 'a': opt.model.alpha = atof(optarg); break;
        case 'i': opt.model.input_size = (uint32_t) atoi(optarg); break;
        case 'C': opt.model.in_channels = (uint32_t) atoi(optarg); break;
        case 'n': opt.model.classes = (uint32_t) atoi(optarg); break;
        case 'b': opt.model.batch = (uint32_t) atoi(optarg); break;
        case 'l': load = atof(optarg); break;
        case 'S': source = optarg; break;
        case 'H': opt.model.head_pool = (uint32_t) atoi(optarg); break;
        case 'B': blocks = true; break;
        case 'e':
            opt.value_bytes = !strcmp(optarg, "f32") ? 4
                              : !strcmp(optarg, "f16") ? 2
                              : !strcmp(optarg, "int8") ? 1 : -1;
            if (opt.value_bytes < 0) {
                fprintf(stderr, "edgetrain plan: --encoding %s: want f32, "
                        "f16 or int8\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || opt.k < 1 || opt.k > POLICY_MAX_PATHS || opt.stages > 13
        || load < 0 || load >= 1) {
        usage(stderr);
        return 2;
    }
    char err[512];
    struct topology *t;
    if (topology_load(path, &t, err, sizeof err)) {
        fprintf(stderr, "edgetrain plan: %s\n", err);
        return 1;
    }
    struct policy_registry *reg = policy_registry_create();
    if (plugin && policy_load_plugin(reg, plugin, err, sizeof err)) {
        fprintf(stderr, "edgetrain plan: %s\n", err);
        policy_registry_destroy(reg);
        topology_destroy(t);
        return 1;
    }
    struct linkstate *ls = linkstate_create(t);
    for (size_t l = 0; l < t->n_links; l++) {
        for (int d = 0; d < 2; d++) {
            linkstate_set_rate(ls, l, d, t->links[l].capacity_mbps * load);
        }
    }
    struct plan_agent *agents = calloc(t->n_agents, sizeof *agents);
    size_t src = 0;
    for (size_t i = 0; i < t->n_agents; i++) {
        agents[i] = (struct plan_agent) {
            i, t->agents[i].gflops > 0 ? t->agents[i].gflops : 10,
            (double) t->agents[i].memory_bytes};
        if (source && !strcmp(source, t->agents[i].name)) {
            src = i;
        }
    }
    static const char *const all[] = {"bottleneck-dp", "equal", "round-robin",
                                      "single"};
    const char *const *names = compare ? all : &pname;
    size_t n_names = compare ? 4 : 1;
    const struct policy_routing *pr = policy_find_routing(reg, rname);
    int rc = 0;
    printf("topology %s: %zu switches, %zu agents; routing %s, k %zu%s; "
           "model alpha %g, %ux%ux%u, %u classes, batch %u\n", t->name,
           t->n_switches, t->n_agents, rname, opt.k,
           opt.edge_disjoint ? " disjoint" : "", opt.model.alpha,
           opt.model.input_size, opt.model.input_size, opt.model.in_channels,
           opt.model.classes, opt.model.batch);
    if (blocks) {
        print_blocks(&opt);
    }
    for (size_t i = 0; i < n_names && pr; i++) {
        const struct policy_placement *pp = policy_find_placement(reg,
                                                                  names[i]);
        if (!pp) {
            fprintf(stderr, "edgetrain plan: unknown placement %s\n",
                    names[i]);
            rc = 2;
            break;
        }
        struct plan pl = {0};
        printf("placement %s:\n", pp->name);
        if (plan_compute(t, ls, agents, t->n_agents, src, pp, pr, &opt, &pl,
                         err, sizeof err)) {
            printf("  infeasible: %s\n", err);
        } else {
            print_plan(t, &pl);
        }
        plan_clear(&pl);
    }
    if (!pr) {
        fprintf(stderr, "edgetrain plan: unknown routing %s\n", rname);
        rc = 2;
    }
    free(agents);
    linkstate_destroy(ls);
    policy_registry_destroy(reg);
    topology_destroy(t);
    return rc;
}
