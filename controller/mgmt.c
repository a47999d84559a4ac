/* mgmt: management channel server. See mgmt.h. */
#include "mgmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "topology.h"

#define NONCE_LEN 32
/* Connections that have not authenticated yet, at most. Each costs a
 * socket and a few hundred bytes and is dropped after the heartbeat
 * timeout anyway; the cap stops a stranger from holding every fd. */
#define MGMT_MAX_UNAUTH 64

enum conn_state {
    CONN_CHALLENGED,     /* Challenge sent, waiting for Hello */
    CONN_ACCEPTED,       /* Welcome sent */
};

struct mgmt_conn {
    struct mgmt *m;
    struct mgmt_conn *prev, *next;     /* m->conns list */
    struct bufferevent *bev;
    struct event *close_timer;         /* frees the conn when it fires */
    enum conn_state state;
    bool closing;
    char name[160];                    /* peer address, then agent name */
    uint8_t nonce[NONCE_LEN];
    double last_rx;                    /* monotonic s of the last frame */
    struct et_frame pending;           /* meta waiting for its payload */
    void *data;
};

struct mgmt {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *sweep;               /* heartbeat timeout checks */
    struct mgmt_config cfg;
    uint8_t *key;
    char *controller_id;
    struct mgmt_callbacks cb;
    void *aux;
    struct mgmt_conn *conns;
    uint16_t port;
    struct mgmt_stats stats;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
timeout_s(const struct mgmt *m)
{
    return m->cfg.heartbeat_ms * (double) m->cfg.timeout_periods / 1e3;
}

static void
conn_free(struct mgmt_conn *c)
{
    struct mgmt *m = c->m;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        m->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    et_frame_clear(&c->pending);
    bufferevent_free(c->bev);
    event_free(c->close_timer);
    free(c);
}

static void
close_timer_cb(evutil_socket_t fd, short what, void *c_)
{
    conn_free(c_);
}

int
mgmt_send(struct mgmt_conn *c, int type, const ProtobufCMessage *msg)
{
    return mgmt_send_payload(c, type, msg, NULL, 0);
}

int
mgmt_send_payload(struct mgmt_conn *c, int type, const ProtobufCMessage *msg,
                  const void *payload, size_t len)
{
    if (c->closing) {
        return EPIPE;
    }
    int e = et_frame_encode_evbuffer(bufferevent_get_output(c->bev), type, msg,
                                     payload, len, NULL, NULL);
    if (!e) {
        c->m->stats.frames_out++;
    }
    return e;
}

void
mgmt_close(struct mgmt_conn *c, uint32_t code, const char *reason)
{
    if (c->closing) {
        return;
    }
    if (code) {
        Edgetrain__Error err = EDGETRAIN__ERROR__INIT;
        err.code = code;
        err.message = (char *) reason;
        mgmt_send(c, ET_MSG_ERROR, &err.base);
    }
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    ET_INFO("mgmt: closing %s: %s", c->name, reason);
    if (c->state == CONN_ACCEPTED && c->m->cb.closed) {
        c->m->cb.closed(c->m->aux, c, reason);
    }
    /* Free once the output drained (write callback) or after 1 s. */
    struct timeval tv = {1, 0};
    if (!evbuffer_get_length(bufferevent_get_output(c->bev))) {
        tv.tv_sec = 0;
    }
    evtimer_add(c->close_timer, &tv);
}

static void
send_challenge(struct mgmt_conn *c)
{
    Edgetrain__Challenge ch = EDGETRAIN__CHALLENGE__INIT;
    if (RAND_bytes(c->nonce, NONCE_LEN) != 1) {
        for (size_t i = 0; i < NONCE_LEN; i++) {
            c->nonce[i] = (uint8_t) rand();
        }
    }
    ch.nonce.data = c->nonce;
    ch.nonce.len = NONCE_LEN;
    ch.protocol_version = MGMT_PROTOCOL_VERSION;
    mgmt_send(c, ET_MSG_CHALLENGE, &ch.base);
}

/* Checks Hello.auth against HMAC-SHA256(key, nonce). */
static bool
auth_ok(const struct mgmt *m, const struct mgmt_conn *c,
        const Edgetrain__Hello *h)
{
    if (!m->key) {
        return true;
    }
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), m->key, (int) m->cfg.key_len, c->nonce, NONCE_LEN,
              mac, &len)) {
        return false;
    }
    return h->auth.len == len && !CRYPTO_memcmp(h->auth.data, mac, len);
}

