/* Activation streams over real loopback sockets: order across sub-streams,
 * dedup, gap detection, weight and sub-stream changes mid-stream without
 * loss, resend after removal, the back-pressure bound, encodings, and bad
 * input closing one connection while the others go on. Sender and
 * receiver share one libevent loop in this process; a "rogue" peer is a
 * plain blocking socket speaking the wire format by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "stream.h"
#include "wire.h"

static const uint8_t TOKEN[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const char *const UPSTREAMS[] = {"up"};

struct fixture {
    struct event_base *base;
    struct et_stream_rx *rx;
    struct et_stream_tx *tx;
    uint16_t port;
    char addr[32];
    int errors;
    char last_error[400];
    uint64_t next_expected;     /* consumer's view: seqs popped in order */
    uint64_t popped;
    bool bad_order;
    bool bad_data;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
on_error(void *arg, int code, const char *msg)
{
    struct fixture *fx = arg;
    fx->errors++;
    snprintf(fx->last_error, sizeof fx->last_error, "%s", msg);
}

/* Chunk contents are a function of seq, so the consumer can check them. */
static float
value(uint64_t seq, size_t i)
{
    return (float) ((seq * 31 + i * 7) % 1000) * 0.01f - 5.0f;
}

static struct et_chunk *
make_chunk(uint64_t seq_hint, uint32_t n, uint32_t hw, uint32_t c)
{
    struct et_chunk *ch = et_chunk_new(n, hw, hw, c);
    for (size_t i = 0; i < et_chunk_elems(ch); i++) {
        ch->data[i] = value(seq_hint, i);
    }
    for (uint32_t i = 0; i < n; i++) {
        ch->labels[i] = (uint32_t) (seq_hint + i) % 10;
    }
    ch->step = seq_hint / 4;
    ch->micro = seq_hint % 4;
    ch->micro_count = 4;
    return ch;
}

/* Pops every ready chunk, checking order and contents (f32 exact, else
 * within 'tol' of |x|max). */
static float check_tol;
/* Content of seq s is value(s + seq_offset): a restarted receiver numbers
 * the same chunks from 0. */
static uint64_t seq_offset;

static void
drain(struct fixture *fx)
{
    struct et_chunk *c;
    while ((c = et_stream_rx_pop(fx->rx))) {
        if (c->seq != fx->next_expected) {
            fx->bad_order = true;
        }
        fx->next_expected = c->seq + 1;
        for (size_t i = 0; i < et_chunk_elems(c); i++) {
            if (fabsf(c->data[i] - value(c->seq + seq_offset, i))
                > check_tol) {
                fx->bad_data = true;
                break;
            }
        }
        if (c->labels[0] != (c->seq + seq_offset) % 10
            || c->micro != (c->seq + seq_offset) % 4) {
            fx->bad_data = true;
        }
        fx->popped++;
        et_chunk_free(c);
    }
}

static bool consume_on_ready = true;

static void
on_ready(void *arg)
{
    if (consume_on_ready) {
        drain(arg);
    }
}

static void
rx_config(struct et_stream_rx_config *cfg, uint32_t window)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->name = "down";
    cfg->run_id = 77;
    cfg->token = TOKEN;
    cfg->token_len = sizeof TOKEN;
    cfg->upstreams = UPSTREAMS;
    cfg->n_upstreams = 1;
    cfg->window = window;
    cfg->expect_hwc[0] = 8;
    cfg->expect_hwc[1] = 8;
    cfg->expect_hwc[2] = 16;
    cfg->max_n = 4;
    cfg->gap_timeout_ms = 2000;     /* well above scheduling stalls (ASan, load) */
}

/* A receiver listening on 'addr' (port 0: any; fx->addr names it). */
static void
rx_start(struct fixture *fx, uint32_t window, const char *addr)
{
    struct et_stream_rx_config rc;
    rx_config(&rc, window);
    struct et_stream_rx_cbs cbs = {.ready = on_ready, .error = on_error,
                                   .arg = fx};
    fx->rx = et_stream_rx_create(fx->base, &rc, &cbs);
    assert_int_equal(et_stream_rx_listen(fx->rx, addr, &fx->port), 0);
    snprintf(fx->addr, sizeof fx->addr, "127.0.0.1:%u", fx->port);
}

static struct fixture *
setup(uint32_t window, int dtype, uint32_t max_pending)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    fx->base = event_base_new();
    rx_start(fx, window, "127.0.0.1:0");
    struct et_stream_tx_config tc = {
        .from = "up", .peer = "down", .peer_addr = fx->addr, .run_id = 77,
        .token = TOKEN, .token_len = sizeof TOKEN, .generation = 1,
        .dtype = dtype, .max_pending = max_pending,
        .substream_buffer = 64 * 1024,
    };
    fx->tx = et_stream_tx_create(fx->base, &tc);
    assert_non_null(fx->tx);
    consume_on_ready = true;
    check_tol = 0;
    seq_offset = 0;
    return fx;
}

