/* Activation stream sender: see stream.h.
 *
 * Ownership: every accepted chunk sits in tx->held (ordered by seq) until
 * the receiver's acked_seq passes it. A socket buffer that still points at
 * its payload holds a reference (chunk->refs); the chunk is freed when it
 * is both acked (released) and unreferenced. */
#include "stream.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <linux/tcp.h>           /* struct tcp_info with notsent_bytes */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "wire.h"

#define TX_MAX_SUBS 16
#define TX_STALL_SAMPLE_US 100000   /* how often TCP progress is looked at */

enum substream_state {
    SUB_DOWN,           /* waiting for the retry timer */
    SUB_CONNECTING,
    SUB_UP,             /* connected, StreamHello sent */
};

struct et_substream {
    struct et_stream_tx *tx;
    struct et_substream_spec spec;
    enum substream_state state;
    struct bufferevent *bev;
    struct event *retry;
    int backoff_ms;
    double cur;                 /* smooth weighted round-robin state */
    uint64_t tcp_acked;         /* tcp_info bytes_acked at the last look */
    double progress_at;         /* when it last grew, or nothing was due */
    uint64_t bytes, chunks, reconnects;
    bool credited;              /* the receiver answered this connection's
                                 * StreamHello with a Credit: nothing is
                                 * written before (see tx_credit) */
};

struct et_stream_tx {
    struct event_base *base;
    char *from, *peer, *peer_addr;
    struct sockaddr_storage addr;
    int addr_len;
    struct sockaddr_storage local;  /* source address (port 0) */
    bool have_local;
    uint64_t run_id;
    uint8_t *token;
    size_t token_len;
    uint32_t generation;
    int dtype;
    uint32_t max_pending;
    size_t sub_buffer;

    struct et_substream *subs[TX_MAX_SUBS];
    size_t n_subs;

    struct et_chunk *held, *held_tail;  /* unacked chunks by seq */
    uint32_t n_held, n_unsent;
    uint64_t next_seq;
    uint64_t acked;             /* every seq below is consumed */
    uint32_t window;            /* seqs below acked + window may be out */
    uint64_t resent, payload_acked;
    uint64_t nack_resent;
    uint64_t nack_seq;          /* seq + 1 of the last head_missing resend */
    double nack_at;             /* when it was sent */
    struct event *stall_timer;  /* samples the sub-streams' TCP progress */

    void (*room_cb)(void *);
    void *room_arg;
    bool pumping;
    bool in_room_cb;
    bool synced;                /* a Credit has been received */
    uint32_t incarnation;       /* the receiver stream's, from Credits */
    bool closing;
};

static void tx_pump(struct et_stream_tx *, bool notify);
static int tx_write_chunk(struct et_stream_tx *, struct et_substream *,
                          struct et_chunk *);
static void tx_stall_timer_cb(evutil_socket_t, short, void *);
static double now_s(void);
static void sub_connect(struct et_substream *);

static void
chunk_unref(const void *data, size_t len, void *arg)
{
    struct et_chunk *c = arg;
    if (--c->refs == 0 && c->released) {
        et_chunk_free(c);
    }
}

static void
chunk_release(struct et_chunk *c)
{
    c->released = true;
    if (c->refs == 0) {
        et_chunk_free(c);
    }
}

static uint16_t
addr_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6
           ? ntohs(((const struct sockaddr_in6 *) ss)->sin6_port)
           : ntohs(((const struct sockaddr_in *) ss)->sin_port);
}

