/* edgetrain-controller: the SDN controller (docs/controller.md).
 *
 * main() parses the command line, loads everything through ctl_create()
 * and runs the libevent loop on this thread; the OpenFlow module runs its
 * own thread (southbound.h). */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "edgetrain.pb-c.h"
#include "log.h"
#include "openvswitch/ofp-protocol.h"
#include "stream-ssl.h"

static void
usage(FILE *f)
{
    fprintf(f,
"usage: edgetrain-controller --topology FILE [OPTIONS]\n"
"\n"
"network and agents:\n"
"  --topology FILE        JSON topology (docs/topology.md)\n"
"  --listen ADDR:PORT     agent management channel (default: topology's\n"
"                         \"management\", else 127.0.0.1:7000; port 0 picks)\n"
"  --openflow ptcp:PORT[:ADDR]|pssl:PORT[:ADDR]\n"
"                         listen for OpenFlow 1.3 switches (topologies with\n"
"                         switches; without it no flows are installed);\n"
"                         ADDR restricts the listener to one address\n"
"  --ssl-private-key FILE, --ssl-certificate FILE, --ssl-ca-cert FILE\n"
"                         TLS for pssl: (switches use ssl:, ovs-pki certs)\n"
"  --http ADDR:PORT|off   status server (default 127.0.0.1:7080)\n"
"  --expect-agents N      start the run once N agents registered (0: only\n"
"                         on `edgetrain start`)\n"
"  --source NAME          agent that reads the data and trains block 1\n"
"                         (default: first registered in topology order)\n"
"  --heartbeat-ms N       agents' heartbeat period (default 1000); an agent\n"
"  --timeout-periods N    is dead after N silent periods (default 3)\n"
"  --key-file FILE        cluster key: agents must answer the challenge\n"
"                         with HMAC-SHA256(key, nonce)\n"
"policies:\n"
"  --placement NAME       bottleneck-dp (default), equal, round-robin, single\n"
"  --routing NAME         ksp-waterfill (default), ksp-delay-equal, shortest\n"
"  --plugin FILE.so       load more policies (docs/plugins.md); repeatable\n"
"  --k N                  paths per stream (default 3, at most 8)\n"
"  --disjoint             paths share no switch-to-switch link\n"
"  --substreams N         sub-streams per stream without switches (default 1)\n"
"  --replan-threshold F   re-route when a residual capacity moved by more\n"
"                         than F of the link's capacity (default 0.2)\n"
"model and run (sent to the agents):\n"
"  --alpha F --input N --channels N --classes N --head-pool N\n"
"  --batch N --micro-batch N --epochs N --stages N|auto --seed N\n"
"  --optimizer adam|sgd --lr F --weight-decay F --schedule NAME\n"
"  --steps-per-epoch N --data SPEC --encoding f32|f16|int8\n"
"  --port-base N          first sub-stream source port (default 41000)\n"
"  --checkpoint-dir DIR   keep the checkpoints agents send\n"
"  --failover-s S         a stage agent dead this long: re-place the run on\n"
"                         the agents alive, from the last epoch boundary\n"
"                         (default 30; 0: wait for it forever)\n"
"  --exit-when-done       exit (status 0) once every stage evaluated its\n"
"                         last epoch (the run is \"done\")\n"
"  --version, --help\n");
}