static void
teardown_fx(struct fixture *fx)
{
    et_stream_tx_destroy(fx->tx);
    et_stream_rx_destroy(fx->rx);
    event_base_free(fx->base);
    free(fx);
}

/* Runs the loop until 'done(fx)' or 'secs' pass. Returns done(fx). */
static bool
run_until(struct fixture *fx, bool (*done)(struct fixture *), double secs)
{
    double end = now_s() + secs;
    while (!done(fx) && now_s() < end) {
        struct timeval tv = {0, 20 * 1000};
        event_base_loopexit(fx->base, &tv);
        event_base_loop(fx->base, EVLOOP_ONCE);
    }
    return done(fx);
}

static uint64_t target;

static bool
all_acked(struct fixture *fx)
{
    return fx->popped >= target && et_stream_tx_held(fx->tx) == 0;
}

static bool
tx_has_room(struct fixture *fx)
{
    return et_stream_tx_can_send(fx->tx);
}

/* Sends chunks seq 'from'..'to'-1, running the loop when the sender is
 * full. */
static void
send_range(struct fixture *fx, uint64_t from, uint64_t to, uint32_t n)
{
    for (uint64_t s = from; s < to; s++) {
        assert_true(run_until(fx, tx_has_room, 10));
        assert_int_equal(et_stream_tx_send(fx->tx, make_chunk(s, n, 8, 16)),
                         0);
    }
}

static void
set_subs(struct fixture *fx, const double *w, const uint32_t *ids, size_t n,
         uint32_t gen)
{
    struct et_substream_spec sp[8];
    for (size_t i = 0; i < n; i++) {
        sp[i] = (struct et_substream_spec) {.id = ids[i], .weight = w[i]};
    }
    assert_int_equal(et_stream_tx_set_substreams(fx->tx, sp, n, gen), 0);
}

static void
test_order_across_substreams(void **state)
{
    struct fixture *fx = setup(16, EDGETRAIN__DTYPE__DTYPE_F32, 8);
    double w[3] = {0.5, 0.3, 0.2};
    uint32_t ids[3] = {1, 2, 3};
    set_subs(fx, w, ids, 3, 1);
    target = 400;
    send_range(fx, 0, target, 4);
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order);
    assert_false(fx->bad_data);
    assert_int_equal(fx->popped, target);

    struct et_stream_tx_stats ts;
    et_stream_tx_get_stats(fx->tx, &ts);
    /* Smooth WRR: the split follows the weights to within a chunk or two. */
    for (int i = 0; i < 3; i++) {
        printf("sub-stream %u: %llu chunks (weight %.1f)\n", ts.subs[i].id,
               (unsigned long long) ts.subs[i].chunks, w[i]);
        assert_true(fabs((double) ts.subs[i].chunks - w[i] * target) <= 2);
    }
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_int_equal(rs.delivered, target);
    assert_int_equal(rs.duplicates, 0);
    assert_int_equal(rs.connections, 3);
    assert_int_equal(fx->errors, 0);
    teardown_fx(fx);
}

/* Weights change, then the set changes (one removed, one added) while
 * chunks are in flight: every chunk still arrives once, in order. */
static void
test_weight_and_set_change_midstream(void **state)
{
    struct fixture *fx = setup(16, EDGETRAIN__DTYPE__DTYPE_F32, 8);
    double w1[2] = {0.5, 0.5};
    uint32_t ids1[2] = {1, 2};
    set_subs(fx, w1, ids1, 2, 1);
    send_range(fx, 0, 100, 4);
    double w2[2] = {0.9, 0.1};
    set_subs(fx, w2, ids1, 2, 2);
    struct et_stream_tx_stats before;
    et_stream_tx_get_stats(fx->tx, &before);
    send_range(fx, 100, 300, 4);
    struct et_stream_tx_stats mid;
    et_stream_tx_get_stats(fx->tx, &mid);
    uint64_t d1 = mid.subs[0].chunks - before.subs[0].chunks;
    uint64_t d2 = mid.subs[1].chunks - before.subs[1].chunks;
    printf("after 0.9/0.1: %llu / %llu chunks\n", (unsigned long long) d1,
           (unsigned long long) d2);
    assert_true(d1 > 4 * d2);
    double w3[2] = {0.5, 0.5};
    uint32_t ids3[2] = {2, 4};           /* 1 removed, 4 added */
    set_subs(fx, w3, ids3, 2, 3);
    send_range(fx, 300, 500, 4);
    target = 500;
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order);
    assert_false(fx->bad_data);
    assert_int_equal(fx->popped, 500);
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_int_equal(rs.delivered, 500);
    assert_int_equal(fx->errors, 0);
    teardown_fx(fx);
}

static bool
window_full(struct fixture *fx)
{
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    return rs.queued >= 8;
}

/* After resends with the consumer paused at 12 chunks: consumes again,
 * sends up to 40, and checks every chunk was delivered once, in order,
 * intact, the copies dropped by sequence number. */