struct et_stream_tx *
et_stream_tx_create(struct event_base *base,
                    const struct et_stream_tx_config *cfg)
{
    struct et_stream_tx *tx = calloc(1, sizeof *tx);
    if (!tx) {
        return NULL;
    }
    if (et_parse_addr(cfg->peer_addr, &tx->addr, &tx->addr_len)
        || !et_dtype_size(cfg->dtype)) {
        ET_ERROR("stream to %s: bad peer address '%s' or encoding %d",
                 cfg->peer ? cfg->peer : "?", cfg->peer_addr ? cfg->peer_addr
                 : "(none)", cfg->dtype);
        free(tx);
        return NULL;
    }
    int llen;
    tx->have_local = cfg->local_addr
                     && !et_parse_addr(cfg->local_addr, &tx->local, &llen)
                     && tx->local.ss_family == tx->addr.ss_family;
    tx->base = base;
    tx->from = strdup(cfg->from ? cfg->from : "");
    tx->peer = strdup(cfg->peer ? cfg->peer : cfg->peer_addr);
    tx->peer_addr = strdup(cfg->peer_addr);
    tx->run_id = cfg->run_id;
    tx->token_len = cfg->token_len;
    tx->token = malloc(cfg->token_len + 1);
    if (cfg->token_len) {
        memcpy(tx->token, cfg->token, cfg->token_len);
    }
    tx->generation = cfg->generation;
    tx->dtype = cfg->dtype;
    tx->max_pending = cfg->max_pending ? cfg->max_pending : 8;
    tx->sub_buffer = cfg->substream_buffer ? cfg->substream_buffer
                     : (size_t) 8 << 20;
    tx->stall_timer = event_new(base, -1, EV_PERSIST, tx_stall_timer_cb, tx);
    struct timeval tv = {0, TX_STALL_SAMPLE_US};
    event_add(tx->stall_timer, &tv);
    return tx;
}

/* Puts every unacked chunk last sent on 's' back in line for another
 * sub-stream. */
static void
sub_requeue(struct et_substream *s)
{
    struct et_stream_tx *tx = s->tx;
    uint32_t n = 0;
    for (struct et_chunk *c = tx->held; c; c = c->next) {
        if (c->sub == s) {
            c->sub = NULL;
            tx->n_unsent++;
            n++;
        }
    }
    if (n && !tx->closing) {
        tx->resent += n;
        ET_INFO("stream to %s: %u unacked chunks of sub-stream %u will be "
                "sent again", tx->peer, n, s->spec.id);
    }
}

/* Drops the connection of 's' (its chunks go back in line). */
static void
sub_close(struct et_substream *s)
{
    sub_requeue(s);
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    s->state = SUB_DOWN;
}

/* 's' keeps its connection but the controller moved it to another path,
 * typically because a link of the old one failed: what was in flight there
 * may be lost, or stuck until TCP's retransmission timer fires (backed off
 * during the outage). Its unacked chunks go back in line at once, for
 * whichever sub-stream has room; the receiver drops the copy that comes
 * second by sequence number. */
static void
sub_moved(struct et_substream *s)
{
    ET_INFO("stream to %s: sub-stream %u moved to another path", s->tx->peer,
            s->spec.id);
    sub_requeue(s);
}

static void
sub_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    sub_connect(arg);
}

/* Closes 's' after an error and schedules a reconnect with back-off. */
static void
sub_fail(struct et_substream *s, const char *why)
{
    ET_WARN("stream to %s: sub-stream %u (port %u): %s; retrying in %d ms",
            s->tx->peer, s->spec.id, s->spec.local_port, why, s->backoff_ms);
    sub_close(s);
    struct timeval tv = {s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000};
    evtimer_add(s->retry, &tv);
    s->backoff_ms = s->backoff_ms * 2 > 2000 ? 2000 : s->backoff_ms * 2;
    s->reconnects++;
    tx_pump(s->tx, true);
}

static void
sub_free(struct et_substream *s)
{
    if (s) {
        sub_close(s);
        event_free(s->retry);
        free(s);
    }
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The receiver asks again at most every few hundred ms (and on every
 * connection of the stream at once): one resend per such round. */
#define TX_NACK_HOLDOFF_S 0.1

/* A sub-stream whose TCP has had bytes due but none acknowledged for this
 * long is stalled: a lost segment waiting out the retransmission timer
 * (200 ms at first, doubling), or a path that is down. A slow path still
 * gets acknowledgements every round trip. */
#define TX_STALL_S 0.3

/* Looks at the TCP progress of 's': progress_at moves on while its bytes
 * are being acknowledged or none are due. */
static void
sub_sample_progress(struct et_substream *s, double now)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (s->state != SUB_UP || !s->bev
        || getsockopt(bufferevent_getfd(s->bev), IPPROTO_TCP, TCP_INFO, &ti,
                      &len)
        || len < offsetof(struct tcp_info, tcpi_notsent_bytes)
                 + sizeof ti.tcpi_notsent_bytes) {
        s->progress_at = now;           /* cannot tell: never "stalled" */
        return;
    }
    bool due = ti.tcpi_unacked || ti.tcpi_notsent_bytes
               || evbuffer_get_length(bufferevent_get_output(s->bev));
    if (!due || ti.tcpi_bytes_acked != s->tcp_acked) {
        s->progress_at = now;
    }
    s->tcp_acked = ti.tcpi_bytes_acked;
}

