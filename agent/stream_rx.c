/* Activation stream receiver: see stream.h.
 *
 * Connections are raw non-blocking sockets driven by libevent events (not
 * bufferevents) so that a chunk's payload can be read from the socket
 * straight into the chunk's tensor: the frame header and meta go through
 * an evbuffer, the tensor bytes do not.
 *
 * Per stream (one sender, one run), chunks wait in a ring of W slots
 * indexed by seq % W, holding seqs in [consumed, consumed + W). */
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "wire.h"

#define RX_READ_CHUNK   (256 * 1024)     /* evbuffer read size */
#define RX_BUDGET       (16u << 20)      /* bytes per wake-up per connection */
#define RX_MAX_CONNS    128              /* open data connections, at most */

struct rx_stream;

enum conn_kind { CONN_NEW, CONN_STREAM, CONN_REQUEST };

struct et_stream_conn {
    struct et_stream_rx *rx;
    struct et_stream_conn *next;        /* in rx->conns */
    uint64_t id;
    int fd;
    char peer[64];                      /* "ip:port" */
    enum conn_kind kind;
    struct rx_stream *stream;           /* CONN_STREAM */
    uint32_t substream_id;
    struct event *rev, *wev;
    struct evbuffer *in, *out;
    uint64_t bytes;

    /* Payload in progress: 'want' bytes left to read into dst + got. */
    struct et_frame frame;              /* its header and meta */
    struct et_chunk *chunk;             /* receiving chunk, or NULL */
    uint8_t *dst;                       /* NULL: discard the bytes */
    size_t got, want;
    uint8_t *scratch;                   /* encoded payload, requests */
    size_t scratch_cap;
    bool in_payload;
};

struct rx_stream {
    struct rx_stream *next;
    char *from;
    uint64_t run_id;
    uint32_t generation;
    struct et_chunk **ring;             /* W slots */
    uint64_t consumed;                  /* every seq below was popped */
    uint64_t credited;                  /* 'consumed' last sent as credit */
    uint64_t max_seen;                  /* highest seq + 1 received */
    uint32_t incarnation;               /* Credit.stream_incarnation */
    double hole_since;                  /* head missing, later ones here */
    uint64_t hole_seq;                  /* ... that head: 'consumed' then */
    double nacked_at;                   /* last head_missing Credit; 0: none */
    bool gap_reported;
};

struct et_stream_rx {
    struct event_base *base;
    struct et_stream_rx_config cfg;     /* strings below are our copies */
    char *name;
    uint8_t *token;
    char **upstreams;
    struct et_stream_rx_cbs cbs;
    struct evconnlistener *listener;
    struct event *timer;
    struct et_stream_conn *conns;
    struct rx_stream *streams;
    struct et_stream_rx_stats st;
    uint64_t next_conn_id;
    uint8_t discard[RX_READ_CHUNK];
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void conn_close(struct et_stream_conn *);
static void conn_flush(struct et_stream_conn *);

/* ------------------------------------------------------------------------
 * Configuration. */

static void
rx_cfg_free(struct et_stream_rx *rx)
{
    free(rx->name);
    free(rx->token);
    for (size_t i = 0; i < rx->cfg.n_upstreams; i++) {
        free(rx->upstreams[i]);
    }
    free(rx->upstreams);
    rx->name = NULL, rx->token = NULL, rx->upstreams = NULL;
}

static void
rx_cfg_copy(struct et_stream_rx *rx, const struct et_stream_rx_config *cfg)
{
    rx_cfg_free(rx);
    rx->cfg = *cfg;
    rx->name = strdup(cfg->name ? cfg->name : "");
    rx->token = malloc(cfg->token_len + 1);
    if (cfg->token_len) {
        memcpy(rx->token, cfg->token, cfg->token_len);
    }
    rx->upstreams = calloc(cfg->n_upstreams + 1, sizeof *rx->upstreams);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        rx->upstreams[i] = strdup(cfg->upstreams[i]);
    }
    rx->cfg.name = rx->name;
    rx->cfg.token = rx->token;
    rx->cfg.upstreams = cfg->upstreams ? (const char *const *) rx->upstreams
                        : NULL;
    if (!rx->cfg.window) {
        rx->cfg.window = 16;
    }
    if (!rx->cfg.gap_timeout_ms) {
        rx->cfg.gap_timeout_ms = 3000;
    }
    if (!rx->cfg.nack_ms) {
        rx->cfg.nack_ms = 400;
    }
}

