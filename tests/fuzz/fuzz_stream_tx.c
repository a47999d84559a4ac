/* libFuzzer target: the agent's data-stream sender (stream_tx.c) reading
 * what the receiver sends back: Credit (window and acks, which release and
 * resend chunks), Error, anything else. Per input a real sender connects
 * over loopback TCP to the harness, queues three chunks, and the input is
 * the receiver's byte stream. ET_FUZZ_SEEDS=DIR writes seeds and exits.
 * fuzz-sources: agent/stream.c agent/stream_tx.c proto/wire.c proto/codec.c common/log.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_seeds.h"
#include "log.h"
#include "stream.h"
#include "wire.h"

static struct event_base *fz_base;
static int fz_listen = -1;
static char fz_addr[64];

static void
fz_write_seeds(const char *dir)
{
    uint8_t buf[1024];
    size_t n = 0;
    for (uint64_t acked = 0; acked <= 3; acked += 1) {
        Edgetrain__Credit c = EDGETRAIN__CREDIT__INIT;
        c.acked_seq = acked;
        c.chunks = 4;
        n += et_frame_encode_buf(buf + n, sizeof buf - n, ET_MSG_CREDIT,
                                 &c.base, 0);
    }
    fz_seed_write(dir, "credits", buf, n);
    Edgetrain__Error e = EDGETRAIN__ERROR__INIT;
    e.code = 1;
    e.message = "bad token";
    n = et_frame_encode_buf(buf, sizeof buf, ET_MSG_ERROR, &e.base, 0);
    fz_seed_write(dir, "error", buf, n);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FZ_LOG_LEVEL();
    fz_seeds_main(fz_write_seeds);
    signal(SIGPIPE, SIG_IGN);
    fz_base = event_base_new();
    fz_listen = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof sin;
    if (bind(fz_listen, (struct sockaddr *) &sin, sizeof sin)
        || listen(fz_listen, 16)
        || getsockname(fz_listen, (struct sockaddr *) &sin, &len)) {
        abort();
    }
    snprintf(fz_addr, sizeof fz_addr, "127.0.0.1:%u", ntohs(sin.sin_port));
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 48 * 1024) {
        return 0;
    }
    static const uint8_t token[5] = "tok-7";
    struct et_stream_tx_config cfg = {
        .from = "up", .peer = "down", .peer_addr = fz_addr, .run_id = 7,
        .token = token, .token_len = sizeof token, .generation = 1,
        .dtype = EDGETRAIN__DTYPE__DTYPE_F32, .max_pending = 4,
    };
    struct et_stream_tx *tx = et_stream_tx_create(fz_base, &cfg);
    struct et_substream_spec spec = {.id = 0, .weight = 1.0};
    if (!tx || et_stream_tx_set_substreams(tx, &spec, 1, 1)) {
        abort();
    }
    for (int i = 0; i < 3 && et_stream_tx_can_send(tx); i++) {
        struct et_chunk *c = et_chunk_new(1, 2, 2, 1);
        c->micro_count = 1;
        et_stream_tx_send(tx, c);
    }
    /* Accept the sender's connection (it connects from the loop). */
    int fd = -1;
    for (int i = 0; i < 200 && fd < 0; i++) {
        event_base_loop(fz_base, EVLOOP_NONBLOCK);
        struct pollfd p = {fz_listen, POLLIN, 0};
        if (poll(&p, 1, 5) == 1) {
            fd = accept(fz_listen, NULL, NULL);
        }
    }
    if (fd < 0) {
        abort();
    }
    if (size && write(fd, data, size) < 0 && errno != EPIPE
        && errno != ECONNRESET) {
        abort();
    }
    char sink[65536];
    for (int i = 0; i < 4; i++) {
        event_base_loop(fz_base, EVLOOP_NONBLOCK);
        while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
    }
    struct et_stream_tx_stats st;
    et_stream_tx_get_stats(tx, &st);
    if (st.held > st.window + cfg.max_pending + 3) {
        abort();                /* the bound of stream.h */
    }
    et_stream_tx_destroy(tx);
    event_base_loop(fz_base, EVLOOP_NONBLOCK);
    close(fd);
    return 0;
}