static void
tx_stall_timer_cb(evutil_socket_t fd, short what, void *tx_)
{
    struct et_stream_tx *tx = tx_;
    double now = now_s();
    for (size_t i = 0; i < tx->n_subs; i++) {
        sub_sample_progress(tx->subs[i], now);
    }
}

/* The receiver has missed the chunk at 'acked' for a while although later
 * ones arrived (Credit.head_missing). If the sub-stream it went on is
 * stalled, the chunk is stuck there: it is sent again on the connected,
 * weighted sub-stream with the least queued; the receiver drops whichever
 * copy comes second. On a sub-stream that is slow but moving it is only
 * late, and a copy would just cost bandwidth. */
static void
tx_resend_head(struct et_stream_tx *tx)
{
    struct et_chunk *c = tx->held;
    if (!c || c->seq != tx->acked || !c->sub) {
        return;                 /* acked meanwhile, or not sent at all yet */
    }
    double now = now_s();
    if (tx->nack_seq == c->seq + 1 && now - tx->nack_at < TX_NACK_HOLDOFF_S) {
        return;
    }
    sub_sample_progress(c->sub, now);
    if (now - c->sub->progress_at < TX_STALL_S) {
        ET_DEBUG("stream to %s: chunk %llu reported missing; its sub-stream "
                 "%u is moving, not resent", tx->peer,
                 (unsigned long long) c->seq, c->sub->spec.id);
        return;
    }
    struct et_substream *best = NULL;
    size_t best_queued = 0;
    for (size_t i = 0; i < tx->n_subs; i++) {
        struct et_substream *s = tx->subs[i];
        if (s == c->sub || s->state != SUB_UP || !s->credited
            || !(s->spec.weight > 0)) {
            continue;
        }
        size_t q = evbuffer_get_length(bufferevent_get_output(s->bev));
        if (q < tx->sub_buffer && (!best || q < best_queued)) {
            best = s;
            best_queued = q;
        }
    }
    if (!best || tx_write_chunk(tx, best, c)) {
        return;
    }
    ET_INFO("stream to %s: chunk %llu reported missing, sub-stream %u "
            "stalled for %.1f s; sent again on sub-stream %u", tx->peer,
            (unsigned long long) c->seq, c->sub->spec.id,
            now - c->sub->progress_at, best->spec.id);
    c->sub = best;
    tx->nack_seq = c->seq + 1;
    tx->nack_at = now;
    tx->nack_resent++;
}

/* The receiver's stream state is new (its agent restarted, or it ended
 * the stream for a resume) and expects seq 'acked' next. What it had
 * acked is gone with the old state; the chunks held here continue its
 * stream from there, every one sent again. */
static void
tx_receiver_restarted(struct et_stream_tx *tx, uint64_t acked)
{
    uint64_t held0 = tx->held ? tx->held->seq : tx->next_seq;
    for (struct et_chunk *c = tx->held; c; c = c->next) {
        c->seq = c->seq - held0 + acked;
        if (c->sub) {
            c->sub = NULL;
            tx->n_unsent++;
        }
    }
    tx->next_seq = tx->next_seq - held0 + acked;
    tx->acked = acked;
    ET_WARN("stream to %s: the receiver's stream restarted at seq %llu: "
            "%u held chunks renumbered and sent again", tx->peer,
            (unsigned long long) acked, tx->n_held);
}

/* Applies a Credit that came on 's': releases acked chunks, widens the
 * window, and resends the head chunk if the receiver reports it missing. */
