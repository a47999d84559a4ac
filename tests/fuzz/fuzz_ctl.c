/* libFuzzer target: the controller's handlers of what agents send
 * (ctl.c: on_hello, on_frame, on_closed, and what they trigger: adopting a
 * running pipeline from Hello.current, starting a run, epoch boundaries and
 * re-placement on Metrics, checkpoint checks, errors), driven through a
 * real controller (ctl_create on a two-agent loopback topology) over real
 * loopback TCP. fuzz_mgmt covers the channel below them.
 *
 * Each input is the byte stream agent 'a1' sends after the Challenge
 * (Hello, then Heartbeat / Metrics / Checkpoint + payload / Error ...).
 * The first input byte is the mode: bit 0 = the controller starts a run as
 * soon as one agent is in (else it waits for both), bit 1 = agent 'a2' is
 * registered first by the harness, running stage 2 of 2 (blocks 7-13) of
 * run 5, so an 'a1' announcing stage 1 of run 5 makes the controller adopt
 * the pipeline. A controller per input keeps inputs independent.
 * ET_FUZZ_SEEDS=DIR writes seeds and exits.
 * fuzz-sources: controller/ctl.c controller/ctl_adopt.c controller/ctl_status.c controller/mgmt.c controller/ctl_resume.c controller/ctl_merge.c controller/ckpt_merge.c controller/ctl_split.c controller/ckpt_split.c controller/ckptstore.c controller/ckptdir.c kernels/merge.c kernels/batchnorm.c kernels/checkpoint.c kernels/dense.c kernels/dwconv.c kernels/gemm.c kernels/model.c kernels/optim.c kernels/pool.c kernels/pwconv.c kernels/softmax_xent.c kernels/stemconv.c controller/httpapi.c controller/topology.c controller/linkstate.c controller/plan.c controller/placement.c controller/paths.c controller/policy.c controller/blockcost.c controller/sbtopo.c proto/wire.c common/log.c common/auth.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "ctl.h"
#include "fuzz_seeds.h"
#include "log.h"
#include "model.h"
#include "southbound.h"
#include "wire.h"

/* The topology has no switches, so the OpenFlow thread never starts; these
 * stand in for it (southbound.c needs libopenvswitch, which the fuzz build
 * does not link). */
int
southbound_create(const struct southbound_topology *t,
                  const struct southbound_options *o, struct southbound **sb)
{
    return EOPNOTSUPP;
}
void southbound_destroy(struct southbound *sb) { }
int
southbound_set_routes(struct southbound *sb,
                      const struct southbound_route *r, size_t n,
                      uint64_t *gen)
{
    return EOPNOTSUPP;
}
int
southbound_trace_found(struct southbound *sb, struct southbound_route *r,
                       size_t n, size_t *links, const bool *link_up,
                       size_t *extra, char *err, size_t err_len)
{
    return EOPNOTSUPP;
}
int southbound_event_fd(const struct southbound *sb) { return -1; }
bool
southbound_next_event(struct southbound *sb, struct southbound_event *ev)
{
    return false;
}
const char *
southbound_event_type_name(enum southbound_event_type type)
{
    return "none";
}

/* The HTTP server is off ("off"); its page is generated at build time. */
struct evhttp;
void dashboard_register(struct evhttp *http) { }

static struct event_base *fz_base;
static char fz_topo[64];

static void
fz_unlink_topology(void)
{
    unlink(fz_topo);
}

static const char fz_topology[] =
    "{\"name\": \"fuzz-2\", \"switches\": [], \"links\": [], \"agents\": ["
    "{\"name\": \"a1\", \"data\": \"127.0.0.1:7101\", \"gflops\": 20,"
    " \"memory_mb\": 1024},"
    "{\"name\": \"a2\", \"data\": \"127.0.0.1:7102\", \"gflops\": 10,"
    " \"memory_mb\": 1024}]}";

