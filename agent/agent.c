/* edgetrain-agent, I/O thread: management channel, streams, hand-off to
 * the compute thread. See agent.h and docs/agent.md. */
#include "agent.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "assign.h"
#include "log.h"
#include "model.h"
#include "resume.h"
#include "stream.h"
#include "wire.h"

#define AGENT_PROTOCOL_VERSION 1

static void mgmt_connect(struct agent *);
static void pump_out(struct agent *);

/* ------------------------------------------------------------------------
 * Management channel. */

int
agent_mgmt_send(struct agent *ag, int type, const ProtobufCMessage *msg,
                const void *payload, size_t len)
{
    if (ag->mgmt_state != MGMT_UP) {
        return ENOTCONN;
    }
    return et_frame_encode_evbuffer(bufferevent_get_output(ag->mgmt), type,
                                    msg, payload, len, NULL, NULL)
           ? EIO : 0;
}

/* Tells the controller about bad input or a stream problem. */
static void
report_error(struct agent *ag, uint32_t code, const char *msg)
{
    Edgetrain__Error e = EDGETRAIN__ERROR__INIT;
    e.code = code;
    e.message = (char *) msg;
    agent_mgmt_send(ag, ET_MSG_ERROR, &e.base, NULL, 0);
}

static void
mgmt_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    mgmt_connect(arg);
}

static void
mgmt_down(struct agent *ag, const char *why)
{
    if (ag->mgmt_pend) {
        et_frame_clear(ag->mgmt_pend);
        free(ag->mgmt_pend);
        ag->mgmt_pend = NULL;
    }
    if (ag->mgmt) {
        bufferevent_free(ag->mgmt);
        ag->mgmt = NULL;
    }
    evtimer_del(ag->mgmt_hb);
    if (ag->stopping) {
        ag->mgmt_state = MGMT_DOWN;
        return;
    }
    ET_WARN("controller %s: %s; reconnecting in %d ms (training goes on)",
            ag->opt.controller, why, ag->mgmt_backoff_ms);
    ag->mgmt_state = MGMT_DOWN;
    struct timeval tv = {ag->mgmt_backoff_ms / 1000,
                         (ag->mgmt_backoff_ms % 1000) * 1000};
    evtimer_add(ag->mgmt_retry, &tv);
    ag->mgmt_backoff_ms = ag->mgmt_backoff_ms * 2 > 5000
                          ? 5000 : ag->mgmt_backoff_ms * 2;
}

static void
send_hello(struct agent *ag, const Edgetrain__Challenge *ch)
{
    Edgetrain__Hello h = EDGETRAIN__HELLO__INIT;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    h.name = (char *) ag->opt.name;
    h.data_addr = ag->data_addr;
    h.cores = ag->cores;
    h.memory_bytes = ag->memory;
    h.gflops = ag->gflops;
    h.protocol_version = AGENT_PROTOCOL_VERSION;
    h.software_version = EDGETRAIN_VERSION;
    if (ag->key) {
        HMAC(EVP_sha256(), ag->key, (int) ag->key_len, ch->nonce.data,
             ch->nonce.len, mac, &mac_len);
        h.auth.data = mac;
        h.auth.len = mac_len;
    }
    h.current = ag->assign;
    h.last_epoch = ag->last_epoch;
    h.resume_local = ag->opt.state_dir != NULL;   /* keeps its own copies */
    et_frame_encode_evbuffer(bufferevent_get_output(ag->mgmt), ET_MSG_HELLO,
                             &h.base, NULL, 0, NULL, NULL);
}

static void
heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct agent *ag = arg;
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    hb.seq = ++ag->hb_seq;
    hb.time_us = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
    agent_mgmt_send(ag, ET_MSG_HEARTBEAT, &hb.base, NULL, 0);
}

static void apply_assignment(struct agent *, Edgetrain__Assignment *);

/* The Assignment parked by agent_resume_prepare() goes on once the
 * checkpoint it asked for is here, or ('force') once the controller said
 * it has none (the stage then starts fresh, reported). */