static void
resume_and_check_once(struct fixture *fx)
{
    consume_on_ready = true;
    drain(fx);
    send_range(fx, 12, 40, 4);
    target = 40;
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order);
    assert_false(fx->bad_data);
    assert_int_equal(fx->popped, 40);
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_int_equal(rs.delivered, 40);
    printf("receiver dropped %llu duplicates\n",
           (unsigned long long) rs.duplicates);
    assert_true(rs.received == rs.delivered + rs.duplicates);
}

/* A sub-stream is removed while its chunks are unacked (the consumer is
 * paused): they are sent again on the other one; the receiver drops the
 * copies it already has; nothing is lost or delivered twice. */
static void
test_removal_resends_unacked(void **state)
{
    struct fixture *fx = setup(8, EDGETRAIN__DTYPE__DTYPE_F32, 8);
    double w[2] = {0.5, 0.5};
    uint32_t ids[2] = {1, 2};
    set_subs(fx, w, ids, 2, 1);
    consume_on_ready = false;
    send_range(fx, 0, 12, 4);
    assert_true(run_until(fx, window_full, 10));
    /* Window full at the receiver: every chunk sent is unacked. */
    double w2[1] = {1.0};
    uint32_t ids2[1] = {2};
    set_subs(fx, w2, ids2, 1, 2);
    struct et_stream_tx_stats ts;
    et_stream_tx_get_stats(fx->tx, &ts);
    printf("resent %llu chunks after removing sub-stream 1\n",
           (unsigned long long) ts.resent);
    assert_true(ts.resent >= 4);
    resume_and_check_once(fx);
    teardown_fx(fx);
}

/* A sub-stream the controller moves to another path (a link of its path
 * failed) keeps its connection, but what was in flight on it is sent
 * again at once; the receiver delivers each chunk once. Same path, an
 * unknown one, or a move off a path that is still up: nothing is resent. */
static void
test_path_change_resends_unacked(void **state)
{
    const char *old_hops[] = {"e1", "c2", "e4"};
    const char *new_hops[] = {"e1", "c1", "e2", "c2", "e4"};
    uint32_t p_old = et_substream_path_id(old_hops, 3);
    uint32_t p_new = et_substream_path_id(new_hops, 5);
    assert_true(p_old && p_new && p_old != p_new);
    assert_int_equal(et_substream_path_id(old_hops, 3), p_old);
    assert_int_not_equal(et_substream_path_id(old_hops, 2), p_old);

    struct fixture *fx = setup(8, EDGETRAIN__DTYPE__DTYPE_F32, 8);
    struct et_substream_spec sp[2] = {
        {.id = 1, .weight = 0.5, .path = p_old},
        {.id = 2, .weight = 0.5, .path = p_old + 1},
    };
    assert_int_equal(et_stream_tx_set_substreams(fx->tx, sp, 2, 1), 0);
    consume_on_ready = false;
    send_range(fx, 0, 12, 4);
    assert_true(run_until(fx, window_full, 10));
    struct et_stream_tx_stats ts;

    /* New weights only, or a path that is not known: no resend. */
    sp[0].weight = 0.6, sp[1].weight = 0.4;
    sp[1].path = 0;
    assert_int_equal(et_stream_tx_set_substreams(fx->tx, sp, 2, 2), 0);
    et_stream_tx_get_stats(fx->tx, &ts);
    assert_int_equal(ts.resent, 0);

    /* Sub-stream 1 moves off a path that is still up (a re-plan for
     * load): TCP carries what is in flight, nothing is resent. */
    sp[0].path = p_new;
    sp[0].old_path_up = true;
    assert_int_equal(et_stream_tx_set_substreams(fx->tx, sp, 2, 3), 0);
    et_stream_tx_get_stats(fx->tx, &ts);
    assert_int_equal(ts.resent, 0);

    /* It moves back because a link of its path failed: its unacked
     * chunks go out again. */
    sp[0].path = p_old;
    sp[0].old_path_up = false;
    assert_int_equal(et_stream_tx_set_substreams(fx->tx, sp, 2, 4), 0);
    et_stream_tx_get_stats(fx->tx, &ts);
    printf("resent %llu chunks after sub-stream 1 moved\n",
           (unsigned long long) ts.resent);
    assert_true(ts.resent >= 2);
    resume_and_check_once(fx);
    teardown_fx(fx);
}

/* A socket bound to 127.0.0.2 on a free port, as the agent's management
 * connection holds an ephemeral port on its own address; the port. */
static uint16_t
hold_port_elsewhere(int *fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    assert_int_equal(bind(*fd, (struct sockaddr *) &a, sizeof a), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(*fd, (struct sockaddr *) &a, &l), 0);
    return ntohs(a.sin_port);
}

static bool
sub0_up(struct fixture *fx)
{
    struct et_stream_tx_stats ts;
    et_stream_tx_get_stats(fx->tx, &ts);
    return ts.n_substreams == 1 && ts.subs[0].up;
}