static size_t
fz_hello(uint8_t *buf, size_t cap, const char *name, uint32_t stage,
         uint32_t count, uint32_t first, uint32_t last)
{
    Edgetrain__Hello h = EDGETRAIN__HELLO__INIT;
    Edgetrain__Assignment a = EDGETRAIN__ASSIGNMENT__INIT;
    static uint8_t token[16] = "run-token-16byte";
    h.name = (char *) name;
    h.data_addr = "";
    h.protocol_version = 1;
    h.software_version = "fuzz";
    a.run_id = 5, a.generation = 3, a.stage_index = stage, a.stage_count = count;
    a.first_block = first, a.last_block = last;
    a.token.data = token, a.token.len = sizeof token;
    h.current = &a;
    h.last_epoch = 1;
    return et_frame_encode_buf(buf, cap, ET_MSG_HELLO, &h.base, 0);
}

static void
fz_write_seeds(const char *dir)
{
    uint8_t buf[4096];
    size_t n = 0;
    /* Adopt run 5 (a2 holds stage 2), then report epochs 2 and 3. */
    buf[n++] = 2;
    n += fz_hello(buf + n, sizeof buf - n, "a1", 0, 2, 1, 6);
    Edgetrain__Metrics m = EDGETRAIN__METRICS__INIT;
    Edgetrain__SubStreamStats ss = EDGETRAIN__SUB_STREAM_STATS__INIT, *ssp[1];
    ss.peer = "a2", ss.id = 0, ss.bytes = 1000, ss.chunks = 3;
    ssp[0] = &ss;
    m.name = "a1", m.run_id = 5, m.epoch = 2, m.step = 10, m.loss = 1.5f;
    m.eval_done = true, m.test_top1 = 0.5f;
    m.n_substreams = 1, m.substreams = ssp;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_METRICS,
                             &m.base, 0);
    m.epoch = 3;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_METRICS,
                             &m.base, 0);
    Edgetrain__Checkpoint ck = EDGETRAIN__CHECKPOINT__INIT;
    ck.name = "a1", ck.run_id = 5, ck.first_block = 1, ck.last_block = 6;
    ck.epoch = 3;
    ck.crc32 = mn_checkpoint_crc((const uint8_t *) "ETCKPT\r\n", 8);
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_CHECKPOINT,
                             &ck.base, 8);
    memcpy(buf + n, "ETCKPT\r\n", 8);
    n += 8;
    Edgetrain__Error er = EDGETRAIN__ERROR__INIT;
    er.code = 22;
    er.message = "stream to a2 refused";
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ERROR, &er.base,
                             0);
    fz_seed_write(dir, "adopt", buf, n);
    /* ...and asks for checkpoints: one it does not hold, one of another
     * run (each answered with an Error, the channel stays up). */
    ck.epoch = 2;
    n += et_frame_encode_buf(buf + n, sizeof buf - n,
                             ET_MSG_CHECKPOINT_REQUEST, &ck.base, 0);
    ck.run_id = 6;
    n += et_frame_encode_buf(buf + n, sizeof buf - n,
                             ET_MSG_CHECKPOINT_REQUEST, &ck.base, 0);
    fz_seed_write(dir, "adopt-request", buf, n);

    /* Adopt a one-stage run 5 alone; its metrics pass epoch boundaries
     * (re-placement considered) up to the last epoch (run done). */
    n = 0;
    buf[n++] = 0;
    n += fz_hello(buf + n, sizeof buf - n, "a1", 0, 1, 1, 13);
    for (uint32_t e = 2; e <= 4; e++) {
        m.epoch = e;
        n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_METRICS,
                                 &m.base, 0);
    }
    fz_seed_write(dir, "adopt-single", buf, n);

    /* A fresh start with one agent, metrics of another run, heartbeat. */
    n = 0;
    buf[n++] = 1;
    Edgetrain__Hello h = EDGETRAIN__HELLO__INIT;
    h.name = "a1";
    h.data_addr = "127.0.0.1:7101";
    h.gflops = 30;
    h.memory_bytes = 1u << 30;
    h.protocol_version = 1;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HELLO, &h.base,
                             0);
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    hb.seq = 1;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HEARTBEAT,
                             &hb.base, 0);
    m.run_id = 9;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_METRICS,
                             &m.base, 0);
    fz_seed_write(dir, "start", buf, n);

    /* Unknown agent, then a moved one (bad data address). */
    n = 0;
    buf[n++] = 0;
    h.name = "stranger";
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HELLO, &h.base,
                             0);
    fz_seed_write(dir, "unknown", buf, n);
    n = 1;
    h.name = "a1";
    h.data_addr = "0.0.0.0:99999";
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HELLO, &h.base,
                             0);
    fz_seed_write(dir, "bad-addr", buf, n);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FZ_LOG_LEVEL();
    fz_seeds_main(fz_write_seeds);
    signal(SIGPIPE, SIG_IGN);   /* as the controller does */
    snprintf(fz_topo, sizeof fz_topo, "/tmp/fuzz_ctl-%d.json", (int) getpid());
    FILE *f = fopen(fz_topo, "w");
    if (!f || fputs(fz_topology, f) < 0 || fclose(f)) {
        abort();
    }
    atexit(fz_unlink_topology);
    fz_base = event_base_new();
    return 0;
}