static void
tx_credit(struct et_stream_tx *tx, struct et_substream *s,
          const Edgetrain__Credit *cr)
{
    bool first = !s->credited;
    s->credited = true;
    if (cr->stream_incarnation && cr->stream_incarnation != tx->incarnation) {
        if (!first) {
            return;     /* a late Credit of a connection to an old state */
        }
        /* Only a connection's first Credit, the answer to its StreamHello,
         * speaks for the receiver's current stream state. */
        if (tx->synced && tx->incarnation) {
            tx_receiver_restarted(tx, cr->acked_seq);
        }
        tx->incarnation = cr->stream_incarnation;
    }
    if (!tx->synced) {
        /* A new sender (restarted agent, new tx for the same peer and run)
         * continues where the receiver's stream stands. Nothing has been
         * written yet (the window was 0), so renumbering is safe. */
        tx->synced = true;
        if (cr->acked_seq) {
            for (struct et_chunk *c = tx->held; c; c = c->next) {
                c->seq += cr->acked_seq;
            }
            tx->next_seq += cr->acked_seq;
            tx->acked = cr->acked_seq;
            ET_INFO("stream to %s: continuing the receiver's stream at seq "
                    "%llu", tx->peer, (unsigned long long) cr->acked_seq);
        }
    }
    if (cr->acked_seq > tx->next_seq) {
        ET_WARN("stream to %s: credit acks seq %llu beyond the %llu sent; "
                "ignored", tx->peer, (unsigned long long) cr->acked_seq,
                (unsigned long long) tx->next_seq);
        return;
    }
    tx->window = cr->chunks;
    while (tx->held && tx->held->seq < cr->acked_seq) {
        struct et_chunk *c = tx->held;
        tx->held = c->next;
        if (!tx->held) {
            tx->held_tail = NULL;
        }
        tx->n_held--;
        if (!c->sub) {
            tx->n_unsent--;
        }
        tx->payload_acked += c->wire_len;
        chunk_release(c);
    }
    if (cr->acked_seq > tx->acked) {
        tx->acked = cr->acked_seq;
    }
    if (cr->head_missing) {
        tx_resend_head(tx);
    }
}

static void
sub_read_cb(struct bufferevent *bev, void *arg)
{
    struct et_substream *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct et_frame f;
        int err = et_frame_decode_evbuffer(in, &f);
        if (err == ET_WIRE_AGAIN) {
            break;
        }
        if (err) {
            char why[128];
            snprintf(why, sizeof why, "bad frame from receiver: %s",
                     et_wire_strerror(err));
            sub_fail(s, why);
            return;
        }
        if (f.hdr.type == ET_MSG_CREDIT) {
            tx_credit(s->tx, s, (Edgetrain__Credit *) f.msg);
        } else if (f.hdr.type == ET_MSG_ERROR) {
            Edgetrain__Error *e = (Edgetrain__Error *) f.msg;
            ET_WARN("stream to %s: receiver error %u: %s", s->tx->peer,
                    e->code, e->message);
        } else {
            ET_WARN("stream to %s: unexpected %s frame from receiver",
                    s->tx->peer, et_msg_type_name(f.hdr.type));
        }
        et_frame_clear(&f);
    }
    tx_pump(s->tx, true);
}

static void
sub_write_cb(struct bufferevent *bev, void *arg)
{
    struct et_substream *s = arg;
    tx_pump(s->tx, true);
}

static void
sub_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct et_substream *s = arg;
    struct et_stream_tx *tx = s->tx;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof one);
        Edgetrain__StreamHello h = EDGETRAIN__STREAM_HELLO__INIT;
        h.from = tx->from;
        h.run_id = tx->run_id;
        h.token.data = tx->token;
        h.token.len = tx->token_len;
        h.substream_id = s->spec.id;
        h.generation = tx->generation;
        s->credited = false;
        et_frame_encode_evbuffer(bufferevent_get_output(bev),
                                 ET_MSG_STREAM_HELLO, &h.base, NULL, 0,
                                 NULL, NULL);
        s->state = SUB_UP;
        s->tcp_acked = 0;
        s->progress_at = now_s();
        s->backoff_ms = 100;
        ET_INFO("stream to %s: sub-stream %u up (local port %u -> %u)",
                tx->peer, s->spec.id, s->spec.local_port,
                s->spec.remote_port ? s->spec.remote_port
                : addr_port(&tx->addr));
        tx_pump(tx, true);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        char why[160];
        int err = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "%s",
                 what & BEV_EVENT_EOF ? "closed by receiver"
                 : evutil_socket_error_to_string(err));
        sub_fail(s, why);
    }
}

