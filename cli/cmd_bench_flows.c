/* edgetrain bench-flows: how fast the controller's OpenFlow path installs
 * flows into a local Open vSwitch bridge (one atomic bundle closed by a
 * barrier, as when a switch is resynchronised).  tests/bench/flows.sh runs
 * it beside `ovs-ofctl --bundle add-flows` of the same flows. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_agents.h"
#include "commands.h"
#include "flowbench.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: edgetrain bench-flows --bridge NAME [--count N]"
               " [--no-bundle] [--modify] [--timeout-ms MS]\n"
               "  --bridge NAME   local OVS bridge (unix:$OVS_RUNDIR/NAME.mgmt)"
               " or a vconn name\n"
               "  --count N       flows to install (default 20000)\n"
               "  --no-bundle     plain flow_mods and a barrier\n"
               "  --modify        then re-point every flow to another port"
               " (modify rate)\n"
               "  --agents N      meanwhile N agent-sims register (HMAC) with a"
               " management\n                  server thread and stream"
               " metrics every 50 ms\n"
               "The bridge's flows are replaced. Last line:"
               " flow_mods_per_s=<float>\n");
}

int
cmd_bench_flows(int argc, char **argv)
{
    static const struct option options[] = {
        {"bridge", required_argument, NULL, 'b'},
        {"count", required_argument, NULL, 'n'},
        {"no-bundle", no_argument, NULL, 'u'},
        {"modify", no_argument, NULL, 'm'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"agents", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *bridge = NULL;
    long count = 20000, timeout_ms = 60000, agents = 0;
    int bundles = 1, modify = 0;
    char *end;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'b':
            bridge = optarg;
            break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end || count < 1 || count > 10000000) {
                fprintf(stderr, "bench-flows: --count %s: want 1..10000000\n",
                        optarg);
                return 2;
            }
            break;
        case 't':
            timeout_ms = strtol(optarg, &end, 10);
            if (*end || timeout_ms < 1) {
                fprintf(stderr, "bench-flows: --timeout-ms %s: want a"
                        " positive number\n", optarg);
                return 2;
            }
            break;
        case 'a':
            agents = strtol(optarg, &end, 10);
            if (*end || agents < 0 || agents > 1024) {
                fprintf(stderr, "bench-flows: --agents %s: want 0..1024\n",
                        optarg);
                return 2;
            }
            break;
        case 'u':
            bundles = 0;
            break;
        case 'm':
            modify = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!bridge || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct bench_agents *load = NULL;
    if (agents) {
        char err[256];
        if (bench_agents_start((size_t) agents, &load, err, sizeof err)) {
            fprintf(stderr, "bench-flows: --agents: %s\n", err);
            bench_agents_stop(load);
            return 1;
        }
    }
    size_t m0 = load ? bench_agents_metrics(load) : 0;
    char *target = flowbench_bridge_target(bridge);
    struct flowbench_result r;
    int error = flowbench_run(target, (size_t) count, bundles, modify,
                              (int) timeout_ms, &r);
    if (load) {
        printf("agents=%ld metrics_during_run=%zu\n", agents,
               bench_agents_metrics(load) - m0);
        bench_agents_stop(load);
    }
    if (error) {
        fprintf(stderr, "bench-flows: %s: %s\n", target, strerror(error));
        free(target);
        return 1;
    }
    printf("target=%s flows=%zu flow_mods=%zu bundle=%s\n", target,
           r.n_flows, r.n_mods, bundles ? "yes" : "no");
    printf("connect_ms=%.3f build_ms=%.3f install_ms=%.3f total_ms=%.3f\n",
           r.connect_ms, r.build_ms, r.install_ms, r.total_ms);
    if (modify) {
        printf("modify_ms=%.3f modify_flow_mods_per_s=%.1f\n", r.modify_ms,
               r.n_flows / (r.modify_ms / 1e3));
    }
    /* Whole command time, as the peer's is measured: connect included. */
    printf("flow_mods_per_s=%.1f\n", r.n_flows / (r.total_ms / 1e3));
    free(target);
    return 0;
}