static void
resume_continue(struct agent *ag, bool force)
{
    Edgetrain__Assignment *a = ag->resume_pending;
    char err[300];
    if (!a || (!force && agent_resume_check(a, ag->resume_meta,
                                            ag->resume_buf, ag->resume_len,
                                            err, sizeof err))) {
        return;
    }
    ag->resume_pending = NULL;
    apply_assignment(ag, a);
}

/* A Checkpoint frame from the controller (resume.h): once its payload is
 * all in, keeps it and returns true; until then parks the frame in
 * ag->mgmt_pend and returns false. */
static bool
mgmt_take_checkpoint(struct agent *ag, struct evbuffer *in, struct et_frame *f)
{
    size_t len = f->hdr.payload_len;
    if (evbuffer_get_length(in) < len) {
        ag->mgmt_pend = malloc(sizeof *ag->mgmt_pend);
        *ag->mgmt_pend = *f;
        return false;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        ET_WARN("no memory for a %zu-byte checkpoint; dropped", len);
        evbuffer_drain(in, len);
        et_frame_clear(f);
        return true;
    }
    et_frame_take_payload(in, buf, len);
    agent_resume_keep(ag, (Edgetrain__Checkpoint *) f->msg, buf, len);
    f->msg = NULL;              /* kept */
    et_frame_clear(f);
    resume_continue(ag, false);
    return true;
}

static void
mgmt_read_cb(struct bufferevent *bev, void *arg)
{
    struct agent *ag = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct et_frame f;
        if (ag->mgmt_pend) {
            f = *ag->mgmt_pend;       /* its payload was still arriving */
            free(ag->mgmt_pend);
            ag->mgmt_pend = NULL;
        } else {
            int err = et_frame_decode_evbuffer(in, &f);
            if (err == ET_WIRE_AGAIN) {
                return;
            }
            if (err) {
                char why[128];
                snprintf(why, sizeof why, "malformed frame from controller: "
                         "%s", et_wire_strerror(err));
                mgmt_down(ag, why);
                return;
            }
        }
        if (f.hdr.type == ET_MSG_CHECKPOINT) {
            if (!mgmt_take_checkpoint(ag, in, &f)) {
                return;               /* the rest of the payload later */
            }
            continue;
        }
        if (evbuffer_get_length(in) < f.hdr.payload_len) {
            /* Only a Checkpoint from the controller has a payload. */
            et_frame_clear(&f);
            mgmt_down(ag, "unexpected payload from controller");
            return;
        }
        evbuffer_drain(in, f.hdr.payload_len);
        switch (f.hdr.type) {
        case ET_MSG_CHALLENGE:
            send_hello(ag, (Edgetrain__Challenge *) f.msg);
            break;
        case ET_MSG_WELCOME: {
            Edgetrain__Welcome *w = (Edgetrain__Welcome *) f.msg;
            ag->hb_ms = w->heartbeat_ms ? w->heartbeat_ms : 1000;
            ag->mgmt_state = MGMT_UP;
            ag->mgmt_backoff_ms = 200;
            struct timeval tv = {ag->hb_ms / 1000, (ag->hb_ms % 1000) * 1000};
            event_del(ag->mgmt_hb);
            event_assign(ag->mgmt_hb, ag->base, -1, EV_PERSIST, heartbeat_cb,
                         ag);
            evtimer_add(ag->mgmt_hb, &tv);
            ET_INFO("registered with controller %s (%s), heartbeat %u ms",
                    ag->opt.controller, w->controller_id, ag->hb_ms);
            break;
        }
        case ET_MSG_HEARTBEAT:
            break;
        case ET_MSG_ASSIGNMENT:
            apply_assignment(ag, (Edgetrain__Assignment *) f.msg);
            f.msg = NULL;       /* kept as ag->assign */
            break;
        case ET_MSG_ERROR: {
            Edgetrain__Error *e = (Edgetrain__Error *) f.msg;
            ET_WARN("controller error %u: %s", e->code, e->message);
            if (e->code == ENOENT) {
                resume_continue(ag, true);  /* no copy of what it asked */
            }
            break;
        }
        default:
            ET_WARN("controller sent an unexpected %s frame; ignored",
                    et_msg_type_name(f.hdr.type));
        }
        et_frame_clear(&f);
        if (!ag->mgmt) {
            return;
        }
    }
}