/* Opens the connection of 's': bind the controller's source port, then
 * connect. */
static void
sub_connect(struct et_substream *s)
{
    struct et_stream_tx *tx = s->tx;
    struct sockaddr_storage dst = tx->addr;
    if (s->spec.remote_port) {
        if (dst.ss_family == AF_INET6) {
            ((struct sockaddr_in6 *) &dst)->sin6_port
                = htons(s->spec.remote_port);
        } else {
            ((struct sockaddr_in *) &dst)->sin_port
                = htons(s->spec.remote_port);
        }
    }
    int fd = socket(dst.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        sub_fail(s, "socket() failed");
        return;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->spec.local_port) {
        struct sockaddr_storage src;
        memset(&src, 0, sizeof src);
        if (tx->have_local) {
            src = tx->local;        /* a wildcard host stays a wildcard */
        }
        socklen_t slen;
        if (dst.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *) &src;
            a->sin6_family = AF_INET6;
            a->sin6_port = htons(s->spec.local_port);
            slen = sizeof *a;
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *) &src;
            a->sin_family = AF_INET;
            a->sin_port = htons(s->spec.local_port);
            slen = sizeof *a;
        }
        if (bind(fd, (struct sockaddr *) &src, slen)) {
            char why[128];
            snprintf(why, sizeof why, "bind to source port %u: %s",
                     s->spec.local_port, strerror(errno));
            close(fd);
            sub_fail(s, why);
            return;
        }
    }
    evutil_make_socket_nonblocking(fd);
    s->bev = bufferevent_socket_new(tx->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) {
        close(fd);
        sub_fail(s, "out of memory");
        return;
    }
    /* Large single writes: one writev per wake-up moves megabytes, as a
     * bulk sender like iperf3 does. Refill at half the buffer. */
    bufferevent_set_max_single_write(s->bev, tx->sub_buffer);
    bufferevent_setwatermark(s->bev, EV_WRITE, tx->sub_buffer / 2, 0);
    bufferevent_setcb(s->bev, sub_read_cb, sub_write_cb, sub_event_cb, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    s->state = SUB_CONNECTING;
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *) &dst,
                                   tx->addr_len) < 0) {
        sub_fail(s, "connect failed");
    }
}

static struct et_substream *
sub_new(struct et_stream_tx *tx, const struct et_substream_spec *spec)
{
    struct et_substream *s = calloc(1, sizeof *s);
    s->tx = tx;
    s->spec = *spec;
    s->backoff_ms = 100;
    s->retry = evtimer_new(tx->base, sub_retry_cb, s);
    return s;
}

int
et_stream_tx_set_substreams(struct et_stream_tx *tx,
                            const struct et_substream_spec *specs, size_t n,
                            uint32_t generation)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += specs[i].weight > 0 ? specs[i].weight : 0;
    }
    if (n > TX_MAX_SUBS || (n && !(sum > 0))) {
        return EINVAL;
    }
    tx->generation = generation;

    struct et_substream *next[TX_MAX_SUBS] = {NULL};
    bool kept[TX_MAX_SUBS] = {false};
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < tx->n_subs; j++) {
            struct et_substream *o = tx->subs[j];
            if (!kept[j] && o->spec.id == specs[i].id
                && o->spec.local_port == specs[i].local_port
                && o->spec.remote_port == specs[i].remote_port) {
                next[i] = o;
                kept[j] = true;
                o->spec.weight = specs[i].weight;
                if (o->spec.path && specs[i].path
                    && o->spec.path != specs[i].path) {
                    if (specs[i].old_path_up) {
                        /* Moved for load: TCP carries what is in flight
                         * over the new path; a copy would be wasted. */
                        ET_INFO("stream to %s: sub-stream %u moved off a "
                                "path that is still up", tx->peer,
                                specs[i].id);
                    } else {
                        sub_moved(o);
                    }
                }
                o->spec.path = specs[i].path;
                break;
            }
        }
    }
    /* Close removed sub-streams first: their chunks go back in line. */
    for (size_t j = 0; j < tx->n_subs; j++) {
        if (!kept[j]) {
            ET_INFO("stream to %s: sub-stream %u removed", tx->peer,
                    tx->subs[j]->spec.id);
            sub_free(tx->subs[j]);
        }
    }
    size_t old_n = tx->n_subs;
    tx->n_subs = n;
    for (size_t i = 0; i < n; i++) {
        tx->subs[i] = next[i];
        tx->subs[i] = next[i] ? next[i] : sub_new(tx, &specs[i]);
        tx->subs[i]->cur = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!next[i]) {
            sub_connect(tx->subs[i]);
        }
    }
    ET_INFO("stream to %s: %zu sub-streams (was %zu), generation %u",
            tx->peer, n, old_n, generation);
    tx_pump(tx, true);
    return 0;
}