/* A pinned source port is bound on the agent's data address: a port that
 * some other socket of the host holds on another address (the agent's
 * management connection got it as an ephemeral port) does not keep the
 * sub-stream down. Bound on the wildcard address it would. */
static void
test_pinned_port_binds_the_data_address(void **state)
{
    int held;
    uint16_t port = hold_port_elsewhere(&held);
    struct fixture *fx = setup(8, EDGETRAIN__DTYPE__DTYPE_F32, 8);
    struct et_substream_spec sp = {.id = 0, .weight = 1, .local_port = port};

    /* Without the data address (the wildcard): the bind fails. */
    assert_int_equal(et_stream_tx_set_substreams(fx->tx, &sp, 1, 1), 0);
    assert_false(run_until(fx, sub0_up, 0.5));
    assert_true(fx->errors == 0);
    et_stream_tx_destroy(fx->tx);

    struct et_stream_tx_config tc = {
        .from = "up", .peer = "down", .peer_addr = fx->addr,
        .local_addr = "127.0.0.1:7100", .run_id = 77, .token = TOKEN,
        .token_len = sizeof TOKEN, .generation = 1,
        .dtype = EDGETRAIN__DTYPE__DTYPE_F32, .max_pending = 8,
        .substream_buffer = 64 * 1024,
    };
    fx->tx = et_stream_tx_create(fx->base, &tc);
    assert_non_null(fx->tx);
    assert_int_equal(et_stream_tx_set_substreams(fx->tx, &sp, 1, 1), 0);
    assert_true(run_until(fx, sub0_up, 10));
    send_range(fx, 0, 20, 4);
    target = 20;
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order || fx->bad_data);
    close(held);
    teardown_fx(fx);
}

/* A new sender for the same run (a restarted agent) continues the
 * receiver's stream: it learns the position from its first Credit. */
static void
test_sender_restart_continues(void **state)
{
    struct fixture *fx = setup(8, EDGETRAIN__DTYPE__DTYPE_F32, 4);
    double w[2] = {0.5, 0.5};
    uint32_t ids[2] = {1, 2};
    set_subs(fx, w, ids, 2, 1);
    send_range(fx, 0, 20, 4);
    target = 20;
    assert_true(run_until(fx, all_acked, 10));
    et_stream_tx_destroy(fx->tx);
    struct et_stream_tx_config tc = {
        .from = "up", .peer = "down", .peer_addr = fx->addr, .run_id = 77,
        .token = TOKEN, .token_len = sizeof TOKEN, .generation = 2,
        .dtype = EDGETRAIN__DTYPE__DTYPE_F32, .max_pending = 4,
    };
    fx->tx = et_stream_tx_create(fx->base, &tc);
    set_subs(fx, w, ids, 2, 2);
    /* The new sender numbers from 0; chunk contents follow the seq the
     * receiver will see, so make them for 20.. */
    send_range(fx, 20, 40, 4);
    target = 40;
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order);
    assert_false(fx->bad_data);
    assert_int_equal(fx->popped, 40);
    teardown_fx(fx);
}

/* The receiver restarts (a new process: new stream state, consumed 0)
 * while 8 chunks it had received are unconsumed, so unacked: its first
 * Credit carries a new stream incarnation, and the sender continues the
 * new stream with those 8 renumbered from 0, then the rest. Nothing is
 * lost, nothing out of order. */
static void
test_receiver_restart_continues(void **state)
{
    struct fixture *fx = setup(8, EDGETRAIN__DTYPE__DTYPE_F32, 4);
    double w[2] = {0.5, 0.5};
    uint32_t ids[2] = {1, 2};
    set_subs(fx, w, ids, 2, 1);
    send_range(fx, 0, 20, 4);
    target = 20;
    assert_true(run_until(fx, all_acked, 10));
    consume_on_ready = false;
    send_range(fx, 20, 28, 4);
    assert_true(run_until(fx, window_full, 10));
    et_stream_rx_destroy(fx->rx);
    rx_start(fx, 8, fx->addr);
    consume_on_ready = true;
    fx->next_expected = 0;
    fx->popped = 0;
    seq_offset = 20;
    send_range(fx, 28, 40, 4);
    target = 20;
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order);
    assert_false(fx->bad_data);
    assert_int_equal(fx->popped, 20);
    struct et_stream_tx_stats ts;
    et_stream_tx_get_stats(fx->tx, &ts);
    assert_int_equal(ts.acked, 20);
    assert_int_equal(ts.next_seq, 20);
    teardown_fx(fx);
}

static bool
never(struct fixture *fx)
{
    return false;
}

/* A receiver that does not consume bounds both sides: the receiver holds
 * at most W chunks, the sender at most W + max_pending, and send() says
 * EAGAIN beyond that. */