static void
mgmt_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct agent *ag = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof one);
        ET_INFO("connected to controller %s", ag->opt.controller);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        mgmt_down(ag, what & BEV_EVENT_EOF ? "connection closed"
                  : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

static void
mgmt_connect(struct agent *ag)
{
    struct sockaddr_storage ss;
    int len;
    if (et_parse_addr(ag->opt.controller, &ss, &len)) {
        ET_ERROR("bad controller address '%s'", ag->opt.controller);
        return;
    }
    ag->mgmt = bufferevent_socket_new(ag->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(ag->mgmt, mgmt_read_cb, NULL, mgmt_event_cb, ag);
    bufferevent_enable(ag->mgmt, EV_READ | EV_WRITE);
    ag->mgmt_state = MGMT_CONNECTING;
    if (bufferevent_socket_connect(ag->mgmt, (struct sockaddr *) &ss, len)) {
        mgmt_down(ag, "connect failed");
    }
}

/* ------------------------------------------------------------------------
 * Streams. */

static void
rx_ready_cb(void *arg)
{
    struct agent *ag = arg;
    /* Move in-order chunks to the compute thread while it has room; the
     * rest stay in the receive window (and credit stays withheld). */
    while (et_queue_has_room(&ag->to_compute)) {
        struct et_chunk *c = et_stream_rx_pop(ag->rx);
        if (!c) {
            break;
        }
        struct et_qmsg *m = et_qmsg_new(ET_QMSG_CHUNK);
        m->chunk = c;
        if (et_queue_push(&ag->to_compute, m, false)) {
            et_qmsg_free(m);
            break;
        }
    }
}

static void
rx_error_cb(void *arg, int code, const char *msg)
{
    report_error(arg, (uint32_t) code, msg);
}

/* An inference request on the data port: the compute thread answers. */
static int
rx_request_cb(void *arg, struct et_stream_conn *conn,
              const struct et_frame *f, const void *payload)
{
    struct agent *ag = arg;
    if (f->hdr.type != ET_MSG_INFER_REQUEST) {
        ET_WARN("data port: unexpected first frame %s; closed",
                et_msg_type_name(f->hdr.type));
        report_error(ag, ET_WIRE_BAD_TYPE, "data port: unexpected frame");
        return 1;
    }
    struct et_qmsg *m = et_qmsg_new(ET_QMSG_INFER);
    m->meta_len = protobuf_c_message_get_packed_size(f->msg);
    m->meta = malloc(m->meta_len + 1);
    protobuf_c_message_pack(f->msg, m->meta);
    m->payload_len = f->hdr.payload_len;
    m->payload = malloc(m->payload_len + 1);
    memcpy(m->payload, payload, m->payload_len);
    m->conn_id = et_stream_conn_id(conn);
    if (et_queue_push(&ag->to_compute, m, false)) {
        et_qmsg_free(m);
        return 1;
    }
    return 0;
}

static void
tx_room_cb(void *arg)
{
    pump_out(arg);
}

/* The stage's input shape: the output of block first_block - 1, with the
 * compute thread's model defaults (agent_model_config). */
static void
stage_input_shape(const Edgetrain__Assignment *a, uint32_t hwc[3])
{
    struct mn_config c;
    int h = 0, w = 0, ch = 0;
    hwc[0] = hwc[1] = hwc[2] = 0;
    if (!a->model) {
        return;
    }
    agent_model_config(a->model, &c);
    if (a->first_block >= 1
        && !mn_block_shape(&c, (int) a->first_block - 1, &h, &w, &ch)) {
        hwc[0] = (uint32_t) h, hwc[1] = (uint32_t) w, hwc[2] = (uint32_t) ch;
    }
}

static bool
same_stage(const Edgetrain__Assignment *a, const Edgetrain__Assignment *b)
{
    return a && b && a->run_id == b->run_id
           && a->first_block == b->first_block
           && a->last_block == b->last_block
           && a->stage_index == b->stage_index;
}

/* A resume (every stage back to one epoch boundary) ends the streams from
 * upstream: an upstream agent that restarted cannot continue its old
 * stream (what this side holds unconsumed came from the dead process and
 * will never be acked and resent), and a surviving one continues from the
 * fresh stream's start (stream_tx.c, tx_receiver_restarted), sending its
 * unacked chunks again; chunks of steps already trained are skipped by the
 * compute thread. A reconfigure accepting no upstream ends them all. */
static void
reset_upstreams(struct agent *ag, const Edgetrain__Assignment *a)
{
    const char *none[1] = {NULL};
    struct et_stream_rx_config rc = {
        .name = ag->opt.name, .run_id = a->run_id, .token = a->token.data,
        .token_len = a->token.len, .upstreams = none, .n_upstreams = 0,
        .window = ag->opt.window,
    };
    et_stream_rx_reconfigure(ag->rx, &rc);
}

/* Points the data streams at what 'a' says: accepted upstreams and the
 * shape they must send, the downstream peer and its sub-streams. */
static void
configure_streams(struct agent *ag, const Edgetrain__Assignment *a)
{
    const char *ups[8];
    size_t n_ups = 0;
    for (size_t i = 0; i < a->n_upstream && n_ups < 8; i++) {
        ups[n_ups++] = a->upstream[i]->name;
    }
    struct et_stream_rx_config rc = {
        .name = ag->opt.name, .run_id = a->run_id, .token = a->token.data,
        .token_len = a->token.len, .upstreams = ups, .n_upstreams = n_ups,
        .window = ag->opt.window,
        .max_n = a->model && a->model->micro_batch ? a->model->micro_batch
                 : a->model ? a->model->batch : 0,
    };
    stage_input_shape(a, rc.expect_hwc);
    et_stream_rx_reconfigure(ag->rx, &rc);

    if (!a->n_downstream) {
        if (ag->tx) {
            ET_INFO("no downstream peer any more: closing the stream to %s",
                    ag->tx_peer);
            et_stream_tx_destroy(ag->tx);
            ag->tx = NULL;
        }
        return;
    }
    const Edgetrain__Peer *p = a->downstream[0];
    struct et_substream_spec specs[16];
    size_t n = 0;
    for (size_t i = 0; i < p->n_substreams && n < 16; i++) {
        const Edgetrain__SubStream *s = p->substreams[i];
        specs[n++] = (struct et_substream_spec) {
            .id = s->id, .local_port = (uint16_t) s->local_port,
            .remote_port = (uint16_t) s->remote_port, .weight = s->weight,
            .path = et_substream_path_id((const char *const *) s->hops,
                                         s->n_hops),
            .old_path_up = s->old_path_up};
    }
    if (!n) {
        specs[n++] = (struct et_substream_spec) {.id = 0, .weight = 1};
    }
    bool same_peer = ag->tx && !strcmp(ag->tx_peer, p->name)
                     && !strcmp(ag->tx_addr, p->data_addr)
                     && ag->assign && ag->assign->run_id == a->run_id;
    if (!same_peer) {
        if (ag->tx) {
            ET_WARN("downstream changes from %s to %s: %u unacked chunks "
                    "of the old stream are dropped", ag->tx_peer, p->name,
                    et_stream_tx_held(ag->tx));
            et_stream_tx_destroy(ag->tx);
        }
        struct et_stream_tx_config tc = {
            .from = ag->opt.name, .peer = p->name, .peer_addr = p->data_addr,
            .local_addr = ag->data_addr, .run_id = a->run_id, .token = a->token.data,
            .token_len = a->token.len, .generation = a->generation,
            .dtype = p->encoding,
        };
        ag->tx = et_stream_tx_create(ag->base, &tc);
        if (!ag->tx) {
            report_error(ag, EINVAL, "bad downstream peer address");
            return;
        }
        et_stream_tx_set_room_cb(ag->tx, tx_room_cb, ag);
        snprintf(ag->tx_peer, sizeof ag->tx_peer, "%s", p->name);
        snprintf(ag->tx_addr, sizeof ag->tx_addr, "%s", p->data_addr);
    } else {
        et_stream_tx_set_dtype(ag->tx, p->encoding);
    }
    if (et_stream_tx_set_substreams(ag->tx, specs, n, a->generation)) {
        report_error(ag, EINVAL, "sub-stream set refused (weights)");
    }
}

static void
apply_assignment(struct agent *ag, Edgetrain__Assignment *a)
{
    ET_INFO("assignment: run %016llx generation %u, blocks %u-%u (stage "
            "%u of %u), %zu upstream, %zu downstream",
            (unsigned long long) a->run_id, a->generation, a->first_block,
            a->last_block, a->stage_index + 1, a->stage_count,
            a->n_upstream, a->n_downstream);
    /* A bad Assignment changes nothing: the current one (if any) stays. */
    char err[256];
    if (agent_assignment_check(a, ag->memory, err, sizeof err)) {
        ET_WARN("controller %s: %s; refused", ag->opt.controller, err);
        report_error(ag, EINVAL, err);
        protobuf_c_message_free_unpacked(&a->base, NULL);
        return;
    }
    agent_resume_drop_pending(ag);      /* a newer one replaces it */
    /* A re-placement after the last epoch has nothing left to train: keep
     * the trained stage (it serves inference) instead of starting over.
     * A resume (resume_from) restarts even the same stage from the
     * checkpoint, unless it is a re-send of the generation running. */
    bool resend = ag->assign && ag->assign->run_id == a->run_id
                  && ag->assign->generation == a->generation;
    bool resume = a->resume_from && a->resume_from[0] && !resend;
    bool new_stage = !same_stage(ag->assign, a);
    bool restart = (new_stage || resume)
                   && !(ag->assign && ag->assign->run_id == a->run_id
                        && a->start_epoch >= a->model->epochs);
    if (restart && resume && !agent_resume_prepare(ag, a)) {
        return;                 /* parked until its checkpoint is here */
    }
    /* The same stage resuming keeps its output stream: chunks already in
     * it are skipped downstream by position (compute.c, chunk_wanted). */
    if (restart && new_stage && ag->tx) {
        /* This stage's output shape changes: unacked chunks of the old
         * stage must not reach the new downstream stage. A new sender
         * continues the receiver's stream from its acked position. */
        ET_INFO("stage changes: %u unacked output chunks dropped",
                et_stream_tx_held(ag->tx));
        et_stream_tx_destroy(ag->tx);
        ag->tx = NULL;
        ag->tx_peer[0] = '\0';
    }
    if (restart && resume) {
        reset_upstreams(ag, a);
    }
    /* The new stage's generation counts before the streams are set up: a
     * new sender pulls queued output at once (pump_out), and what the old
     * stage computed must not reach it (another shape if the blocks
     * changed). */
    struct et_qmsg *m = NULL;
    if (restart) {
        m = et_qmsg_new(ET_QMSG_ASSIGN);
        m->meta_len = protobuf_c_message_get_packed_size(&a->base);
        m->meta = malloc(m->meta_len + 1);
        protobuf_c_message_pack(&a->base, m->meta);
        if (resume) {
            agent_resume_attach(ag, a, m);
        }
        ag->stage_gen++;
    }
    configure_streams(ag, a);
    if (m && et_queue_push(&ag->to_compute, m, false)) {
        et_qmsg_free(m);        /* shutting down */
    }
    if (ag->assign) {
        protobuf_c_message_free_unpacked(&ag->assign->base, NULL);
    }
    ag->assign = a;
}

/* ------------------------------------------------------------------------
 * Hand-off with the compute thread. */

static void
fill_metrics(struct agent *ag, Edgetrain__Metrics *m,
             Edgetrain__SubStreamStats *subs, Edgetrain__SubStreamStats **subp,
             size_t max_subs)
{
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(ag->rx, &rs);
    m->recv_queue = rs.queued + (uint32_t) et_queue_chunks(&ag->to_compute);
    m->send_queue = (uint32_t) et_queue_chunks(&ag->to_io)
                    + (ag->out_stash ? 1 : 0);
    m->chunks_received = rs.delivered;
    m->chunks_duplicate = rs.duplicates;
    m->chunks_gap = rs.gaps;
    if (ag->tx) {
        struct et_stream_tx_stats ts;
        et_stream_tx_get_stats(ag->tx, &ts);
        m->send_queue += ts.held;
        size_t n = ts.n_substreams < max_subs ? ts.n_substreams : max_subs;
        for (size_t i = 0; i < n; i++) {
            edgetrain__sub_stream_stats__init(&subs[i]);
            subs[i].peer = ag->tx_peer;
            subs[i].id = ts.subs[i].id;
            subs[i].bytes = ts.subs[i].bytes;
            subs[i].chunks = ts.subs[i].chunks;
            subp[i] = &subs[i];
        }
        m->n_substreams = n;
        m->substreams = subp;
    }
}

/* Sends what the compute thread produced: frames, metrics, and output
 * chunks while the sender has room (else the chunk waits in out_stash
 * and the compute thread blocks on the full queue: back-pressure). */
static void
pump_out(struct agent *ag)
{
    for (;;) {
        struct et_qmsg *m = ag->out_stash;
        if (m) {
            ag->out_stash = NULL;
        } else if (!(m = et_queue_pop(&ag->to_io, false))) {
            return;
        }
        switch (m->kind) {
        case ET_QMSG_CHUNK:
            if (m->stage_gen != ag->stage_gen) {
                break;          /* output of a stage replaced since */
            }
            if (!ag->tx) {
                ET_WARN("output chunk %llu/%u with no downstream peer; "
                        "dropped", (unsigned long long) m->chunk->step,
                        m->chunk->micro);
                break;
            }
            if (!et_stream_tx_can_send(ag->tx)) {
                ag->out_stash = m;
                return;
            }
            if (et_stream_tx_send(ag->tx, m->chunk) == 0) {
                m->chunk = NULL;
            } else {
                ET_ERROR("output chunk refused by the sender; dropped");
            }
            break;
        case ET_QMSG_METRICS: {
            Edgetrain__Metrics *mm = edgetrain__metrics__unpack(
                NULL, m->meta_len, m->meta);
            if (mm) {
                Edgetrain__SubStreamStats subs[16], *subp[16];
                size_t saved_n = mm->n_substreams;
                Edgetrain__SubStreamStats **saved = mm->substreams;
                fill_metrics(ag, mm, subs, subp, 16);
                if (mm->eval_done && mm->epoch > ag->last_epoch) {
                    ag->last_epoch = mm->epoch;
                }
                agent_mgmt_send(ag, ET_MSG_METRICS, &mm->base, NULL, 0);
                mm->n_substreams = saved_n;
                mm->substreams = saved;
                edgetrain__metrics__free_unpacked(mm, NULL);
            }
            break;
        }
        case ET_QMSG_FRAME: {
            const ProtobufCMessageDescriptor *d = et_msg_descriptor(m->type);
            ProtobufCMessage *msg = d ? protobuf_c_message_unpack(
                d, NULL, m->meta_len, m->meta) : NULL;
            if (!msg) {
                break;
            }
            if (m->conn_id) {
                struct et_stream_conn *c = et_stream_rx_conn(ag->rx,
                                                             m->conn_id);
                if (c) {
                    et_stream_conn_send(c, m->type, msg, m->payload,
                                        m->payload_len);
                }
            } else if (agent_mgmt_send(ag, m->type, msg, m->payload,
                                       m->payload_len)) {
                ET_WARN("controller not connected: %s not sent",
                        et_msg_type_name(m->type));
            }
            protobuf_c_message_free_unpacked(msg, NULL);
            break;
        }
        default:
            break;
        }
        et_qmsg_free(m);
    }
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct agent *ag = arg;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0) {
        /* EAGAIN: a spurious wake-up. */
    }
    pump_out(ag);
    if (ag->rx) {
        rx_ready_cb(ag);
    }
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct agent *ag = arg;
    ET_INFO("signal %d: stopping (the current step is abandoned, state "
            "saved, streams closed)", (int) sig);
    ag->stopping = true;
    struct et_qmsg *m = et_qmsg_new(ET_QMSG_STOP);
    if (et_queue_push(&ag->to_compute, m, false)) {
        et_qmsg_free(m);
    }
    /* Unblock a compute thread waiting for room to send. */
    et_queue_close(&ag->to_io);
    event_base_loopexit(ag->base, NULL);
}

static void
stats_cb(evutil_socket_t fd, short what, void *arg)
{
    struct agent *ag = arg;
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(ag->rx, &rs);
    ET_DEBUG("streams: received %llu delivered %llu duplicates %llu gaps "
             "%llu rejected %llu queued %u", (unsigned long long) rs.received,
             (unsigned long long) rs.delivered,
             (unsigned long long) rs.duplicates, (unsigned long long) rs.gaps,
             (unsigned long long) rs.rejected, rs.queued);
}

static int
read_key(struct agent *ag, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ET_ERROR("--key-file %s: %s", path, strerror(errno));
        return errno;
    }
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    if (!n) {
        ET_ERROR("--key-file %s is empty", path);
        return EINVAL;
    }
    ag->key = malloc(n);
    memcpy(ag->key, buf, n);
    ag->key_len = n;
    return 0;
}