/* A client connection to the controller's management port. */
static int
fz_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *) &sin, sizeof sin)) {
        abort();
    }
    return fd;
}

/* Runs the controller's loop and empties what it sent to 'fds'. */
static void
fz_turn(const int *fds, size_t n)
{
    char sink[65536];
    for (int i = 0; i < 3; i++) {
        event_base_loop(fz_base, EVLOOP_NONBLOCK);
        for (size_t k = 0; k < n; k++) {
            while (recv(fds[k], sink, sizeof sink, MSG_DONTWAIT) > 0) {
            }
        }
    }
}

static void
fz_send(int fd, const void *p, size_t n)
{
    if (n && send(fd, p, n, MSG_NOSIGNAL) < 0 && errno != EPIPE
        && errno != ECONNRESET) {
        abort();                /* the controller may have hung up: fine */
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) {
        return 0;
    }
    struct ctl_config cfg;
    ctl_config_default(&cfg);
    cfg.topology_path = fz_topo;
    cfg.listen = "127.0.0.1:0";
    cfg.http = "off";
    cfg.expect_agents = data[0] & 1 ? 1 : 2;
    cfg.heartbeat_ms = 60000;
    cfg.epochs = 4;
    cfg.plan.model.input_size = 32;
    cfg.plan.model.classes = 10;
    cfg.plan.model.batch = 8;
    struct ctl *ctl;
    char err[256];
    if (ctl_create(fz_base, &cfg, &ctl, err, sizeof err)) {
        fprintf(stderr, "fuzz_ctl: %s\n", err);
        abort();
    }
    uint16_t port = ctl_mgmt_port(ctl);
    int fds[2], n = 0;
    if (data[0] & 2) {
        uint8_t hello[512];
        fds[n++] = fz_connect(port);
        fz_turn(fds, (size_t) n);
        fz_send(fds[0], hello,
                fz_hello(hello, sizeof hello, "a2", 1, 2, 7, 13));
        fz_turn(fds, (size_t) n);
    }
    int fd = fds[n++] = fz_connect(port);
    fz_turn(fds, (size_t) n);
    size_t half = (size - 1) / 2;
    fz_send(fd, data + 1, half);
    fz_turn(fds, (size_t) n);
    fz_send(fd, data + 1 + half, size - 1 - half);
    fz_turn(fds, (size_t) n);
    /* The agent goes away (on_closed: stage lost), then the controller. */
    close(fd);
    fz_turn(fds, (size_t) n - 1);
    ctl_destroy(ctl);
    event_base_loop(fz_base, EVLOOP_NONBLOCK);
    for (int i = 0; i < n - 1; i++) {
        close(fds[i]);
    }
    return 0;
}