void
et_stream_tx_set_dtype(struct et_stream_tx *tx, int dtype)
{
    if (et_dtype_size(dtype)) {
        tx->dtype = dtype;
    }
}

bool
et_stream_tx_can_send(const struct et_stream_tx *tx)
{
    return tx->n_unsent < tx->max_pending;
}

uint32_t
et_stream_tx_held(const struct et_stream_tx *tx)
{
    return tx->n_held;
}

void
et_stream_tx_set_room_cb(struct et_stream_tx *tx, void (*cb)(void *),
                         void *arg)
{
    tx->room_cb = cb;
    tx->room_arg = arg;
}

int
et_stream_tx_send(struct et_stream_tx *tx, struct et_chunk *c)
{
    if (!et_stream_tx_can_send(tx)) {
        return EAGAIN;
    }
    size_t n = et_chunk_elems(c);
    size_t wire_len = n * et_dtype_size(tx->dtype);
    if (!n || wire_len > ET_WIRE_MAX_PAYLOAD || !c->data || !c->labels
        || !c->micro_count || c->micro >= c->micro_count) {
        return EINVAL;
    }
    c->dtype = tx->dtype;
    if (c->dtype == EDGETRAIN__DTYPE__DTYPE_F32) {
        c->wire = c->data;
        c->scale = 0;
    } else {
        c->wire = malloc(wire_len);
        if (!c->wire) {
            return ENOMEM;
        }
        et_codec_encode(c->dtype, c->data, n, c->wire, &c->scale);
        /* The f32 tensor is not needed any more: hand its memory back. */
        if (!c->borrowed) {
            free(c->data);
        }
        c->data = NULL;
    }
    c->wire_len = wire_len;
    c->run_id = tx->run_id;
    c->seq = tx->next_seq++;
    c->sub = NULL;
    c->refs = 0;
    c->released = false;
    c->next = NULL;
    if (tx->held_tail) {
        tx->held_tail->next = c;
    } else {
        tx->held = c;
    }
    tx->held_tail = c;
    tx->n_held++;
    tx->n_unsent++;
    tx_pump(tx, false);
    return 0;
}

/* Picks the sub-stream for the next chunk by smooth weighted round-robin
 * over the connected sub-streams, or NULL if it must wait (their write
 * callbacks pump again).
 *
 * When the sub-stream whose turn it is has a full buffer, the next one in
 * line with room may go first, but only while the waiting one is owed less
 * than TX_SLACK rounds: short stalls of one path do not idle the others,
 * yet over any stretch the split stays within TX_SLACK chunks per
 * sub-stream of the weights (a persistently slower path throttles the
 * stream to its weighted share: re-weighting is the controller's call). */
#define TX_SLACK 2.0

static struct et_substream *
tx_pick(struct et_stream_tx *tx)
{
    struct et_substream *best = NULL, *open = NULL;
    double total = 0, best_v = 0, open_v = 0;
    for (size_t i = 0; i < tx->n_subs; i++) {
        struct et_substream *s = tx->subs[i];
        if (s->state != SUB_UP || !s->credited || !(s->spec.weight > 0)) {
            continue;
        }
        total += s->spec.weight;
        double v = s->cur + s->spec.weight;
        if (!best || v > best_v) {
            best = s;
            best_v = v;
        }
        if (evbuffer_get_length(bufferevent_get_output(s->bev))
            < tx->sub_buffer && (!open || v > open_v)) {
            open = s;
            open_v = v;
        }
    }
    if (!open) {
        return NULL;
    }
    if (open != best && best->cur + best->spec.weight >= TX_SLACK * total) {
        return NULL;            /* the full one is owed too much: wait */
    }
    for (size_t i = 0; i < tx->n_subs; i++) {
        struct et_substream *s = tx->subs[i];
        if (s->state == SUB_UP && s->credited && s->spec.weight > 0) {
            s->cur += s->spec.weight;
        }
    }
    open->cur -= total;
    return open;
}

