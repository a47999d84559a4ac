/* libFuzzer target: the controller's management channel (mgmt.c), driven
 * through its real accept and read callbacks on a socketpair. Each input is
 * what an agent sends after the Challenge: Hello, then Heartbeat, Metrics,
 * Checkpoint (+ payload), Error, or anything else. The first input byte
 * picks the mode: even = no cluster key (Hello accepted, so every message
 * type reaches dispatch), odd = with a key (the pre-authentication path a
 * stranger sees). The hello/frame callbacks look at every field the
 * controller reads. ET_FUZZ_SEEDS=DIR writes seeds and exits.
 * fuzz-sources: controller/topology.c proto/wire.c common/log.c */
#define _GNU_SOURCE
#include "../../controller/mgmt.c"

#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "fuzz_seeds.h"

static struct event_base *fz_base;
static struct mgmt *fz_open, *fz_keyed;
static volatile size_t fz_sink;

static int
fz_hello(void *aux, struct mgmt_conn *conn, const Edgetrain__Hello *h,
         char *reason, size_t size)
{
    fz_sink += strlen(h->name) + (h->data_addr ? strlen(h->data_addr) : 0);
    if (h->current) {
        fz_sink += h->current->n_upstream + h->current->n_downstream;
    }
    return 0;
}

static void
fz_frame(void *aux, struct mgmt_conn *conn, int type,
         const ProtobufCMessage *msg, const uint8_t *payload, size_t len)
{
    if (type == ET_MSG_METRICS) {
        const Edgetrain__Metrics *m = (const Edgetrain__Metrics *) msg;
        fz_sink += m->n_substreams + (m->name ? strlen(m->name) : 0);
    } else if (type == ET_MSG_CHECKPOINT && len) {
        fz_sink += payload[0] + payload[len - 1];
    }
}

static void fz_closed(void *aux, struct mgmt_conn *conn, const char *r) { }

static void
fz_write_seeds(const char *dir)
{
    uint8_t buf[4096];
    size_t n = 0;
    buf[n++] = 0;                       /* mode: no key */
    Edgetrain__Hello h = EDGETRAIN__HELLO__INIT;
    h.name = "pi1";
    h.data_addr = "10.0.0.1:7100";
    h.protocol_version = 1;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HELLO, &h.base, 0);
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    hb.seq = 1;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HEARTBEAT,
                             &hb.base, 0);
    Edgetrain__Metrics m = EDGETRAIN__METRICS__INIT;
    m.name = "pi1";
    m.run_id = 3;
    m.loss = 2.5;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_METRICS,
                             &m.base, 0);
    Edgetrain__Checkpoint ck = EDGETRAIN__CHECKPOINT__INIT;
    ck.name = "pi1";
    ck.run_id = 3;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_CHECKPOINT,
                             &ck.base, 8);
    memcpy(buf + n, "ETCKPT\r\n", 8);
    n += 8;
    Edgetrain__Error er = EDGETRAIN__ERROR__INIT;
    er.code = 5;
    er.message = "disk";
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_ERROR, &er.base,
                             0);
    fz_seed_write(dir, "session", buf, n);
    buf[0] = 1;                         /* the same with a key: refused */
    fz_seed_write(dir, "session-keyed", buf, n);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FZ_LOG_LEVEL();
    fz_seeds_main(fz_write_seeds);
    signal(SIGPIPE, SIG_IGN);  /* as the controller does */
    fz_base = event_base_new();
    struct mgmt_callbacks cb = {fz_hello, fz_frame, fz_closed};
    struct mgmt_config cfg = {.listen = "127.0.0.1:0", .heartbeat_ms = 1000,
                              .timeout_periods = 3,
                              .controller_id = "fuzz"};
    if (mgmt_create(fz_base, &cfg, &cb, NULL, &fz_open)) {
        abort();
    }
    cfg.key = (const uint8_t *) "cluster-key";
    cfg.key_len = 11;
    if (mgmt_create(fz_base, &cfg, &cb, NULL, &fz_keyed)) {
        abort();
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) {
        return 0;
    }
    struct mgmt *m = data[0] & 1 ? fz_keyed : fz_open;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)) {
        abort();
    }
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(40000),
                              .sin_addr.s_addr = htonl(0x7f000001)};
    accept_cb(NULL, sv[0], (struct sockaddr *) &sin, sizeof sin, m);
    struct mgmt_conn *c = m->conns;
    /* The bytes arrive through the socket in two pieces; the event loop
     * runs the bufferevent, which calls read_cb as in the controller. */
    size_t half = (size - 1) / 2;
    if (half && write(sv[1], data + 1, half) != (ssize_t) half) {
        abort();
    }
    event_base_loop(fz_base, EVLOOP_NONBLOCK);
    size_t rest = size - 1 - half;
    if (rest && write(sv[1], data + 1 + half, rest) < 0 && errno != EPIPE
        && errno != ECONNRESET) {
        abort();                /* the controller may have closed: fine */
    }
    event_base_loop(fz_base, EVLOOP_NONBLOCK);
    /* Close (if the input did not) and let the loop free the connection
     * the way the controller does; force it if output is stuck. */
    if (m->conns == c && !c->closing) {
        mgmt_close(c, 0, "fuzz input ended");
    }
    for (int i = 0; i < 8 && m->conns == c; i++) {
        char sink[65536];
        while (read(sv[1], sink, sizeof sink) > 0) {
        }
        event_base_loop(fz_base, EVLOOP_NONBLOCK);
    }
    if (m->conns == c) {
        conn_free(c);
    }
    /* libevent finalises (and closes) the bufferevent from the loop. */
    event_base_loop(fz_base, EVLOOP_NONBLOCK);
    close(sv[1]);
    return 0;
}
