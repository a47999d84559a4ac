/* edgetrain: the command a person types. Dispatches to cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

/* Keep in the order `edgetrain --help` should list them. */
static const struct command commands[] = {
    {"train", cmd_train,
     "train MobileNet block-wise (the paper's method) or end to end"},
    {"eval", cmd_eval, "test accuracy of the cut model of stages 1..K"},
    {"infer", cmd_infer, "top-3 classes of images under the cut model"},
    {"bench", cmd_bench,
     "training-step throughput of a MobileNet stage (images/s, GFLOP/s)"},
    {"bench-wire", cmd_bench_wire,
     "frame encode+decode throughput of an activation chunk vs memcpy"},
    {"bench-stream", cmd_bench_stream,
     "activation-stream goodput over K TCP sub-streams (vs iperf3)"},
    {"bench-flows", cmd_bench_flows,
     "flow installation rate into a local OVS bridge (OpenFlow bundles)"},
    {"bench-plan", cmd_bench_plan,
     "placement + multipath routing time on a large random network"},
    {"plan", cmd_plan,
     "what the controller would decide for a topology file (offline)"},
    {"experiment", cmd_experiment,
     "run an experiment matrix on the emulator (tests/experiments/run.py)"},
    {"status", cmd_status, "the controller's state: agents, placement, paths"},
    {"start", cmd_start, "start a run with the agents registered so far"},
    {"agent-sim", cmd_agent_sim,
     "scripted management-channel client (tests, controller demos)"},
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: edgetrain COMMAND [OPTIONS]\n\n"
               "Train MobileNet block-wise across edge devices under an SDN"
               " controller.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(f, "\n`edgetrain COMMAND --help` describes a command's options.\n");
}

int
main(int argc, char **argv)
{
    et_log_set_tag("edgetrain");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("edgetrain %s\n", EDGETRAIN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "edgetrain: unknown command '%s' (see edgetrain --help)\n",
            argv[1]);
    return 2;
}