/* Writes a chunk frame on 's', payload by reference. */
static int
tx_write_chunk(struct et_stream_tx *tx, struct et_substream *s,
               struct et_chunk *c)
{
    Edgetrain__Chunk m = EDGETRAIN__CHUNK__INIT;
    m.run_id = c->run_id;
    m.epoch = c->epoch;
    m.step = c->step;
    m.seq = c->seq;
    m.micro = c->micro;
    m.micro_count = c->micro_count;
    m.n_shape = 4;
    m.shape = c->shape;
    m.dtype = c->dtype;
    m.scale = c->scale;
    m.n_labels = c->shape[0];
    m.labels = c->labels;
    m.eval = c->eval;
    m.end_of_epoch = c->end_of_epoch;
    m.steps_per_epoch = c->steps_per_epoch;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    size_t before = evbuffer_get_length(out);
    c->refs++;
    int err = et_frame_encode_evbuffer(out, ET_MSG_CHUNK, &m.base, c->wire,
                                       c->wire_len, chunk_unref, c);
    if (err) {
        c->refs--;
        return err;
    }
    s->bytes += evbuffer_get_length(out) - before;
    s->chunks++;
    return 0;
}

/* Sends unsent chunks, in seq order, while credit and buffer room last. */
static void
tx_pump(struct et_stream_tx *tx, bool notify)
{
    if (tx->pumping) {
        return;
    }
    tx->pumping = true;
    struct et_chunk *c = tx->held;
    while (tx->n_unsent) {
        while (c && c->sub) {
            c = c->next;
        }
        if (!c || c->seq >= tx->acked + tx->window) {
            break;
        }
        struct et_substream *s = tx_pick(tx);
        if (!s) {
            break;
        }
        if (tx_write_chunk(tx, s, c)) {
            ET_ERROR("stream to %s: cannot queue chunk %llu", tx->peer,
                     (unsigned long long) c->seq);
            break;
        }
        c->sub = s;
        tx->n_unsent--;
    }
    tx->pumping = false;
    /* Tell the producer there is room, unless it is the one calling (a
     * send) or is already being told (it sends from inside the callback). */
    if (notify && !tx->in_room_cb && tx->room_cb
        && et_stream_tx_can_send(tx)) {
        tx->in_room_cb = true;
        tx->room_cb(tx->room_arg);
        tx->in_room_cb = false;
    }
}

void
et_stream_tx_get_stats(const struct et_stream_tx *tx,
                       struct et_stream_tx_stats *st)
{
    memset(st, 0, sizeof *st);
    st->next_seq = tx->next_seq;
    st->acked = tx->acked;
    st->window = tx->window;
    st->held = tx->n_held;
    st->unsent = tx->n_unsent;
    st->resent = tx->resent;
    st->nack_resent = tx->nack_resent;
    st->payload_bytes_acked = tx->payload_acked;
    st->n_substreams = tx->n_subs;
    for (size_t i = 0; i < tx->n_subs; i++) {
        const struct et_substream *s = tx->subs[i];
        st->subs[i].id = s->spec.id;
        st->subs[i].up = s->state == SUB_UP;
        st->subs[i].weight = s->spec.weight;
        st->subs[i].bytes = s->bytes;
        st->subs[i].chunks = s->chunks;
        st->subs[i].reconnects = s->reconnects;
    }
}

void
et_stream_tx_destroy(struct et_stream_tx *tx)
{
    if (!tx) {
        return;
    }
    tx->closing = true;
    event_free(tx->stall_timer);
    for (size_t i = 0; i < tx->n_subs; i++) {
        sub_free(tx->subs[i]);
    }
    for (struct et_chunk *c = tx->held, *next; c; c = next) {
        next = c->next;
        chunk_release(c);
    }
    free(tx->from);
    free(tx->peer);
    free(tx->peer_addr);
    free(tx->token);
    free(tx);
}
