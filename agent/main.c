/* edgetrain-agent: the daemon on every edge device (see agent/agent.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "threads.h"

static void
usage(FILE *f)
{
    fprintf(f,
"usage: edgetrain-agent --name NAME --controller HOST:PORT\n"
"         [--listen ADDR:PORT] [--data SPEC] [--threads N]\n"
"         [--state-dir DIR] [--log-level debug|info|warn|error]\n"
"         [--key-file FILE] [--window CHUNKS] [--queue CHUNKS]\n"
"         [--gflops F]\n"
"  --listen     data address for activation streams and inference\n"
"               (default 127.0.0.1, any port)\n"
"  --data       dataset of the source stage, e.g. fashion-mnist or\n"
"               'fashion-mnist?train-limit=2000&test-limit=500'\n"
"  --threads    compute threads (default: all cores)\n"
"  --state-dir  where stage checkpoints are written\n"
"  --key-file   cluster key answering the controller's challenge\n"
"  --window     receive window per upstream stream, chunks (default %d)\n"
"  --queue      bound of each thread hand-off queue, chunks (default %d)\n"
"  --gflops     declared compute speed, GFLOP/s, sent to the controller\n"
"               instead of the start-up sgemm benchmark (an emulated device\n"
"               under a CPU quota: a few-ms benchmark runs at full speed)\n",
            AGENT_DEFAULT_WINDOW, AGENT_DEFAULT_QUEUE);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"controller", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'},
        {"state-dir", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'L'},
        {"key-file", required_argument, NULL, 'k'},
        {"window", required_argument, NULL, 'w'},
        {"queue", required_argument, NULL, 'q'},
        {"gflops", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct agent_options o = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o.name = optarg; break;
        case 'c': o.controller = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'd': o.data = optarg; break;
        case 's': o.state_dir = optarg; break;
        case 'k': o.key_file = optarg; break;
        case 'g': {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v > 0 && v < 1e6)) {
                fprintf(stderr, "edgetrain-agent: --gflops %s: want a "
                        "positive number\n", optarg);
                return 2;
            }
            o.gflops = v;
            break;
        }
        case 't': case 'w': case 'q': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 4096 || (c != 't' && v == 0)) {
                fprintf(stderr, "edgetrain-agent: --%s %s: want a number "
                        "in %d..4096\n", c == 't' ? "threads" : c == 'w'
                        ? "window" : "queue", optarg, c == 't' ? 0 : 1);
                return 2;
            }
            if (c == 't') {
                o.threads = (int) v;
            } else if (c == 'w') {
                o.window = (uint32_t) v;
            } else {
                o.queue_chunks = (uint32_t) v;
            }
            break;
        }
        case 'L': {
            int l = et_log_level_from_string(optarg);
            if (l < 0) {
                fprintf(stderr, "edgetrain-agent: --log-level %s: want "
                        "debug, info, warn or error\n", optarg);
                return 2;
            }
            et_log_set_level((enum et_log_level) l);
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("edgetrain-agent %s\n", EDGETRAIN_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.name || !o.controller || optind < argc) {
        usage(stderr);
        return 2;
    }
    /* Idle OpenMP threads sleep instead of spinning (see train/threads.h);
     * re-executes this program once with OMP_WAIT_POLICY=passive. */
    train_threads_passive_wait(argv);
    char tag[80];
    snprintf(tag, sizeof tag, "agent[%s]", o.name);
    et_log_set_tag(tag);
    return agent_run(&o);
}