static void
test_backpressure_bound(void **state)
{
    const uint32_t W = 6, P = 3;
    struct fixture *fx = setup(W, EDGETRAIN__DTYPE__DTYPE_F32, P);
    double w[2] = {0.5, 0.5};
    uint32_t ids[2] = {1, 2};
    set_subs(fx, w, ids, 2, 1);
    consume_on_ready = false;
    uint64_t accepted = 0;
    for (int round = 0; round < 20; round++) {
        while (et_stream_tx_can_send(fx->tx)) {
            assert_int_equal(
                et_stream_tx_send(fx->tx, make_chunk(accepted, 4, 8, 16)), 0);
            accepted++;
        }
        run_until(fx, never, 0.02);
    }
    struct et_chunk *extra = make_chunk(accepted, 4, 8, 16);
    assert_int_equal(et_stream_tx_send(fx->tx, extra), EAGAIN);
    et_chunk_free(extra);
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    printf("accepted %llu, receiver holds %u (W=%u), sender holds %u "
           "(bound %u)\n", (unsigned long long) accepted, rs.queued, W,
           et_stream_tx_held(fx->tx), W + P);
    assert_int_equal(rs.queued, W);
    assert_int_equal(accepted, W + P);
    assert_true(et_stream_tx_held(fx->tx) <= W + P);
    consume_on_ready = true;
    drain(fx);
    target = 50;
    send_range(fx, accepted, target, 4);
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order);
    assert_int_equal(fx->popped, 50);
    teardown_fx(fx);
}

/* f16 and int8 links deliver within the codec's bounds. */
static void
test_encodings(void **state)
{
    int dtypes[2] = {EDGETRAIN__DTYPE__DTYPE_F16, EDGETRAIN__DTYPE__DTYPE_INT8};
    float tols[2] = {5.0f * 0x1p-11f, 5.0f / 127 * 0.5f * 1.001f};
    for (int d = 0; d < 2; d++) {
        struct fixture *fx = setup(8, dtypes[d], 4);
        check_tol = tols[d];
        double w[2] = {0.5, 0.5};
        uint32_t ids[2] = {1, 2};
        set_subs(fx, w, ids, 2, 1);
        target = 60;
        send_range(fx, 0, target, 3);
        assert_true(run_until(fx, all_acked, 10));
        assert_false(fx->bad_order);
        assert_false(fx->bad_data);
        struct et_stream_tx_stats ts;
        et_stream_tx_get_stats(fx->tx, &ts);
        assert_int_equal(ts.payload_bytes_acked,
                         target * 3 * 8 * 8 * 16 * et_dtype_size(dtypes[d]));
        teardown_fx(fx);
    }
}

/* ---- a hand-driven peer ------------------------------------------------ */

static int
rogue_connect(struct fixture *fx)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(fx->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
    return fd;
}

static void
send_frame(int fd, int type, const ProtobufCMessage *m, const void *payload,
           size_t len)
{
    uint8_t hdr[4096];
    size_t n = et_frame_encode_buf(hdr, sizeof hdr, type, m, (uint32_t) len);
    assert_true(n > 0);
    assert_int_equal(write(fd, hdr, n), (ssize_t) n);
    if (len) {
        assert_int_equal(write(fd, payload, len), (ssize_t) len);
    }
}

static void
rogue_hello(int fd, const char *from, const uint8_t *token)
{
    Edgetrain__StreamHello h = EDGETRAIN__STREAM_HELLO__INIT;
    h.from = (char *) from;
    h.run_id = 77;
    h.token.data = (uint8_t *) token;
    h.token.len = sizeof TOKEN;
    h.substream_id = 9;
    send_frame(fd, ET_MSG_STREAM_HELLO, &h.base, NULL, 0);
}

static void
rogue_chunk(int fd, uint64_t seq, uint32_t hw)
{
    struct et_chunk *c = make_chunk(seq, 2, hw, 16);
    Edgetrain__Chunk m = EDGETRAIN__CHUNK__INIT;
    m.run_id = 77;
    m.seq = seq;
    m.step = c->step;
    m.micro = c->micro;
    m.micro_count = 4;
    m.n_shape = 4;
    m.shape = c->shape;
    m.n_labels = 2;
    m.labels = c->labels;
    send_frame(fd, ET_MSG_CHUNK, &m.base, c->data,
               et_chunk_elems(c) * sizeof(float));
    et_chunk_free(c);
}

static uint64_t want_popped;

static bool
popped_enough(struct fixture *fx)
{
    return fx->popped >= want_popped;
}

static int want_errors;

static bool
errors_enough(struct fixture *fx)
{
    return fx->errors >= want_errors;
}

