/* libFuzzer target: the agent's data-stream receiver (stream_rx.c), driven
 * through its real read callback. Each input is the byte stream a peer
 * sends on one data connection (StreamHello, Chunk + payload, Heartbeat,
 * InferRequest, ...). The receiver expects run 7, token "tok-7" from
 * upstream "up", so the corpus seeds reach the chunk and request paths.
 * ET_FUZZ_SEEDS=DIR writes those seeds and exits.
 * fuzz-sources: agent/stream.c proto/wire.c proto/codec.c common/log.c */
#define _GNU_SOURCE
#include "../../agent/stream_rx.c"

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fuzz_seeds.h"

static struct event_base *fz_base;

static int
fz_request(void *arg, struct et_stream_conn *conn, const struct et_frame *f,
           const void *payload)
{
    /* What the agent does for an InferRequest: check, then reply. */
    if (f->hdr.type != ET_MSG_INFER_REQUEST) {
        return EPROTO;
    }
    Edgetrain__InferReply r = EDGETRAIN__INFER_REPLY__INIT;
    return et_stream_conn_send(conn, ET_MSG_INFER_REPLY, &r, NULL, 0);
}

static void fz_ready(void *arg) { }
static void fz_error(void *arg, int code, const char *msg) { }

static void
fz_write_seeds(const char *dir)
{
    uint8_t buf[4096];
    size_t n = 0;
    Edgetrain__StreamHello h = EDGETRAIN__STREAM_HELLO__INIT;
    h.from = "up";
    h.run_id = 7;
    h.token.data = (uint8_t *) "tok-7";
    h.token.len = 5;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_STREAM_HELLO,
                             &h.base, 0);
    fz_seed_write(dir, "hello", buf, n);
    uint32_t shape[4] = {2, 2, 2, 1};
    uint32_t labels[2] = {1, 3};
    for (uint64_t seq = 0; seq < 2; seq++) {
        Edgetrain__Chunk c = EDGETRAIN__CHUNK__INIT;
        c.run_id = 7;
        c.seq = seq;
        c.n_shape = 4;
        c.shape = shape;
        c.n_labels = 2;
        c.labels = labels;
        c.micro_count = 1;
        c.steps_per_epoch = 2;
        n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_CHUNK,
                                 &c.base, 8 * 4);
        memset(buf + n, 0x3f, 32);
        n += 32;
    }
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_HEARTBEAT,
                             &hb.base, 0);
    fz_seed_write(dir, "hello-chunks", buf, n);

    Edgetrain__InferRequest ir = EDGETRAIN__INFER_REQUEST__INIT;
    uint32_t ishape[4] = {1, 2, 2, 1};
    ir.n_shape = 4;
    ir.shape = ishape;
    ir.upto = 1;
    ir.top = 1;
    n = et_frame_encode_buf(buf, sizeof buf, ET_MSG_INFER_REQUEST, &ir.base,
                            16);
    memset(buf + n, 0, 16);
    fz_seed_write(dir, "infer", buf, n + 16);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FZ_LOG_LEVEL();
    fz_seeds_main(fz_write_seeds);
    fz_base = event_base_new();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 48 * 1024) {
        return 0;           /* must fit a socket buffer in one write */
    }
    const char *ups[] = {"up"};
    struct et_stream_rx_config cfg = {
        .name = "fuzz", .run_id = 7, .token = (const uint8_t *) "tok-7",
        .token_len = 5, .upstreams = ups, .n_upstreams = 1, .window = 4,
        .expect_hwc = {2, 2, 1}, .max_n = 8,
    };
    struct et_stream_rx_cbs cbs = {
        .ready = fz_ready, .error = fz_error, .request = fz_request,
    };
    struct et_stream_rx *rx = et_stream_rx_create(fz_base, &cfg, &cbs);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        abort();
    }
    int sz = 256 * 1024;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (size && write(sv[1], data, size) != (ssize_t) size) {
        abort();
    }
    shutdown(sv[1], SHUT_WR);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(40000),
                              .sin_addr.s_addr = htonl(0x7f000001)};
    accept_cb(NULL, sv[0], (struct sockaddr *) &sin, sizeof sin, rx);
    uint64_t id = rx->next_conn_id;
    /* Until the receiver closes it (EOF, reject) or stops reading. */
    for (int i = 0; i < 64; i++) {
        struct et_stream_conn *c = et_stream_rx_conn(rx, id);
        if (!c) {
            break;
        }
        conn_read_cb(c->fd, EV_READ, c);
        struct et_chunk *ch;
        while ((ch = et_stream_rx_pop(rx))) {
            et_chunk_free(ch);
        }
    }
    et_stream_rx_destroy(rx);
    close(sv[1]);
    return 0;
}