static void
handle_hello(struct mgmt_conn *c, const Edgetrain__Hello *h)
{
    struct mgmt *m = c->m;
    char reason[256];
    if (!h->name || !h->name[0]) {
        mgmt_close(c, EINVAL, "Hello without a name");
        return;
    }
    if (h->protocol_version > MGMT_PROTOCOL_VERSION) {
        snprintf(reason, sizeof reason, "protocol version %u not supported "
                 "(controller speaks %u)", h->protocol_version,
                 MGMT_PROTOCOL_VERSION);
        mgmt_close(c, EPROTO, reason);
        return;
    }
    if (!auth_ok(m, c, h)) {
        snprintf(reason, sizeof reason, "agent '%s': authentication failed "
                 "(HMAC of the challenge does not match the cluster key)",
                 h->name);
        ET_WARN("mgmt: refused %s: %s", c->name, reason);
        mgmt_close(c, EACCES, reason);
        return;
    }
    char peer[160];
    snprintf(peer, sizeof peer, "%s", c->name);
    snprintf(c->name, sizeof c->name, "%.150s", h->name);
    reason[0] = '\0';
    int e = m->cb.hello ? m->cb.hello(m->aux, c, h, reason, sizeof reason) : 0;
    if (e) {
        snprintf(c->name, sizeof c->name, "%.60s (%.90s)", h->name, peer);
        mgmt_close(c, (uint32_t) e, reason[0] ? reason : strerror(e));
        return;
    }
    c->state = CONN_ACCEPTED;
    Edgetrain__Welcome w = EDGETRAIN__WELCOME__INIT;
    w.controller_id = m->controller_id;
    w.heartbeat_ms = m->cfg.heartbeat_ms;
    w.timeout_ms = m->cfg.heartbeat_ms * m->cfg.timeout_periods;
    mgmt_send(c, ET_MSG_WELCOME, &w.base);
    ET_INFO("mgmt: agent '%s' registered from %s (%s)", h->name, peer,
            h->data_addr && h->data_addr[0] ? h->data_addr : "no data addr");
}

/* One complete frame (payload, if any, in 'payload'). */
static void
dispatch(struct mgmt_conn *c, const struct et_frame *f, const uint8_t *payload,
         size_t payload_len)
{
    struct mgmt *m = c->m;
    int type = f->hdr.type;
    char reason[160];
    m->stats.frames_in++;
    c->last_rx = now_s();
    if (c->state == CONN_CHALLENGED) {
        if (type != ET_MSG_HELLO) {
            snprintf(reason, sizeof reason, "protocol error: expected hello, "
                     "got %s%s", et_msg_type_name(type),
                     f->hdr.payload_len ? " with a payload" : "");
            m->stats.bad_frames++;
            mgmt_close(c, EPROTO, reason);
            return;
        }
        handle_hello(c, (const Edgetrain__Hello *) f->msg);
        return;
    }
    switch (type) {
    case ET_MSG_HEARTBEAT: {
        const Edgetrain__Heartbeat *in = (const Edgetrain__Heartbeat *) f->msg;
        Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
        hb.seq = in->seq;
        hb.time_us = (uint64_t) (now_s() * 1e6);
        mgmt_send(c, ET_MSG_HEARTBEAT, &hb.base);
        break;
    }
    case ET_MSG_METRICS:
    case ET_MSG_CHECKPOINT:
    case ET_MSG_CHECKPOINT_REQUEST:
    case ET_MSG_ERROR:
        if (type == ET_MSG_ERROR) {
            const Edgetrain__Error *er = (const Edgetrain__Error *) f->msg;
            ET_WARN("mgmt: agent '%s' reports error %u: %s", c->name,
                    er->code, er->message ? er->message : "");
        }
        if (m->cb.frame) {
            m->cb.frame(m->aux, c, type, f->msg, payload, payload_len);
        }
        break;
    default:
        snprintf(reason, sizeof reason, "protocol error: unexpected %s on "
                 "the management channel", et_msg_type_name(type));
        m->stats.bad_frames++;
        mgmt_close(c, EPROTO, reason);
        break;
    }
}