/* ------------------------------------------------------------------------
 * Streams. */

static struct rx_stream *
stream_find(struct et_stream_rx *rx, const char *from, uint64_t run_id)
{
    for (struct rx_stream *s = rx->streams; s; s = s->next) {
        if (s->run_id == run_id && !strcmp(s->from, from)) {
            return s;
        }
    }
    return NULL;
}

static struct rx_stream *
stream_new(struct et_stream_rx *rx, const char *from, uint64_t run_id)
{
    struct rx_stream *s = calloc(1, sizeof *s);
    s->from = strdup(from);
    s->run_id = run_id;
    s->ring = calloc(rx->cfg.window, sizeof *s->ring);
    /* Tells a sender that this is a new stream state, not the one it
     * sent to before (stream_tx.c, tx_receiver_restarted). */
    static uint32_t counter;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r) {
        r = (uint32_t) getpid() * 2654435761u;   /* differs per process */
    }
    s->incarnation = (r + ++counter) | 1;     /* nonzero, new per stream */
    s->next = rx->streams;
    rx->streams = s;
    rx->st.streams++;
    return s;
}

static void
stream_free(struct et_stream_rx *rx, struct rx_stream *s)
{
    for (uint32_t i = 0; i < rx->cfg.window; i++) {
        if (s->ring[i]) {
            et_chunk_free(s->ring[i]);
            rx->st.queued--;
        }
    }
    free(s->ring);
    free(s->from);
    free(s);
    rx->st.streams--;
}

/* Sends Credit{W, consumed, head_missing} on 'c'. */
static void
conn_send_credit(struct et_stream_conn *c, bool head_missing)
{
    Edgetrain__Credit cr = EDGETRAIN__CREDIT__INIT;
    cr.chunks = c->rx->cfg.window;
    cr.acked_seq = c->stream->consumed;
    cr.stream_incarnation = c->stream->incarnation;
    cr.head_missing = head_missing;
    et_frame_encode_evbuffer(c->out, ET_MSG_CREDIT, &cr.base, NULL, 0,
                             NULL, NULL);
    conn_flush(c);
}

/* Grants credit on every connection of 's' (a Credit may be lost with a
 * dying connection; the absolute form makes repeats harmless), asking for
 * the head chunk again if 'head_missing'. */
static void
stream_send_credit(struct et_stream_rx *rx, struct rx_stream *s,
                   bool head_missing)
{
    for (struct et_stream_conn *c = rx->conns; c; c = c->next) {
        if (c->stream == s) {
            conn_send_credit(c, head_missing);
        }
    }
    s->credited = s->consumed;
}

static void
stream_credit(struct et_stream_rx *rx, struct rx_stream *s)
{
    stream_send_credit(rx, s, false);
}

