/* libFuzzer target: the agent's management channel (agent.c), driven
 * through its real read callback on a socketpair. Each input is what a
 * controller sends: Challenge (the agent answers with Hello, HMAC if keyed),
 * Welcome, Heartbeat, Assignment, Error, or anything else. An Assignment
 * goes through agent_assignment_check() and, if accepted, reconfigures the
 * real stream receiver and sender (the sender connects to the downstream
 * peer's address) and is handed to the compute thread's queue; the harness
 * then checks what the compute thread would get. The first input byte is
 * the mode: bit 0 = already registered (else Welcome must come first),
 * bit 1 = the agent holds a cluster key.
 *
 * Outgoing connections are refused and host names not looked up (the
 * connect() and getaddrinfo() below), so a fuzzed peer address never sends
 * a packet. ET_FUZZ_SEEDS=DIR writes seeds.
 * fuzz-sources: agent/assign.c agent/queue.c agent/stream.c agent/stream_rx.c agent/stream_tx.c proto/wire.c proto/codec.c common/log.c kernels/model.c kernels/optim.c kernels/batchnorm.c kernels/dense.c kernels/dwconv.c kernels/gemm.c kernels/pool.c kernels/pwconv.c kernels/softmax_xent.c kernels/stemconv.c kernels/checkpoint.c */
#define _GNU_SOURCE
#include "../../agent/agent.c"

#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>

#include "fuzz_seeds.h"

/* The harness provides what agent.c's other translation units would. */
void *agent_compute_main(void *arg) { return NULL; }
double agent_self_benchmark(void) { return 1.0; }

/* No connection leaves the harness (see the top comment): the sender
 * sees every peer refuse, as in a network namespace where nothing
 * listens, and a replay in `make test` never reaches a live agent. */
int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    errno = ECONNREFUSED;
    return -1;
}

/* Host names are not looked up: a fuzzed name would be a DNS query (slow,
 * and off this host); numeric addresses resolve as they do in the agent. */
int
getaddrinfo(const char *node, const char *service,
            const struct addrinfo *hints, struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *,
                       struct addrinfo **);
    if (!real) {
        real = (int (*)(const char *, const char *, const struct addrinfo *,
                        struct addrinfo **)) dlsym(RTLD_NEXT, "getaddrinfo");
    }
    struct addrinfo h = hints ? *hints : (struct addrinfo) {0};
    h.ai_flags |= AI_NUMERICHOST;
    return real(node, service, &h, res);
}

static struct agent fz_ag;

static void
fz_write_seeds(const char *dir)
{
    uint8_t buf[8192];
    size_t n = 0;
    buf[n++] = 0;                       /* not registered, no key */
    Edgetrain__Challenge ch = EDGETRAIN__CHALLENGE__INIT;
    uint8_t nonce[32] = {1, 2, 3};
    ch.nonce.data = nonce;
    ch.nonce.len = sizeof nonce;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_CHALLENGE,
                             &ch.base, 0);
    Edgetrain__Welcome w = EDGETRAIN__WELCOME__INIT;
    w.controller_id = "fuzz";
    w.heartbeat_ms = 500;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_WELCOME, &w.base,
                             0);

    /* A middle stage (blocks 3-5 of 13) as the controller sends it. */
    Edgetrain__ModelConfig m = EDGETRAIN__MODEL_CONFIG__INIT;
    m.alpha = 0.25f, m.input_size = 32, m.in_channels = 1, m.classes = 10;
    m.batch = 8, m.micro_batch = 2, m.epochs = 2, m.seed = 1;
    m.optimizer = "adam", m.lr = 0.004f, m.schedule = "onecycle";
    m.head_pool = 4;
    Edgetrain__SubStream s0 = EDGETRAIN__SUB_STREAM__INIT, s1 = s0;
    s0.id = 0, s0.local_port = 0, s0.remote_port = 7102, s0.weight = 0.5;
    s1.id = 1, s1.local_port = 0, s1.remote_port = 7102, s1.weight = 0.5;
    Edgetrain__SubStream *subs[2] = {&s0, &s1};
    Edgetrain__Peer up = EDGETRAIN__PEER__INIT, down = up;
    up.name = "pi1";
    up.data_addr = "127.0.0.1:7100";
    down.name = "pi3";
    down.data_addr = "127.0.0.1:7102";
    down.n_substreams = 2;
    down.substreams = subs;
    Edgetrain__Peer *ups[1] = {&up}, *downs[1] = {&down};
    uint8_t token[16] = "run-token-16byte";
    Edgetrain__Assignment a = EDGETRAIN__ASSIGNMENT__INIT;
    a.run_id = 7, a.generation = 1, a.first_block = 3, a.last_block = 5;
    a.stage_index = 1, a.stage_count = 3, a.model = &m;
    a.n_upstream = 1, a.upstream = ups;
    a.n_downstream = 1, a.downstream = downs;
    a.token.data = token, a.token.len = sizeof token;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ASSIGNMENT,
                             &a.base, 0);
    /* The same stage re-sent with a new generation (paths changed), then a
     * heartbeat and an error. */
    a.generation = 2;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ASSIGNMENT,
                             &a.base, 0);
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    hb.seq = 1;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HEARTBEAT,
                             &hb.base, 0);
    Edgetrain__Error er = EDGETRAIN__ERROR__INIT;
    er.code = 22;
    er.message = "placement changed";
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ERROR, &er.base,
                             0);
    fz_seed_write(dir, "session", buf, n);
    buf[0] = 2;                         /* the same with a key */
    fz_seed_write(dir, "session-keyed", buf, n);

    /* Registered already: the source stage (no upstream), then the last
     * stage (no downstream) of the same run: the stage changes. */
    n = 0;
    buf[n++] = 1;
    a.first_block = 1, a.last_block = 2, a.stage_index = 0;
    a.n_upstream = 0;
    a.data_spec = "synthetic:10";
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ASSIGNMENT,
                             &a.base, 0);
    a.first_block = 6, a.last_block = 13, a.stage_index = 2;
    a.n_upstream = 1, a.n_downstream = 0;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ASSIGNMENT,
                             &a.base, 0);
    fz_seed_write(dir, "stage-change", buf, n);

    /* Refused: too big for the device, and a frame with a payload. */
    n = 0;
    buf[n++] = 1;
    m.input_size = 1024, m.batch = 65536;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ASSIGNMENT,
                             &a.base, 0);
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HEARTBEAT,
                             &hb.base, 4);
    memcpy(buf + n, "junk", 4);
    n += 4;
    fz_seed_write(dir, "refused", buf, n);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FZ_LOG_LEVEL();
    fz_seeds_main(fz_write_seeds);
    signal(SIGPIPE, SIG_IGN);   /* as the agent does */
    struct agent *ag = &fz_ag;
    ag->opt.name = "pi2";
    ag->opt.controller = "127.0.0.1:1";
    ag->opt.window = AGENT_DEFAULT_WINDOW;
    ag->opt.queue_chunks = 4;
    ag->memory = 1ull << 30;    /* a 1 GiB Pi */
    agent_io_init(ag);
    snprintf(ag->data_addr, sizeof ag->data_addr, "127.0.0.1:7101");
    return ag->base && ag->rx ? 0 : 1;
}