/* Gaps are detected and reported, never skipped; duplicates dropped. */
static void
test_gap_and_duplicate(void **state)
{
    struct fixture *fx = setup(8, EDGETRAIN__DTYPE__DTYPE_F32, 4);
    int fd = rogue_connect(fx);
    rogue_hello(fd, "up", TOKEN);
    rogue_chunk(fd, 0, 8);
    rogue_chunk(fd, 0, 8);          /* duplicate */
    rogue_chunk(fd, 1, 8);
    rogue_chunk(fd, 3, 8);          /* 2 is missing */
    want_popped = 2;
    assert_true(run_until(fx, popped_enough, 5));
    want_errors = 1;
    assert_true(run_until(fx, errors_enough, 5));
    printf("gap report: %s\n", fx->last_error);
    assert_non_null(strstr(fx->last_error, "chunk 2 missing"));
    assert_int_equal(fx->popped, 2);        /* 3 not delivered past the gap */
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_int_equal(rs.gaps, 1);
    assert_int_equal(rs.duplicates, 1);
    rogue_chunk(fd, 2, 8);
    want_popped = 4;
    assert_true(run_until(fx, popped_enough, 5));
    assert_false(fx->bad_order);
    assert_false(fx->bad_data);
    close(fd);
    teardown_fx(fx);
}

/* Holes at the head that come and go (each chunk a little late) are not
 * one long gap, however long some hole is present. */
static void
test_brief_holes_are_not_a_gap(void **state)
{
    struct fixture *fx = setup(16, EDGETRAIN__DTYPE__DTYPE_F32, 4);
    et_stream_rx_destroy(fx->rx);
    struct et_stream_rx_config rc;
    rx_config(&rc, 16);
    rc.gap_timeout_ms = 500;
    rc.nack_ms = 10000;
    struct et_stream_rx_cbs cbs = {.ready = on_ready, .error = on_error,
                                   .arg = fx};
    fx->rx = et_stream_rx_create(fx->base, &rc, &cbs);
    assert_int_equal(et_stream_rx_listen(fx->rx, "127.0.0.1:0", &fx->port),
                     0);
    int fd = rogue_connect(fx);
    rogue_hello(fd, "up", TOKEN);
    rogue_chunk(fd, 1, 8);                  /* 0 late */
    for (uint64_t k = 0; k < 5; k++) {      /* 1.5 s of holes, each 0.3 s */
        run_until(fx, errors_enough, 0.3);
        rogue_chunk(fd, 2 * k, 8);          /* the late one arrives ... */
        rogue_chunk(fd, 2 * k + 3, 8);      /* ... and the next is late */
    }
    rogue_chunk(fd, 10, 8);
    want_popped = 12;
    assert_true(run_until(fx, popped_enough, 5));
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_int_equal(rs.gaps, 0);
    assert_int_equal(fx->errors, 0);
    assert_false(fx->bad_order);
    close(fd);
    teardown_fx(fx);
}

/* ---- a hand-driven end of a connection, beside the event loop ---------- */

struct hand {
    int fd;
    uint8_t buf[1 << 20];
    size_t len;
};

/* Runs 'base' and reads 'h' until a whole frame of 'type' is in; returns
 * its unpacked meta (free with protobuf_c_message_free_unpacked) or NULL
 * after 'secs'. Frames of other types are skipped. */
static ProtobufCMessage *
hand_read(struct event_base *base, struct hand *h, int type, double secs)
{
    double end = now_s() + secs;
    while (now_s() < end) {
        struct et_frame f;
        size_t used;
        if (h->len && et_frame_decode_buf(h->buf, h->len, false, &f, &used)
                      == 0) {
            memmove(h->buf, h->buf + used, h->len - used);
            h->len -= used;
            if (f.hdr.type == type) {
                return f.msg;
            }
            protobuf_c_message_free_unpacked(f.msg, NULL);
            continue;
        }
        struct timeval tv = {0, 10 * 1000};
        event_base_loopexit(base, &tv);
        event_base_loop(base, EVLOOP_ONCE);
        ssize_t n = recv(h->fd, h->buf + h->len, sizeof h->buf - h->len,
                         MSG_DONTWAIT);
        if (n > 0) {
            h->len += (size_t) n;
        }
    }
    return NULL;
}

static void
hand_credit(int fd, uint64_t acked, bool head_missing)
{
    Edgetrain__Credit cr = EDGETRAIN__CREDIT__INIT;
    cr.chunks = 8;
    cr.acked_seq = acked;
    cr.head_missing = head_missing;
    send_frame(fd, ET_MSG_CREDIT, &cr.base, NULL, 0);
}

/* A hole at the head that outlasts nack_ms makes the receiver ask for the
 * chunk again (Credit.head_missing), repeatedly while it lasts, and no
 * more once it is filled. */