static void
read_cb(struct bufferevent *bev, void *c_)
{
    struct mgmt_conn *c = c_;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!c->closing) {
        if (c->pending.msg) {
            size_t len = c->pending.hdr.payload_len;
            if (evbuffer_get_length(in) < len) {
                break;
            }
            uint8_t *buf = malloc(len);
            if (!buf) {
                mgmt_close(c, ENOMEM, "out of memory for a payload");
                break;
            }
            et_frame_take_payload(in, buf, len);
            struct et_frame f = c->pending;
            memset(&c->pending, 0, sizeof c->pending);
            dispatch(c, &f, buf, len);
            et_frame_clear(&f);
            free(buf);
            continue;
        }
        struct et_frame f;
        memset(&f, 0, sizeof f);
        int e = et_frame_decode_evbuffer(in, &f);
        if (e == ET_WIRE_AGAIN) {
            break;
        }
        if (e) {
            char reason[128];
            snprintf(reason, sizeof reason, "malformed frame: %s",
                     et_wire_strerror(e));
            c->m->stats.bad_frames++;
            /* The stream cannot be resynchronised; no Error frame either
             * (the peer may not speak the protocol at all). */
            mgmt_close(c, 0, reason);
            break;
        }
        /* Only an accepted agent may make us buffer a payload: before
         * the Hello a payload-carrying frame is refused at its header. */
        if (f.hdr.payload_len && c->state == CONN_ACCEPTED) {
            c->pending = f;
            continue;
        }
        dispatch(c, &f, NULL, 0);
        et_frame_clear(&f);
    }
}

static void
write_cb(struct bufferevent *bev, void *c_)
{
    struct mgmt_conn *c = c_;
    if (c->closing) {
        struct timeval zero = {0, 0};
        evtimer_add(c->close_timer, &zero);
    }
}