/* What the compute thread receives must be an Assignment the check
 * accepts (the I/O thread refused everything else). */
static void
fz_drain_compute_queue(struct agent *ag)
{
    struct et_qmsg *m;
    while ((m = et_queue_pop(&ag->to_compute, false))) {
        if (m->kind == ET_QMSG_ASSIGN) {
            Edgetrain__Assignment *a = edgetrain__assignment__unpack(
                NULL, m->meta_len, m->meta);
            char err[256];
            if (!a || agent_assignment_check(a, ag->memory, err,
                                             sizeof err)) {
                fprintf(stderr, "compute thread got a refused Assignment: "
                        "%s\n", a ? err : "does not unpack");
                abort();
            }
            edgetrain__assignment__free_unpacked(a, NULL);
        }
        et_qmsg_free(m);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) {
        return 0;
    }
    struct agent *ag = &fz_ag;
    static uint8_t key[] = "cluster-key";
    ag->key = data[0] & 2 ? key : NULL;
    ag->key_len = data[0] & 2 ? sizeof key - 1 : 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)) {
        abort();
    }
    ag->mgmt = bufferevent_socket_new(ag->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(ag->mgmt, mgmt_read_cb, NULL, mgmt_event_cb, ag);
    bufferevent_enable(ag->mgmt, EV_READ | EV_WRITE);
    ag->mgmt_state = data[0] & 1 ? MGMT_UP : MGMT_CONNECTING;
    /* The bytes arrive in two pieces through the event loop. */
    size_t half = (size - 1) / 2;
    if (half && write(sv[1], data + 1, half) != (ssize_t) half) {
        abort();
    }
    event_base_loop(ag->base, EVLOOP_NONBLOCK);
    fz_drain_compute_queue(ag);
    size_t rest = size - 1 - half;
    if (rest && write(sv[1], data + 1 + half, rest) < 0 && errno != EPIPE
        && errno != ECONNRESET) {
        abort();                /* the agent may have hung up: fine */
    }
    event_base_loop(ag->base, EVLOOP_NONBLOCK);
    fz_drain_compute_queue(ag);
    char sink[65536];
    while (read(sv[1], sink, sizeof sink) > 0) {
    }

    /* Back to the state before the input: no controller connection, no
     * assignment, no downstream sender, receiver accepting nobody. */
    ag->stopping = true;
    mgmt_down(ag, "fuzz input ended");
    ag->stopping = false;
    evtimer_del(ag->mgmt_retry);
    et_stream_tx_destroy(ag->tx);
    ag->tx = NULL;
    ag->tx_peer[0] = ag->tx_addr[0] = '\0';
    static const char *const none[1] = {NULL};
    struct et_stream_rx_config rc = {.name = ag->opt.name,
                                     .window = ag->opt.window,
                                     .upstreams = none};
    et_stream_rx_reconfigure(ag->rx, &rc);
    if (ag->assign) {
        protobuf_c_message_free_unpacked(&ag->assign->base, NULL);
        ag->assign = NULL;
    }
    et_qmsg_free(ag->out_stash);
    ag->out_stash = NULL;
    fz_drain_compute_queue(ag);
    while ((ag->out_stash = et_queue_pop(&ag->to_io, false))) {
        et_qmsg_free(ag->out_stash);
    }
    ag->out_stash = NULL;
    ag->mgmt_backoff_ms = 200;
    ag->last_epoch = 0;
    event_base_loop(ag->base, EVLOOP_NONBLOCK);
    close(sv[1]);
    return 0;
}