struct et_chunk *
et_stream_rx_pop(struct et_stream_rx *rx)
{
    uint32_t w = rx->cfg.window;
    for (struct rx_stream *s = rx->streams; s; s = s->next) {
        struct et_chunk **slot = &s->ring[s->consumed % w];
        if (!*slot) {
            continue;
        }
        struct et_chunk *c = *slot;
        *slot = NULL;
        s->consumed++;
        rx->st.delivered++;
        rx->st.queued--;
        uint32_t step = w >= 8 ? w / 4 : 1;
        if (s->consumed - s->credited >= step) {
            stream_credit(rx, s);
        }
        return c;
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * Connections. */

/* Closes 'c' for bad input: logs the reason and tells the owner. */
static void
conn_reject(struct et_stream_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conn_reject(struct et_stream_conn *c, int code, const char *fmt, ...)
{
    char why[200], msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "data connection from %s%s%s%s: %s; closed",
             c->peer, c->stream ? " (" : "", c->stream ? c->stream->from : "",
             c->stream ? ")" : "", why);
    ET_WARN("%s", msg);
    struct et_stream_rx *rx = c->rx;
    rx->st.rejected++;
    conn_close(c);
    if (rx->cbs.error) {
        rx->cbs.error(rx->cbs.arg, code, msg);
    }
}

static void
conn_flush(struct et_stream_conn *c)
{
    if (evbuffer_get_length(c->out)) {
        evbuffer_write(c->out, c->fd);
    }
    if (evbuffer_get_length(c->out)) {
        event_add(c->wev, NULL);
    }
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct et_stream_conn *c = arg;
    if (evbuffer_write(c->out, fd) < 0 && errno != EAGAIN) {
        return;     /* the read side sees the error */
    }
    if (!evbuffer_get_length(c->out)) {
        event_del(c->wev);
    }
}

int
et_stream_conn_send(struct et_stream_conn *c, int type, const void *msg,
                    const void *payload, size_t len)
{
    int err = et_frame_encode_evbuffer(c->out, type, msg, payload, len,
                                       NULL, NULL);
    if (!err) {
        conn_flush(c);
    }
    return err;
}

static void
conn_close(struct et_stream_conn *c)
{
    struct et_stream_rx *rx = c->rx;
    for (struct et_stream_conn **p = &rx->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    rx->st.connections--;
    event_free(c->rev);
    event_free(c->wev);
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    close(c->fd);
    et_frame_clear(&c->frame);
    et_chunk_free(c->chunk);
    free(c->scratch);
    free(c);
}

static bool
token_ok(const struct et_stream_rx *rx, const ProtobufCBinaryData *t)
{
    if (t->len != rx->cfg.token_len) {
        return false;
    }
    uint8_t diff = 0;
    for (size_t i = 0; i < t->len; i++) {
        diff |= t->data[i] ^ rx->token[i];
    }
    return diff == 0;
}

static bool
upstream_ok(const struct et_stream_rx *rx, const char *from)
{
    if (!rx->cfg.upstreams) {
        return true;
    }
    for (size_t i = 0; i < rx->cfg.n_upstreams; i++) {
        if (!strcmp(rx->upstreams[i], from)) {
            return true;
        }
    }
    return false;
}

/* Handles a StreamHello. Returns false if 'c' was closed. */
static bool
conn_hello(struct et_stream_conn *c, const Edgetrain__StreamHello *h)
{
    struct et_stream_rx *rx = c->rx;
    if (!upstream_ok(rx, h->from)) {
        conn_reject(c, EPERM, "unknown peer '%s'", h->from);
        return false;
    }
    if (h->run_id != rx->cfg.run_id) {
        conn_reject(c, EPERM, "peer '%s' speaks of run %llu, not %llu",
                    h->from, (unsigned long long) h->run_id,
                    (unsigned long long) rx->cfg.run_id);
        return false;
    }
    if (!token_ok(rx, &h->token)) {
        conn_reject(c, EPERM, "peer '%s' presented a bad token", h->from);
        return false;
    }
    struct rx_stream *s = stream_find(rx, h->from, h->run_id);
    if (!s) {
        s = stream_new(rx, h->from, h->run_id);
    }
    if (h->generation > s->generation) {
        s->generation = h->generation;
    }
    c->kind = CONN_STREAM;
    c->stream = s;
    c->substream_id = h->substream_id;
    ET_INFO("stream from %s: sub-stream %u connected from %s "
            "(generation %u)", h->from, h->substream_id, c->peer,
            h->generation);
    conn_send_credit(c, false);
    return true;
}

/* Checks a Chunk's meta against the assignment and the window and sets up
 * its payload read. Returns false if 'c' was closed. */
static bool
conn_chunk_meta(struct et_stream_conn *c)
{
    struct et_stream_rx *rx = c->rx;
    struct rx_stream *s = c->stream;
    const Edgetrain__Chunk *m = (const Edgetrain__Chunk *) c->frame.msg;
    const uint32_t *e = rx->cfg.expect_hwc;
    if (m->run_id != s->run_id) {
        conn_reject(c, EINVAL, "chunk %llu of run %llu on a run %llu stream",
                    (unsigned long long) m->seq,
                    (unsigned long long) m->run_id,
                    (unsigned long long) s->run_id);
        return false;
    }
    if ((e[0] && m->shape[1] != e[0]) || (e[1] && m->shape[2] != e[1])
        || (e[2] && m->shape[3] != e[2])
        || (rx->cfg.max_n && m->shape[0] > rx->cfg.max_n)) {
        conn_reject(c, ET_WIRE_BAD_SHAPE, "chunk %llu shape (%u,%u,%u,%u) "
                    "does not match the assignment (N<=%u,%u,%u,%u)",
                    (unsigned long long) m->seq, m->shape[0], m->shape[1],
                    m->shape[2], m->shape[3], rx->cfg.max_n, e[0], e[1], e[2]);
        return false;
    }
    if (m->seq >= s->consumed + rx->cfg.window) {
        conn_reject(c, ET_WIRE_TOO_LARGE, "chunk %llu beyond the credit "
                    "window (consumed %llu, window %u)",
                    (unsigned long long) m->seq,
                    (unsigned long long) s->consumed, rx->cfg.window);
        return false;
    }
    size_t len = c->frame.hdr.payload_len;
    c->in_payload = true;
    c->got = 0;
    c->want = len;
    c->dst = NULL;
    if (m->seq < s->consumed || s->ring[m->seq % rx->cfg.window]) {
        return true;        /* a duplicate: read and drop its payload */
    }
    c->chunk = et_chunk_new(m->shape[0], m->shape[1], m->shape[2],
                            m->shape[3]);
    if (!c->chunk) {
        conn_reject(c, ENOMEM, "no memory for a %zu-byte chunk", len);
        return false;
    }
    if (m->dtype == EDGETRAIN__DTYPE__DTYPE_F32) {
        c->dst = (uint8_t *) c->chunk->data;
    } else {
        if (c->scratch_cap < len) {
            free(c->scratch);
            c->scratch = malloc(len);
            c->scratch_cap = c->scratch ? len : 0;
        }
        c->dst = c->scratch;
        if (!c->dst) {
            conn_reject(c, ENOMEM, "no memory for a %zu-byte chunk", len);
            return false;
        }
    }
    return true;
}

/* A chunk's payload has arrived: decode it, put it in its slot. */
static void
conn_chunk_done(struct et_stream_conn *c)
{
    struct et_stream_rx *rx = c->rx;
    struct rx_stream *s = c->stream;
    const Edgetrain__Chunk *m = (const Edgetrain__Chunk *) c->frame.msg;
    struct et_chunk *ch = c->chunk;
    c->chunk = NULL;
    rx->st.received++;
    struct et_chunk **slot = &s->ring[m->seq % rx->cfg.window];
    if (!ch || m->seq < s->consumed || *slot) {
        /* Sent twice (a resend after a sub-stream change): drop it. */
        rx->st.duplicates++;
        ET_DEBUG("stream from %s: duplicate chunk %llu dropped", s->from,
                 (unsigned long long) m->seq);
        et_chunk_free(ch);
        return;
    }
    if (m->dtype != EDGETRAIN__DTYPE__DTYPE_F32) {
        et_codec_decode(m->dtype, c->scratch, et_chunk_elems(ch), m->scale,
                        ch->data);
    }
    ch->run_id = m->run_id;
    ch->epoch = m->epoch;
    ch->step = m->step;
    ch->seq = m->seq;
    ch->micro = m->micro;
    ch->micro_count = m->micro_count;
    ch->eval = m->eval;
    ch->end_of_epoch = m->end_of_epoch;
    ch->steps_per_epoch = m->steps_per_epoch;
    ch->dtype = m->dtype;
    memcpy(ch->labels, m->labels, m->n_labels * sizeof *ch->labels);
    *slot = ch;
    rx->st.queued++;
    if (m->seq + 1 > s->max_seen) {
        s->max_seen = m->seq + 1;
    }
    if (m->seq == s->consumed && rx->cbs.ready) {
        rx->cbs.ready(rx->cbs.arg);
    }
}

/* A request's payload has arrived: hand it to the owner. Returns false if
 * 'c' was closed. */
static bool
conn_request_done(struct et_stream_conn *c)
{
    struct et_stream_rx *rx = c->rx;
    int rc = rx->cbs.request(rx->cbs.arg, c, &c->frame, c->scratch);
    et_frame_clear(&c->frame);
    if (rc) {
        conn_close(c);
        return false;
    }
    return true;
}

/* Handles the frame whose meta is in c->frame. Returns false if 'c' was
 * closed. */
static bool
conn_frame(struct et_stream_conn *c)
{
    struct et_stream_rx *rx = c->rx;
    int type = c->frame.hdr.type;
    if (c->kind == CONN_NEW) {
        if (type == ET_MSG_STREAM_HELLO) {
            bool ok = conn_hello(c, (Edgetrain__StreamHello *) c->frame.msg);
            if (ok) {
                et_frame_clear(&c->frame);
            }
            return ok;
        }
        if (!rx->cbs.request) {
            conn_reject(c, ET_WIRE_BAD_TYPE, "first frame is %s, not "
                        "stream-hello", et_msg_type_name(type));
            return false;
        }
        c->kind = CONN_REQUEST;
    }
    if (c->kind == CONN_STREAM) {
        if (type == ET_MSG_CHUNK) {
            return conn_chunk_meta(c);
        }
        if (type == ET_MSG_HEARTBEAT) {
            et_frame_clear(&c->frame);
            return true;
        }
        conn_reject(c, ET_WIRE_BAD_TYPE, "unexpected %s frame on a stream",
                    et_msg_type_name(type));
        return false;
    }
    /* CONN_REQUEST: read the payload (if any) into scratch, then serve. */
    size_t len = c->frame.hdr.payload_len;
    if (c->scratch_cap < len) {
        free(c->scratch);
        c->scratch = malloc(len);
        c->scratch_cap = c->scratch ? len : 0;
        if (!c->scratch) {
            conn_reject(c, ENOMEM, "no memory for a %zu-byte request", len);
            return false;
        }
    }
    c->in_payload = true;
    c->dst = c->scratch;
    c->got = 0;
    c->want = len;
    return true;
}

/* Ends the payload in progress. Returns false if 'c' was closed. */
static bool
conn_payload_done(struct et_stream_conn *c)
{
    c->in_payload = false;
    if (c->kind == CONN_REQUEST) {
        return conn_request_done(c);
    }
    conn_chunk_done(c);
    et_frame_clear(&c->frame);
    return true;
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct et_stream_conn *c = arg;
    struct et_stream_rx *rx = c->rx;
    size_t budget = RX_BUDGET;
    while (budget) {
        if (c->in_payload) {
            ssize_t n;
            size_t buffered = evbuffer_get_length(c->in);
            uint8_t *to = c->dst ? c->dst + c->got : rx->discard;
            size_t room = c->dst ? c->want
                          : (c->want < sizeof rx->discard ? c->want
                             : sizeof rx->discard);
            if (buffered) {
                n = evbuffer_remove(c->in, to,
                                    buffered < room ? buffered : room);
            } else if (room) {
                n = read(fd, to, room);
                if (n == 0) {
                    ET_INFO("data connection from %s closed inside a frame",
                            c->peer);
                    conn_close(c);
                    return;
                }
                if (n < 0) {
                    if (errno == EAGAIN || errno == EINTR) {
                        return;
                    }
                    ET_INFO("data connection from %s: %s", c->peer,
                            strerror(errno));
                    conn_close(c);
                    return;
                }
                c->bytes += n;
                rx->st.bytes += n;
            } else {
                n = 0;
            }
            c->got += n;
            c->want -= n;
            budget -= (size_t) n < budget ? (size_t) n : budget;
            if (!c->want && !conn_payload_done(c)) {
                return;
            }
            continue;
        }
        struct et_frame f;
        int err = et_frame_decode_evbuffer(c->in, &f);
        if (!err) {
            c->frame = f;
            if (!conn_frame(c)) {
                return;
            }
            continue;
        }
        if (err != ET_WIRE_AGAIN) {
            conn_reject(c, err, "malformed frame: %s", et_wire_strerror(err));
            return;
        }
        int n = evbuffer_read(c->in, fd, RX_READ_CHUNK);
        if (n == 0) {
            if (evbuffer_get_length(c->in)) {
                ET_INFO("data connection from %s closed inside a frame",
                        c->peer);
            } else {
                ET_DEBUG("data connection from %s closed", c->peer);
            }
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            ET_INFO("data connection from %s: %s", c->peer, strerror(errno));
            conn_close(c);
            return;
        }
        c->bytes += n;
        rx->st.bytes += n;
        budget -= (size_t) n < budget ? (size_t) n : budget;
    }
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    struct et_stream_rx *rx = arg;
    if (rx->st.connections >= RX_MAX_CONNS) {
        /* Bounds what a peer flooding the data port can hold open. */
        ET_WARN("data connection refused: %u connections open (limit %d)",
                rx->st.connections, RX_MAX_CONNS);
        rx->st.rejected++;
        close(fd);
        return;
    }
    struct et_stream_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->rx = rx;
    c->fd = fd;
    c->id = ++rx->next_conn_id;
    char host[48] = "?";
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *) sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *) sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%u", host, port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(rx->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
    c->wev = event_new(rx->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
    event_add(c->rev, NULL);
    c->next = rx->conns;
    rx->conns = c;
    rx->st.connections++;
}

/* Watches holes at a stream's head: after nack_ms (and again every
 * nack_ms while it lasts) the sender is asked for the chunk again, since it
 * is probably stuck in a stalled sub-stream (TCP's retransmission timer
 * backs off to seconds) while the others deliver; after gap_timeout_ms the
 * hole is reported. It is never skipped. */
static void
gap_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct et_stream_rx *rx = arg;
    double now = now_s();
    for (struct rx_stream *s = rx->streams; s; s = s->next) {
        if (s->consumed != s->credited) {
            stream_credit(rx, s);       /* the tail of a burst */
        }
        bool hole = !s->ring[s->consumed % rx->cfg.window]
                    && s->max_seen > s->consumed;
        if (!hole) {
            s->hole_since = 0;
            continue;
        }
        if (!s->hole_since || s->hole_seq != s->consumed) {
            /* A new hole: the timer looks every 100 ms, and brief holes
             * of different chunks must not add up to one long one. */
            s->hole_since = now;
            s->hole_seq = s->consumed;
            s->nacked_at = 0;
            s->gap_reported = false;
            continue;
        }
        if (now - (s->nacked_at ? s->nacked_at : s->hole_since)
            >= rx->cfg.nack_ms / 1e3) {
            ET_DEBUG("stream from %s: chunk %llu missing for %.2f s; asking "
                     "for it again", s->from,
                     (unsigned long long) s->consumed, now - s->hole_since);
            stream_send_credit(rx, s, true);
            s->nacked_at = now;
            rx->st.nacks++;
        }
        if (!s->gap_reported
            && now - s->hole_since >= rx->cfg.gap_timeout_ms / 1e3) {
            char msg[200];
            snprintf(msg, sizeof msg, "stream from %s: chunk %llu missing "
                     "for %.1f s while later chunks up to %llu wait; not "
                     "skipping it", s->from,
                     (unsigned long long) s->consumed, now - s->hole_since,
                     (unsigned long long) s->max_seen - 1);
            ET_WARN("%s", msg);
            s->gap_reported = true;
            rx->st.gaps++;
            if (rx->cbs.error) {
                rx->cbs.error(rx->cbs.arg, ENODATA, msg);
            }
        }
    }
}

struct et_stream_rx *
et_stream_rx_create(struct event_base *base,
                    const struct et_stream_rx_config *cfg,
                    const struct et_stream_rx_cbs *cbs)
{
    struct et_stream_rx *rx = calloc(1, sizeof *rx);
    if (!rx) {
        return NULL;
    }
    rx->base = base;
    rx_cfg_copy(rx, cfg);
    if (cbs) {
        rx->cbs = *cbs;
    }
    rx->timer = event_new(base, -1, EV_PERSIST, gap_timer_cb, rx);
    struct timeval tv = {0, 100 * 1000};
    event_add(rx->timer, &tv);
    return rx;
}

int
et_stream_rx_listen(struct et_stream_rx *rx, const char *addr_port,
                    uint16_t *bound)
{
    struct sockaddr_storage ss;
    int len;
    if (et_parse_addr(addr_port, &ss, &len)) {
        return EINVAL;
    }
    rx->listener = evconnlistener_new_bind(
        rx->base, accept_cb, rx, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
        64, (struct sockaddr *) &ss, len);
    if (!rx->listener) {
        return errno ? errno : EADDRINUSE;
    }
    if (bound) {
        struct sockaddr_storage b;
        socklen_t bl = sizeof b;
        getsockname(evconnlistener_get_fd(rx->listener),
                    (struct sockaddr *) &b, &bl);
        *bound = b.ss_family == AF_INET6
                 ? ntohs(((struct sockaddr_in6 *) &b)->sin6_port)
                 : ntohs(((struct sockaddr_in *) &b)->sin_port);
    }
    return 0;
}

int
et_stream_rx_reconfigure(struct et_stream_rx *rx,
                         const struct et_stream_rx_config *cfg)
{
    uint32_t old_window = rx->cfg.window;
    rx_cfg_copy(rx, cfg);
    if (rx->cfg.window != old_window) {
        /* The ring size is part of each stream; keep the old one. */
        rx->cfg.window = old_window;
    }
    /* Streams of another run, or from a peer no longer upstream, end. */
    for (struct rx_stream **p = &rx->streams; *p;) {
        struct rx_stream *s = *p;
        if (s->run_id == rx->cfg.run_id && upstream_ok(rx, s->from)) {
            p = &s->next;
            continue;
        }
        for (struct et_stream_conn *c = rx->conns, *next; c; c = next) {
            next = c->next;
            if (c->stream == s) {
                conn_close(c);
            }
        }
        *p = s->next;
        ET_INFO("stream from %s (run %llu) ended by a new assignment",
                s->from, (unsigned long long) s->run_id);
        stream_free(rx, s);
    }
    return 0;
}

void
et_stream_rx_get_stats(const struct et_stream_rx *rx,
                       struct et_stream_rx_stats *st)
{
    *st = rx->st;
}

uint64_t
et_stream_conn_id(const struct et_stream_conn *c)
{
    return c->id;
}

struct et_stream_conn *
et_stream_rx_conn(struct et_stream_rx *rx, uint64_t id)
{
    for (struct et_stream_conn *c = rx->conns; c; c = c->next) {
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}

void
et_stream_rx_destroy(struct et_stream_rx *rx)
{
    if (!rx) {
        return;
    }
    while (rx->conns) {
        conn_close(rx->conns);
    }
    while (rx->streams) {
        struct rx_stream *s = rx->streams;
        rx->streams = s->next;
        stream_free(rx, s);
    }
    if (rx->listener) {
        evconnlistener_free(rx->listener);
    }
    event_free(rx->timer);
    rx_cfg_free(rx);
    free(rx);
}