static void
event_cb(struct bufferevent *bev, short what, void *c_)
{
    struct mgmt_conn *c = c_;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        char reason[128];
        if (what & BEV_EVENT_EOF) {
            snprintf(reason, sizeof reason, "connection closed by peer");
        } else {
            snprintf(reason, sizeof reason, "socket error: %s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        }
        if (!c->closing) {
            mgmt_close(c, 0, reason);
        }
        struct timeval zero = {0, 0};
        evtimer_add(c->close_timer, &zero);
    }
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int socklen, void *m_)
{
    struct mgmt *m = m_;
    size_t unauth = 0;
    for (const struct mgmt_conn *o = m->conns; o; o = o->next) {
        unauth += o->state == CONN_CHALLENGED && !o->closing;
    }
    if (unauth >= MGMT_MAX_UNAUTH) {
        m->stats.bad_frames++;
        ET_WARN("mgmt: refused a connection: %zu connections have not "
                "authenticated yet (limit %d)", unauth, MGMT_MAX_UNAUTH);
        evutil_closesocket(fd);
        return;
    }
    struct mgmt_conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->m = m;
    c->bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->close_timer = evtimer_new(m->base, close_timer_cb, c);
    if (!c->bev || !c->close_timer) {
        if (c->bev) {
            bufferevent_free(c->bev);
        } else {
            evutil_closesocket(fd);
        }
        if (c->close_timer) {
            event_free(c->close_timer);
        }
        free(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char host[64] = "?";
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }
    snprintf(c->name, sizeof c->name, "%s:%u", host, port);
    c->last_rx = now_s();
    c->next = m->conns;
    if (m->conns) {
        m->conns->prev = c;
    }
    m->conns = c;
    m->stats.connections++;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    send_challenge(c);
}

static void
sweep_cb(evutil_socket_t fd, short what, void *m_)
{
    struct mgmt *m = m_;
    double now = now_s(), limit = timeout_s(m);
    for (struct mgmt_conn *c = m->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing && now - c->last_rx > limit) {
            char reason[128];
            snprintf(reason, sizeof reason, "heartbeat timeout (nothing for "
                     "%.0f ms, %u periods)", (now - c->last_rx) * 1e3,
                     m->cfg.timeout_periods);
            m->stats.timeouts++;
            mgmt_close(c, ETIMEDOUT, reason);
        }
    }
}

int
mgmt_create(struct event_base *base, const struct mgmt_config *cfg,
            const struct mgmt_callbacks *cb, void *aux, struct mgmt **mp)
{
    *mp = NULL;
    uint32_t ip;
    uint16_t port;
    if (!cfg->listen || topology_parse_hostport(cfg->listen, &ip, &port)) {
        /* Port 0 is allowed here (pick one): parse it by hand. */
        const char *colon = cfg->listen ? strrchr(cfg->listen, ':') : NULL;
        struct in_addr a;
        char host[64];
        if (!colon || strcmp(colon, ":0") || (size_t) (colon - cfg->listen)
                                              >= sizeof host) {
            ET_ERROR("mgmt: bad listen address '%s' (want IPv4:PORT)",
                     cfg->listen ? cfg->listen : "");
            return EINVAL;
        }
        memcpy(host, cfg->listen, colon - cfg->listen);
        host[colon - cfg->listen] = '\0';
        if (inet_pton(AF_INET, host, &a) != 1) {
            ET_ERROR("mgmt: bad listen address '%s'", cfg->listen);
            return EINVAL;
        }
        ip = ntohl(a.s_addr);
        port = 0;
    } else if (!ip && strncmp(cfg->listen, "0.0.0.0:", 8)) {
        ET_ERROR("mgmt: listen address '%s' must be an IPv4 literal",
                 cfg->listen);
        return EINVAL;
    }
    struct mgmt *m = calloc(1, sizeof *m);
    m->base = base;
    m->cfg = *cfg;
    if (!m->cfg.heartbeat_ms) {
        m->cfg.heartbeat_ms = 1000;
    }
    if (!m->cfg.timeout_periods) {
        m->cfg.timeout_periods = 3;
    }
    if (cfg->key && cfg->key_len) {
        m->key = malloc(cfg->key_len);
        memcpy(m->key, cfg->key, cfg->key_len);
    } else {
        m->cfg.key_len = 0;
    }
    m->cfg.key = NULL;
    m->controller_id = strdup(cfg->controller_id ? cfg->controller_id
                                                 : "edgetrain-controller");
    if (cb) {
        m->cb = *cb;
    }
    m->aux = aux;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(ip);
    sin.sin_port = htons(port);
    m->listener = evconnlistener_new_bind(
        base, accept_cb, m, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
        (struct sockaddr *) &sin, sizeof sin);
    if (!m->listener) {
        int e = errno ? errno : EADDRINUSE;
        ET_ERROR("mgmt: cannot listen on %s: %s", cfg->listen, strerror(e));
        mgmt_destroy(m);
        return e;
    }
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(m->listener), (struct sockaddr *) &bound,
                &blen);
    m->port = ntohs(bound.sin_port);
    m->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, m);
    uint32_t period_ms = m->cfg.heartbeat_ms / 4 ? m->cfg.heartbeat_ms / 4 : 1;
    struct timeval tv = {period_ms / 1000, (period_ms % 1000) * 1000};
    event_add(m->sweep, &tv);
    ET_INFO("mgmt: listening on %s (port %u), heartbeat %u ms, dead after %u "
            "periods%s", cfg->listen, m->port, m->cfg.heartbeat_ms,
            m->cfg.timeout_periods, m->key ? ", HMAC authentication" : "");
    *mp = m;
    return 0;
}

void
mgmt_destroy(struct mgmt *m)
{
    if (!m) {
        return;
    }
    while (m->conns) {
        conn_free(m->conns);
    }
    if (m->listener) {
        evconnlistener_free(m->listener);
    }
    if (m->sweep) {
        event_free(m->sweep);
    }
    free(m->key);
    free(m->controller_id);
    free(m);
}

uint16_t
mgmt_port(const struct mgmt *m)
{
    return m->port;
}

const struct mgmt_stats *
mgmt_get_stats(const struct mgmt *m)
{
    return &m->stats;
}

const char *
mgmt_conn_name(const struct mgmt_conn *c)
{
    return c->name;
}

void
mgmt_conn_set_data(struct mgmt_conn *c, void *data)
{
    c->data = data;
}

void *
mgmt_conn_get_data(const struct mgmt_conn *c)
{
    return c->data;
}