/* Parses a number within [lo, hi]; prints an error naming the option. */
static bool
parse_num(const char *opt, const char *s, double lo, double hi, bool integer,
          double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi
        || (integer && v != floor(v))) {
        fprintf(stderr, "edgetrain-controller: --%s %s: want %s %g..%g\n",
                opt, s, integer ? "an integer" : "a number", lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static void
signal_cb(evutil_socket_t sig, short what, void *base)
{
    ET_INFO("controller: signal %d, stopping", (int) sig);
    event_base_loopexit(base, NULL);
}

int
main(int argc, char **argv)
{
    et_log_set_tag("controller");
    enum {
        O_TOPOLOGY = 256, O_LISTEN, O_OPENFLOW, O_HTTP, O_PLACEMENT,
        O_ROUTING, O_PLUGIN, O_EXPECT, O_SOURCE, O_HEARTBEAT, O_TIMEOUT,
        O_KEY, O_K, O_DISJOINT, O_SUBSTREAMS, O_REPLAN, O_ALPHA, O_INPUT,
        O_CHANNELS, O_CLASSES, O_HEADPOOL, O_BATCH, O_MICRO, O_EPOCHS,
        O_STAGES, O_SEED, O_OPTIMIZER, O_LR, O_WD, O_SCHEDULE, O_SPE,
        O_DATA, O_ENCODING, O_PORTBASE, O_CKPT, O_FAILOVER, O_EXIT_DONE,
        O_VERSION, O_HELP, O_SSL_KEY, O_SSL_CERT, O_SSL_CA,
    };
    static const struct option options[] = {
        {"topology", required_argument, NULL, O_TOPOLOGY},
        {"listen", required_argument, NULL, O_LISTEN},
        {"openflow", required_argument, NULL, O_OPENFLOW},
        {"http", required_argument, NULL, O_HTTP},
        {"placement", required_argument, NULL, O_PLACEMENT},
        {"routing", required_argument, NULL, O_ROUTING},
        {"plugin", required_argument, NULL, O_PLUGIN},
        {"expect-agents", required_argument, NULL, O_EXPECT},
        {"source", required_argument, NULL, O_SOURCE},
        {"heartbeat-ms", required_argument, NULL, O_HEARTBEAT},
        {"timeout-periods", required_argument, NULL, O_TIMEOUT},
        {"key-file", required_argument, NULL, O_KEY},
        {"ssl-private-key", required_argument, NULL, O_SSL_KEY},
        {"ssl-certificate", required_argument, NULL, O_SSL_CERT},
        {"ssl-ca-cert", required_argument, NULL, O_SSL_CA},
        {"k", required_argument, NULL, O_K},
        {"disjoint", no_argument, NULL, O_DISJOINT},
        {"substreams", required_argument, NULL, O_SUBSTREAMS},
        {"replan-threshold", required_argument, NULL, O_REPLAN},
        {"alpha", required_argument, NULL, O_ALPHA},
        {"input", required_argument, NULL, O_INPUT},
        {"channels", required_argument, NULL, O_CHANNELS},
        {"classes", required_argument, NULL, O_CLASSES},
        {"head-pool", required_argument, NULL, O_HEADPOOL},
        {"batch", required_argument, NULL, O_BATCH},
        {"micro-batch", required_argument, NULL, O_MICRO},
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"stages", required_argument, NULL, O_STAGES},
        {"seed", required_argument, NULL, O_SEED},
        {"optimizer", required_argument, NULL, O_OPTIMIZER},
        {"lr", required_argument, NULL, O_LR},
        {"weight-decay", required_argument, NULL, O_WD},
        {"schedule", required_argument, NULL, O_SCHEDULE},
        {"steps-per-epoch", required_argument, NULL, O_SPE},
        {"data", required_argument, NULL, O_DATA},
        {"encoding", required_argument, NULL, O_ENCODING},
        {"port-base", required_argument, NULL, O_PORTBASE},
        {"checkpoint-dir", required_argument, NULL, O_CKPT},
        {"failover-s", required_argument, NULL, O_FAILOVER},
        {"exit-when-done", no_argument, NULL, O_EXIT_DONE},
        {"version", no_argument, NULL, O_VERSION},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    struct ctl_config cfg;
    ctl_config_default(&cfg);
    const char **plugins = calloc(argc, sizeof *plugins);
    size_t n_plugins = 0;
    double v;
    int c;
    bool ok = true;
    const char *ssl_key = NULL, *ssl_cert = NULL;
    while (ok && (c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *o = options; o->name; o++) {
            if (o->val == c) {
                name = o->name;
            }
        }
        switch (c) {
        case O_TOPOLOGY: cfg.topology_path = optarg; break;
        case O_LISTEN: cfg.listen = optarg; break;
        case O_OPENFLOW: cfg.openflow = optarg; break;
        case O_HTTP: cfg.http = optarg; break;
        case O_PLACEMENT: cfg.placement = optarg; break;
        case O_ROUTING: cfg.routing = optarg; break;
        case O_PLUGIN: plugins[n_plugins++] = optarg; break;
        case O_SOURCE: cfg.source = optarg; break;
        case O_KEY: cfg.key_file = optarg; break;
        /* TLS to switches (--openflow pssl:PORT[:ADDR]): libopenvswitch's
         * stream-ssl, configured before the listener opens. */
        case O_SSL_KEY: ssl_key = optarg; break;
        case O_SSL_CERT: ssl_cert = optarg; break;
        case O_SSL_CA: stream_ssl_set_ca_cert_file(optarg, false); break;
        case O_DISJOINT: cfg.plan.edge_disjoint = true; break;
        case O_OPTIMIZER:
            if (strcmp(optarg, "adam") && strcmp(optarg, "sgd")) {
                fprintf(stderr, "edgetrain-controller: --optimizer %s: want "
                        "adam or sgd\n", optarg);
                ok = false;
            }
            cfg.optimizer = optarg;
            break;
        case O_SCHEDULE: cfg.schedule = optarg; break;
        case O_DATA: cfg.data_spec = optarg; break;
        case O_CKPT: cfg.checkpoint_dir = optarg; break;
        case O_EXIT_DONE: cfg.exit_when_done = true; break;
        case O_ENCODING:
            /* The planner charges transfers at the encoded size. */
            if (!strcmp(optarg, "f32")) {
                cfg.encoding = EDGETRAIN__DTYPE__DTYPE_F32;
                cfg.plan.value_bytes = 4;
            } else if (!strcmp(optarg, "f16")) {
                cfg.encoding = EDGETRAIN__DTYPE__DTYPE_F16;
                cfg.plan.value_bytes = 2;
            } else if (!strcmp(optarg, "int8")) {
                cfg.encoding = EDGETRAIN__DTYPE__DTYPE_INT8;
                cfg.plan.value_bytes = 1;
            } else {
                fprintf(stderr, "edgetrain-controller: --encoding %s: want "
                        "f32, f16 or int8\n", optarg);
                ok = false;
            }
            break;
        case O_STAGES:
            if (!strcmp(optarg, "auto")) {
                cfg.plan.stages = 0;
            } else if ((ok = parse_num(name, optarg, 1, 13, true, &v))) {
                cfg.plan.stages = (size_t) v;
            }
            break;
#define NUM(CASE, LO, HI, INT, DEST) \
        case CASE: \
            if ((ok = parse_num(name, optarg, LO, HI, INT, &v))) { \
                DEST = v; \
            } \
            break;
        NUM(O_EXPECT, 0, 100000, true, cfg.expect_agents)
        NUM(O_HEARTBEAT, 10, 600000, true, cfg.heartbeat_ms)
        NUM(O_TIMEOUT, 1, 1000, true, cfg.timeout_periods)
        NUM(O_K, 1, 8, true, cfg.plan.k)
        NUM(O_SUBSTREAMS, 1, 8, true, cfg.plan.loopback_substreams)
        NUM(O_REPLAN, 0, 1, false, cfg.replan_threshold)
        NUM(O_ALPHA, 0.01, 4, false, cfg.plan.model.alpha)
        NUM(O_INPUT, 8, 4096, true, cfg.plan.model.input_size)
        NUM(O_CHANNELS, 1, 4, true, cfg.plan.model.in_channels)
        NUM(O_CLASSES, 1, 100000, true, cfg.plan.model.classes)
        NUM(O_HEADPOOL, 1, 64, true, cfg.plan.model.head_pool)
        NUM(O_BATCH, 1, 65536, true, cfg.plan.model.batch)
        NUM(O_MICRO, 1, 65536, true, cfg.micro_batch)
        NUM(O_EPOCHS, 1, 100000, true, cfg.epochs)
        NUM(O_SEED, 0, 9007199254740992.0, true, cfg.seed)
        NUM(O_LR, 0, 100, false, cfg.lr)
        NUM(O_WD, 0, 10, false, cfg.weight_decay)
        NUM(O_SPE, 0, 1e12, true, cfg.steps_per_epoch)
        NUM(O_PORTBASE, 1024, 65000, true, cfg.port_base)
        NUM(O_FAILOVER, 0, 1e6, false, cfg.failover_s)
#undef NUM
        case O_VERSION:
            /* Also proves the libopenvswitch link: its OpenFlow versions. */
            printf("edgetrain-controller %s (libopenvswitch, %s)\n",
                   EDGETRAIN_VERSION, ofputil_version_to_string(OFP13_VERSION));
            free(plugins);
            return 0;
        case 'h':
        case O_HELP:
            usage(stdout);
            free(plugins);
            return 0;
        default:
            ok = false;
            break;
        }
    }
    if (ok && optind < argc) {
        fprintf(stderr, "edgetrain-controller: unexpected argument '%s'\n",
                argv[optind]);
        ok = false;
    }
    if (ok && !cfg.topology_path) {
        fprintf(stderr, "edgetrain-controller: --topology FILE is required\n");
        ok = false;
    }
    if (ok && cfg.micro_batch > cfg.plan.model.batch) {
        cfg.micro_batch = cfg.plan.model.batch;
    }
    if (ssl_key || ssl_cert) {
        if (!ssl_key || !ssl_cert) {
            fprintf(stderr, "edgetrain-controller: --ssl-private-key and "
                    "--ssl-certificate go together\n");
            ok = false;
        } else {
            stream_ssl_set_key_and_cert(ssl_key, ssl_cert);
        }
    }
    if (!ok) {
        usage(stderr);
        free(plugins);
        return 2;
    }
    cfg.plugins = plugins;
    cfg.n_plugins = n_plugins;

    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct ctl *ctl;
    char err[512];
    int e = ctl_create(base, &cfg, &ctl, err, sizeof err);
    if (e) {
        ET_ERROR("%s", err);
        event_base_free(base);
        free(plugins);
        return 1;
    }
    struct event *sigint = evsignal_new(base, SIGINT, signal_cb, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, signal_cb, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    /* Ports actually bound, for scripts that pass port 0. */
    printf("listening mgmt=%u http=%u\n", ctl_mgmt_port(ctl),
           ctl_http_port(ctl));
    fflush(stdout);
    event_base_dispatch(base);
    event_free(sigint);
    event_free(sigterm);
    ctl_destroy(ctl);
    event_base_free(base);
    free(plugins);
    return 0;
}