/* The I/O side before anything connects: event loop, the two queues, the
 * stream receiver (accepting nobody until an Assignment names its
 * upstreams) and the management timers. tests/fuzz/fuzz_assignment.c
 * builds its agent with this too. */
static void
agent_io_init(struct agent *ag)
{
    ag->base = event_base_new();
    ag->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    et_queue_init(&ag->to_compute, ag->opt.queue_chunks, ag->wake_fd, false,
                  true);
    et_queue_init(&ag->to_io, ag->opt.queue_chunks, ag->wake_fd, true,
                  false);
    static const char *const none[1] = {NULL};
    struct et_stream_rx_config rc = {.name = ag->opt.name,
                                     .window = ag->opt.window,
                                     .upstreams = none};
    struct et_stream_rx_cbs cbs = {.ready = rx_ready_cb,
                                   .error = rx_error_cb,
                                   .request = rx_request_cb, .arg = ag};
    ag->rx = et_stream_rx_create(ag->base, &rc, &cbs);
    ag->mgmt_retry = evtimer_new(ag->base, mgmt_retry_cb, ag);
    ag->mgmt_hb = evtimer_new(ag->base, heartbeat_cb, ag);
    ag->mgmt_backoff_ms = 200;
}

int
agent_run(const struct agent_options *opt)
{
    struct agent *ag = calloc(1, sizeof *ag);
    ag->opt = *opt;
    if (!ag->opt.window) {
        ag->opt.window = AGENT_DEFAULT_WINDOW;
    }
    if (!ag->opt.queue_chunks) {
        ag->opt.queue_chunks = AGENT_DEFAULT_QUEUE;
    }
    if (opt->key_file && read_key(ag, opt->key_file)) {
        free(ag);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    et_stream_tune_malloc();
    agent_io_init(ag);
    const char *listen = opt->listen ? opt->listen : "127.0.0.1:0";
    uint16_t port;
    int err = et_stream_rx_listen(ag->rx, listen, &port);
    if (err) {
        ET_ERROR("cannot listen for data on %s: %s", listen, strerror(err));
        return 1;
    }
    /* Announce the address peers should connect to. */
    snprintf(ag->data_addr, sizeof ag->data_addr, "%s", listen);
    char *colon = strrchr(ag->data_addr, ':');
    if (colon) {
        snprintf(colon + 1, sizeof ag->data_addr - (size_t) (colon + 1
                 - ag->data_addr), "%u", port);
    }
    if (!strncmp(ag->data_addr, "0.0.0.0:", 8)
        || !strncmp(ag->data_addr, "*:", 2)) {
        ET_WARN("listening on all addresses; announcing %s (the controller "
                "uses the topology's address)", ag->data_addr);
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    ag->cores = cores > 0 ? (uint32_t) cores : 1;
    ag->memory = (uint64_t) sysconf(_SC_PHYS_PAGES)
                 * (uint64_t) sysconf(_SC_PAGESIZE);
    ag->gflops = opt->gflops > 0 ? opt->gflops : agent_self_benchmark();
    ET_INFO("agent %s: data on %s, %u cores, %.1f GiB, %.1f GFLOP/s sgemm",
            opt->name, ag->data_addr, ag->cores, ag->memory / 1073741824.0,
            ag->gflops);

    ag->wake_ev = event_new(ag->base, ag->wake_fd, EV_READ | EV_PERSIST,
                            wake_cb, ag);
    event_add(ag->wake_ev, NULL);
    ag->sigint_ev = evsignal_new(ag->base, SIGINT, signal_cb, ag);
    ag->sigterm_ev = evsignal_new(ag->base, SIGTERM, signal_cb, ag);
    event_add(ag->sigint_ev, NULL);
    event_add(ag->sigterm_ev, NULL);
    ag->stats_ev = event_new(ag->base, -1, EV_PERSIST, stats_cb, ag);
    struct timeval st = {5, 0};
    event_add(ag->stats_ev, &st);
    if (pthread_create(&ag->compute, NULL, agent_compute_main, ag)) {
        ET_ERROR("cannot start the compute thread");
        return 1;
    }
    ag->compute_started = true;
    mgmt_connect(ag);
    event_base_dispatch(ag->base);

    /* Shutdown: the compute thread saw STOP (or the queue closing). */
    ag->stopping = true;
    pthread_join(ag->compute, NULL);
    struct et_stream_rx_stats rs;
    et_stream_rx_get_stats(ag->rx, &rs);
    ET_INFO("streams at exit: received %llu, delivered in order %llu, "
            "duplicates %llu, gaps %llu, asked again %llu, rejected "
            "connections %llu", (unsigned long long) rs.received,
            (unsigned long long) rs.delivered,
            (unsigned long long) rs.duplicates, (unsigned long long) rs.gaps,
            (unsigned long long) rs.nacks, (unsigned long long) rs.rejected);
    if (ag->tx) {
        struct et_stream_tx_stats ts;
        et_stream_tx_get_stats(ag->tx, &ts);
        ET_INFO("stream to %s at exit: %llu chunks sent, %llu acked, %u "
                "unacked, %llu resent (%llu reported missing)", ag->tx_peer,
                (unsigned long long) ts.next_seq,
                (unsigned long long) ts.acked, ts.held,
                (unsigned long long) ts.resent + ts.nack_resent,
                (unsigned long long) ts.nack_resent);
    }
    et_stream_tx_destroy(ag->tx);
    et_stream_rx_destroy(ag->rx);
    et_qmsg_free(ag->out_stash);
    if (ag->mgmt) {
        bufferevent_free(ag->mgmt);
    }
    event_free(ag->mgmt_retry);
    event_free(ag->mgmt_hb);
    event_free(ag->wake_ev);
    event_free(ag->sigint_ev);
    event_free(ag->sigterm_ev);
    event_free(ag->stats_ev);
    et_queue_destroy(&ag->to_compute);
    et_queue_destroy(&ag->to_io);
    close(ag->wake_fd);
    if (ag->assign) {
        protobuf_c_message_free_unpacked(&ag->assign->base, NULL);
    }
    if (ag->mgmt_pend) {
        et_frame_clear(ag->mgmt_pend);
        free(ag->mgmt_pend);
    }
    agent_resume_clear(ag);
    agent_resume_drop_pending(ag);
    event_base_free(ag->base);
    free(ag->key);
    free(ag);
    return 0;
}