static void
test_receiver_asks_for_missing_head(void **state)
{
    struct event_base *base = event_base_new();
    struct et_stream_rx_config rc;
    rx_config(&rc, 8);
    rc.nack_ms = 200;
    struct fixture fx0 = {.base = base};
    struct et_stream_rx_cbs cbs = {.ready = on_ready, .error = on_error,
                                   .arg = &fx0};
    struct fixture *fx = &fx0;
    fx->rx = et_stream_rx_create(base, &rc, &cbs);
    assert_int_equal(et_stream_rx_listen(fx->rx, "127.0.0.1:0", &fx->port),
                     0);
    consume_on_ready = true;
    check_tol = 0;
    static struct hand h;
    h.fd = rogue_connect(fx);
    h.len = 0;
    rogue_hello(h.fd, "up", TOKEN);
    rogue_chunk(h.fd, 0, 8);
    rogue_chunk(h.fd, 1, 8);
    rogue_chunk(h.fd, 3, 8);                /* 2 is stuck somewhere */
    want_popped = 2;
    assert_true(run_until(fx, popped_enough, 5));
    Edgetrain__Credit *cr = NULL;
    double t0 = now_s();
    while (!cr && now_s() - t0 < 5) {
        cr = (Edgetrain__Credit *) hand_read(base, &h, ET_MSG_CREDIT, 5);
        if (cr && !cr->head_missing) {
            protobuf_c_message_free_unpacked(&cr->base, NULL);
            cr = NULL;
        }
    }
    assert_non_null(cr);
    printf("asked for chunk %llu again after %.2f s\n",
           (unsigned long long) cr->acked_seq, now_s() - t0);
    assert_int_equal(cr->acked_seq, 2);
    protobuf_c_message_free_unpacked(&cr->base, NULL);
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_true(rs.nacks >= 1);
    rogue_chunk(h.fd, 2, 8);
    want_popped = 4;
    assert_true(run_until(fx, popped_enough, 5));
    et_stream_rx_get_stats(fx->rx, &rs);
    uint64_t nacks = rs.nacks;
    run_until(fx, errors_enough, 0.6);      /* no hole now: no new request */
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_int_equal(rs.nacks, nacks);
    assert_int_equal(rs.gaps, 0);
    assert_false(fx->bad_order);
    close(h.fd);
    et_stream_rx_destroy(fx->rx);
    event_base_free(base);
}

/* The sender answers Credit.head_missing by sending the head chunk again
 * on another sub-stream if the one it went on is stalled (here: its
 * receiver stops reading, so TCP gets no acknowledgement), not while that
 * one is still moving; once per request round (the receiver asks on every
 * connection at once). */
