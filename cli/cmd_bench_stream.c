/* edgetrain bench-stream: activation-stream goodput through the agent's
 * real stream code (agent/stream.h): Chunk frames with tensor payloads,
 * K TCP sub-streams, credit flow control, reordering at the receiver.
 *
 *   edgetrain bench-stream --listen ADDR:PORT
 *   edgetrain bench-stream --to HOST:PORT --substreams K --seconds S
 *
 * The sender's last line is "goodput_mbps=<float>": tensor payload bytes
 * acknowledged by the receiver (consumed in order), per second, in 10^6
 * bit/s, over S seconds after a warm-up of min(1 s, S/5) that fills the
 * window. tests/bench/stream.sh runs it beside iperf3. */
#include <event2/event.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "log.h"
#include "stream.h"
#include "wire.h"

static const uint8_t BENCH_TOKEN[] = "edgetrain-bench";
#define BENCH_RUN 1

struct bench {
    struct event_base *base;
    struct et_stream_tx *tx;
    struct et_stream_rx *rx;
    uint32_t shape[4];
    float *tensor;              /* one activation tensor, shared */
    uint64_t step;
    uint64_t popped, next_seq, out_of_order;
    double t0;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
parse_dtype(const char *s)
{
    return !strcmp(s, "f32") ? EDGETRAIN__DTYPE__DTYPE_F32
           : !strcmp(s, "f16") ? EDGETRAIN__DTYPE__DTYPE_F16
           : !strcmp(s, "int8") ? EDGETRAIN__DTYPE__DTYPE_INT8 : -1;
}

/* Keeps the sender full: one chunk per free slot, all pointing at the
 * same tensor (the network path is measured, not malloc). */
static void
bench_fill(void *arg)
{
    struct bench *b = arg;
    while (et_stream_tx_can_send(b->tx)) {
        struct et_chunk *c = calloc(1, sizeof *c);
        memcpy(c->shape, b->shape, sizeof c->shape);
        c->labels = calloc(b->shape[0], sizeof *c->labels);
        c->data = b->tensor;
        c->borrowed = true;
        c->step = b->step / 4;
        c->micro = b->step % 4;
        c->micro_count = 4;
        b->step++;
        if (et_stream_tx_send(b->tx, c)) {
            et_chunk_free(c);
            return;
        }
    }
}

static void
bench_ready(void *arg)
{
    struct bench *b = arg;
    struct et_chunk *c;
    while ((c = et_stream_rx_pop(b->rx))) {
        if (c->seq != b->next_seq) {
            b->out_of_order++;
        }
        b->next_seq = c->seq + 1;
        b->popped++;
        et_chunk_free(c);
    }
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void
usage(void)
{
    printf("usage: edgetrain bench-stream --listen ADDR:PORT [--window W]\n"
           "       edgetrain bench-stream --to HOST:PORT [--substreams K]\n"
           "           [--seconds S] [--shape N,H,W,C] [--dtype f32|f16|int8]\n"
           "           [--local-port-base P] [--buffer-kb B]\n");
}

static int
run_receiver(struct bench *b, const char *listen, uint32_t window)
{
    struct et_stream_rx_config cfg = {
        .name = "bench-rx", .run_id = BENCH_RUN, .token = BENCH_TOKEN,
        .token_len = sizeof BENCH_TOKEN - 1, .window = window,
    };
    struct et_stream_rx_cbs cbs = {.ready = bench_ready, .arg = b};
    b->rx = et_stream_rx_create(b->base, &cfg, &cbs);
    uint16_t port;
    int err = et_stream_rx_listen(b->rx, listen, &port);
    if (err) {
        fprintf(stderr, "bench-stream: cannot listen on %s: %s\n", listen,
                strerror(err));
        return 1;
    }
    printf("listening on port %u\n", port);
    fflush(stdout);
    event_base_dispatch(b->base);
    struct et_stream_rx_stats st;
    et_stream_rx_get_stats(b->rx, &st);
    printf("received %llu chunks in order (%llu out of order, %llu "
           "duplicates), %.1f MB read\n", (unsigned long long) b->popped,
           (unsigned long long) b->out_of_order,
           (unsigned long long) st.duplicates, st.bytes / 1e6);
    et_stream_rx_destroy(b->rx);
    return b->out_of_order ? 1 : 0;
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static int
run_sender(struct bench *b, const char *to, int k, double seconds, int dtype,
           int port_base, size_t buffer)
{
    struct et_stream_tx_config cfg = {
        .from = "bench-tx", .peer = "bench-rx", .peer_addr = to,
        .run_id = BENCH_RUN, .token = BENCH_TOKEN,
        .token_len = sizeof BENCH_TOKEN - 1, .generation = 1,
        .dtype = dtype, .substream_buffer = buffer,
    };
    b->tx = et_stream_tx_create(b->base, &cfg);
    if (!b->tx) {
        fprintf(stderr, "bench-stream: bad address '%s'\n", to);
        return 2;
    }
    struct et_substream_spec specs[16];
    for (int i = 0; i < k; i++) {
        specs[i] = (struct et_substream_spec) {
            .id = (uint32_t) i + 1,
            .local_port = port_base ? (uint16_t) (port_base + i) : 0,
            .weight = 1.0 / k,
        };
    }
    size_t n = (size_t) b->shape[0] * b->shape[1] * b->shape[2] * b->shape[3];
    b->tensor = malloc(n * sizeof *b->tensor);
    for (size_t i = 0; i < n; i++) {
        /* ReLU6-like activations: many zeros, the rest in (0, 6]. */
        float v = (float) ((i * 2654435761u) % 1000) / 1000.0f * 8.0f - 2.0f;
        b->tensor[i] = v < 0 ? 0 : v > 6 ? 6 : v;
    }
    et_stream_tx_set_room_cb(b->tx, bench_fill, b);
    et_stream_tx_set_substreams(b->tx, specs, (size_t) k, 1);
    bench_fill(b);

    /* Wait for the first credit (all connections up), then measure. */
    struct et_stream_tx_stats st;
    double give_up = now_s() + 10;
    do {
        event_base_loop(b->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        et_stream_tx_get_stats(b->tx, &st);
    } while (!st.window && now_s() < give_up);
    if (!st.window) {
        fprintf(stderr, "bench-stream: no credit from %s in 10 s\n", to);
        et_stream_tx_destroy(b->tx);
        return 1;
    }
    /* Warm-up (not counted): the window and the socket buffers fill, so
     * what follows is the steady rate at which the receiver consumes. */
    struct event *stop = evtimer_new(b->base, stop_cb, b->base);
    double warm = seconds * 0.2 < 1.0 ? seconds * 0.2 : 1.0;
    struct timeval tw = {(time_t) warm,
                         (suseconds_t) ((warm - (time_t) warm) * 1e6)};
    evtimer_add(stop, &tw);
    event_base_dispatch(b->base);
    et_stream_tx_get_stats(b->tx, &st);
    uint64_t bytes0 = st.payload_bytes_acked;
    double t0 = now_s();
    struct timeval tv = {(time_t) seconds,
                         (suseconds_t) ((seconds - (time_t) seconds) * 1e6)};
    evtimer_add(stop, &tv);
    event_base_dispatch(b->base);
    double dt = now_s() - t0;
    et_stream_tx_get_stats(b->tx, &st);
    double mbps = (st.payload_bytes_acked - bytes0) * 8.0 / dt / 1e6;
    for (size_t i = 0; i < st.n_substreams; i++) {
        printf("sub-stream %u: %llu chunks, %.1f MB\n", st.subs[i].id,
               (unsigned long long) st.subs[i].chunks,
               st.subs[i].bytes / 1e6);
    }
    printf("chunk (%u,%u,%u,%u) %s, %d sub-streams, %.2f s, %llu chunks "
           "acked\n", b->shape[0], b->shape[1], b->shape[2], b->shape[3],
           dtype == 0 ? "f32" : dtype == 1 ? "f16" : "int8", k, dt,
           (unsigned long long) st.acked);
    printf("goodput_mbps=%.1f\n", mbps);
    event_free(stop);
    et_stream_tx_destroy(b->tx);
    free(b->tensor);
    return 0;
}

int
cmd_bench_stream(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"to", required_argument, NULL, 't'},
        {"substreams", required_argument, NULL, 'k'},
        {"seconds", required_argument, NULL, 's'},
        {"shape", required_argument, NULL, 'S'},
        {"dtype", required_argument, NULL, 'd'},
        {"window", required_argument, NULL, 'w'},
        {"local-port-base", required_argument, NULL, 'p'},
        {"buffer-kb", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *to = NULL;
    int k = 1, dtype = 0, port_base = 0;
    long buffer_kb = 8192;
    double seconds = 5;
    uint32_t window = 16;
    struct bench b = {.shape = {16, 32, 32, 64}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 't': to = optarg; break;
        case 'k': k = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'w': window = (uint32_t) atoi(optarg); break;
        case 'p': port_base = atoi(optarg); break;
        case 'b': buffer_kb = atol(optarg); break;
        case 'd':
            dtype = parse_dtype(optarg);
            if (dtype < 0) {
                fprintf(stderr, "bench-stream: --dtype is f32, f16 or int8, "
                        "not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'S':
            if (sscanf(optarg, "%u,%u,%u,%u", &b.shape[0], &b.shape[1],
                       &b.shape[2], &b.shape[3]) != 4
                || !b.shape[0] || !b.shape[1] || !b.shape[2] || !b.shape[3]
                || (uint64_t) b.shape[0] * b.shape[1] * b.shape[2]
                   * b.shape[3] * 4 > ET_WIRE_MAX_PAYLOAD) {
                fprintf(stderr, "bench-stream: --shape N,H,W,C with a "
                        "tensor of at most %u bytes, not '%s'\n",
                        ET_WIRE_MAX_PAYLOAD, optarg);
                return 2;
            }
            break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (!listen == !to || k < 1 || k > 16 || !(seconds > 0) || !window
        || buffer_kb < 64) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    et_stream_tune_malloc();
    b.base = event_base_new();
    struct event *sigint = evsignal_new(b.base, SIGINT, on_signal, b.base);
    struct event *sigterm = evsignal_new(b.base, SIGTERM, on_signal, b.base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    int rc = listen ? run_receiver(&b, listen, window)
             : run_sender(&b, to, k, seconds, dtype, port_base,
                          (size_t) buffer_kb * 1024);
    event_free(sigint);
    event_free(sigterm);
    event_base_free(b.base);
    return rc;
}