static void
test_sender_resends_reported_missing(void **state)
{
    struct event_base *base = event_base_new();
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;           /* inherited: a stalled reader stalls TCP */
    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t alen = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *) &a, sizeof a), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *) &a, &alen), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(a.sin_port));
    struct et_stream_tx_config tc = {
        .from = "up", .peer = "down", .peer_addr = addr, .run_id = 77,
        .token = TOKEN, .token_len = sizeof TOKEN, .generation = 1,
        .dtype = EDGETRAIN__DTYPE__DTYPE_F32, .max_pending = 8,
        .substream_buffer = 64 * 1024,
    };
    struct et_stream_tx *tx = et_stream_tx_create(base, &tc);
    assert_non_null(tx);
    struct et_substream_spec sp[2] = {{.id = 1, .weight = 0.5},
                                      {.id = 2, .weight = 0.5}};
    assert_int_equal(et_stream_tx_set_substreams(tx, sp, 2, 1), 0);
    static struct hand h[2];    /* [0]: sub-stream 1, [1]: sub-stream 2 */
    for (int i = 0; i < 2; i++) {
        struct hand tmp = {.fd = accept(l, NULL, NULL)};
        assert_true(tmp.fd >= 0);
        Edgetrain__StreamHello *m = (Edgetrain__StreamHello *) hand_read(
            base, &tmp, ET_MSG_STREAM_HELLO, 5);
        assert_non_null(m);
        assert_true(m->substream_id == 1 || m->substream_id == 2);
        h[m->substream_id - 1].fd = tmp.fd;
        h[m->substream_id - 1].len = 0;
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    for (int i = 0; i < 2; i++) {
        hand_credit(h[i].fd, 0, false);
    }
    /* 256 KiB chunks; the smooth round-robin puts 0 and 2 on sub-stream 1,
     * whose reader never reads, and 1 and 3 on sub-stream 2. */
    for (uint64_t s = 0; s < 4; s++) {
        assert_int_equal(et_stream_tx_send(tx, make_chunk(s, 4, 32, 16)), 0);
    }
    struct timeval tv = {0, 30 * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    /* Asked at once: sub-stream 1 was moving a moment ago, no copy. */
    hand_credit(h[0].fd, 0, true);
    hand_credit(h[1].fd, 0, true);
    for (uint64_t want = 1; want <= 3; want += 2) {
        Edgetrain__Chunk *c = (Edgetrain__Chunk *) hand_read(
            base, &h[1], ET_MSG_CHUNK, 5);
        assert_non_null(c);
        assert_int_equal(c->seq, want);
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    struct et_stream_tx_stats ts;
    et_stream_tx_get_stats(tx, &ts);
    assert_int_equal(ts.nack_resent, 0);
    /* Sub-stream 1 has now had no acknowledgement for a while. */
    tv.tv_usec = 600 * 1000;
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    hand_credit(h[0].fd, 0, true);
    hand_credit(h[1].fd, 0, true);
    Edgetrain__Chunk *again = (Edgetrain__Chunk *) hand_read(
        base, &h[1], ET_MSG_CHUNK, 5);
    assert_non_null(again);
    assert_int_equal(again->seq, 0);
    protobuf_c_message_free_unpacked(&again->base, NULL);
    et_stream_tx_get_stats(tx, &ts);
    assert_int_equal(ts.nack_resent, 1);
    assert_int_equal(ts.resent, 0);
    hand_credit(h[0].fd, 4, false);
    hand_credit(h[1].fd, 4, false);
    double t0 = now_s();
    while (et_stream_tx_held(tx) && now_s() - t0 < 5) {
        tv.tv_usec = 10 * 1000;
        event_base_loopexit(base, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    assert_int_equal(et_stream_tx_held(tx), 0);
    et_stream_tx_destroy(tx);
    close(h[0].fd);
    close(h[1].fd);
    close(l);
    event_base_free(base);
}

static bool
popped_target(struct fixture *fx)
{
    return fx->popped >= target;
}

/* While a real sender streams, bad peers are closed one by one with a
 * reason and an error report; the good stream loses nothing. */
static void
test_bad_input_closes_only_that_connection(void **state)
{
    struct fixture *fx = setup(16, EDGETRAIN__DTYPE__DTYPE_F32, 8);
    double w[2] = {0.5, 0.5};
    uint32_t ids[2] = {1, 2};
    set_subs(fx, w, ids, 2, 1);
    send_range(fx, 0, 50, 4);

    static const char garbage[] = "GET / HTTP/1.0\r\n\r\n";
    uint8_t bad_token[sizeof TOKEN] = {9};
    struct {
        const char *name, *expect;
    } cases[] = {
        {"garbage", "malformed frame: bad magic"},
        {"oversized", "over the size limit"},
        {"bad token", "bad token"},
        {"unknown peer", "unknown peer 'mallory'"},
        {"wrong shape", "does not match the assignment"},
        {"bad proto", "does not unpack"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int fd = rogue_connect(fx);
        switch (i) {
        case 0:
            assert_int_equal(write(fd, garbage, sizeof garbage - 1),
                             (ssize_t) sizeof garbage - 1);
            break;
        case 1: {
            uint8_t h[ET_WIRE_HEADER_SIZE];
            rogue_hello(fd, "up", TOKEN);
            et_frame_header_write(h, ET_MSG_CHUNK, 10, ET_WIRE_MAX_PAYLOAD + 1);
            assert_int_equal(write(fd, h, sizeof h), (ssize_t) sizeof h);
            break;
        }
        case 2: rogue_hello(fd, "up", bad_token); break;
        case 3: rogue_hello(fd, "mallory", TOKEN); break;
        case 4:
            rogue_hello(fd, "up", TOKEN);
            rogue_chunk(fd, 1000, 6);       /* 6x6, the assignment says 8x8 */
            break;
        case 5: {
            uint8_t h[ET_WIRE_HEADER_SIZE + 3] = {0};
            et_frame_header_write(h, ET_MSG_STREAM_HELLO, 3, 0);
            memset(h + ET_WIRE_HEADER_SIZE, 0xff, 3);
            assert_int_equal(write(fd, h, sizeof h), (ssize_t) sizeof h);
            break;
        }
        }
        want_errors = (int) i + 1;
        assert_true(run_until(fx, errors_enough, 5));
        printf("%s -> %s\n", cases[i].name, fx->last_error);
        assert_non_null(strstr(fx->last_error, cases[i].expect));
        /* The receiver closed the rogue connection. */
        char b[256];
        ssize_t r;
        while ((r = read(fd, b, sizeof b)) > 0) {
            continue;       /* a Credit sent before the bad frame */
        }
        assert_true(r <= 0);
        close(fd);
        send_range(fx, 50 + i * 10, 60 + i * 10, 4);
    }
    target = 50 + 6 * 10;
    assert_true(run_until(fx, all_acked, 10));
    assert_false(fx->bad_order);
    assert_false(fx->bad_data);
    assert_int_equal(fx->popped, target);
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(fx->rx, &rs);
    assert_int_equal(rs.rejected, 6);
    assert_int_equal(rs.connections, 2);
    (void) popped_target;
    teardown_fx(fx);
}

int
main(void)
{
    /* As the agent: a Credit written to a connection the sender just
     * closed fails with EPIPE instead of killing the process. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_substreams),
        cmocka_unit_test(test_weight_and_set_change_midstream),
        cmocka_unit_test(test_removal_resends_unacked),
        cmocka_unit_test(test_path_change_resends_unacked),
        cmocka_unit_test(test_backpressure_bound),
        cmocka_unit_test(test_sender_restart_continues),
        cmocka_unit_test(test_receiver_restart_continues),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_gap_and_duplicate),
        cmocka_unit_test(test_receiver_asks_for_missing_head),
        cmocka_unit_test(test_brief_holes_are_not_a_gap),
        cmocka_unit_test(test_sender_resends_reported_missing),
        cmocka_unit_test(test_bad_input_closes_only_that_connection),
        cmocka_unit_test(test_pinned_port_binds_the_data_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
