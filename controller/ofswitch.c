/* Ofswitch: see ofswitch.h. */
#include <config.h>

#include "ofswitch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "hash.h"
#include "log.h"
#include "openvswitch/hmap.h"
#include "openvswitch/ofp-bundle.h"
#include "openvswitch/ofp-errors.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-msgs.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/ofp-print.h"
#include "openvswitch/ofp-switch.h"
#include "openvswitch/ofp-util.h"
#include "openvswitch/ofpbuf.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/rconn.h"
#include "openvswitch/vconn.h"
#include "socket-util.h"
#include "timeval.h"
#include "util.h"

/* Connection progress. */
enum ofswitch_state {
    S_DISCONNECTED,             /* No connection (yet, or any more). */
    S_FEATURES,                 /* Sent features request. */
    S_PORTS,                    /* Sent port description request. */
    S_FLOWS,                    /* Sent flow statistics request. */
    S_READY,                    /* Identified and accepted. */
    S_IGNORED,                  /* Identified, not in the topology. */
};

/* Batch progress.  Bundled: open, adds, barrier -> (B_ADDED) commit,
 * barrier -> (B_COMMITTED) done.  Unbundled: mods, barrier -> done. */
enum ofswitch_batch {
    B_NONE,
    B_ADDED,                    /* Waiting for the first barrier reply. */
    B_COMMITTED,                /* Waiting for the barrier after commit. */
    B_PLAIN,                    /* Waiting for the unbundled barrier. */
};

struct ofswitch_port {
    struct hmap_node node;      /* In ofswitch's 'ports', hash of 'port'. */
    uint32_t port;
    bool up;
};

struct ofswitch {
    struct rconn *rconn;
    bool passive;               /* Accepted connection: dies with it. */
    unsigned int seqno;         /* rconn connection seqno we handled. */
    enum ofswitch_state state;
    uint64_t dpid;
    char name[64];              /* For logs: dpid or target. */

    const struct ofswitch_callbacks *cb;
    void *aux;

    struct hmap ports;          /* Contains "struct ofswitch_port"s. */

    /* Flows. */
    struct flows_set installed; /* What the switch has, as far as known. */
    struct flows_set target;    /* What it has after the batch in flight. */
    bool needs_resync;
    bool stray;                 /* The dump found flows that are not ours. */
    ovs_be32 dump_xid;          /* Flow statistics request in flight. */
    long long int retry_time;
    bool use_bundles;
    uint32_t bundle_id;

    enum ofswitch_batch batch;
    ovs_be32 barrier_xid;       /* Barrier closing the current stage. */
    ovs_be32 open_xid;          /* Bundle open of the current batch. */
    bool batch_failed;          /* An error arrived during the batch. */
    bool commit_replied;        /* The commit was acknowledged. */
};

static const uint32_t OFSWITCH_VERSIONS = 1u << OFP13_VERSION;
enum { OFSWITCH_PROBE_S = 5, OFSWITCH_BACKOFF_S = 4 };

static void ofswitch_batch_finish(struct ofswitch *, int error);
static void ofswitch_request_flows(struct ofswitch *);
static void ofswitch_ready(struct ofswitch *);

static enum ofp_version
ofswitch_version(const struct ofswitch *sw)
{
    return rconn_get_version(sw->rconn);
}

static enum ofputil_protocol
ofswitch_protocol(const struct ofswitch *sw)
{
    return ofputil_protocol_from_ofp_version(ofswitch_version(sw));
}

static void
ofswitch_send(struct ofswitch *sw, struct ofpbuf *msg)
{
    /* rconn queues without bound; flow batches are bounded by the model. */
    rconn_send(sw->rconn, msg, NULL);
}

static struct ofswitch *
ofswitch_create__(const struct ofswitch_callbacks *cb, void *aux)
{
    struct ofswitch *sw = xzalloc(sizeof *sw);

    sw->rconn = rconn_create(OFSWITCH_PROBE_S, OFSWITCH_BACKOFF_S,
                             DSCP_DEFAULT, OFSWITCH_VERSIONS);
    sw->cb = cb;
    sw->aux = aux;
    sw->state = S_DISCONNECTED;
    sw->use_bundles = true;
    sw->needs_resync = true;
    hmap_init(&sw->ports);
    flows_set_init(&sw->installed);
    flows_set_init(&sw->target);
    return sw;
}

struct ofswitch *
ofswitch_create_passive(struct vconn *vconn,
                        const struct ofswitch_callbacks *cb, void *aux)
{
    struct ofswitch *sw = ofswitch_create__(cb, aux);

    sw->passive = true;
    snprintf(sw->name, sizeof sw->name, "%s", vconn_get_name(vconn));
    rconn_connect_unreliably(sw->rconn, vconn, NULL);
    return sw;
}

struct ofswitch *
ofswitch_create_active(const char *target,
                       const struct ofswitch_callbacks *cb, void *aux)
{
    struct ofswitch *sw = ofswitch_create__(cb, aux);

    snprintf(sw->name, sizeof sw->name, "%s", target);
    rconn_connect(sw->rconn, target, NULL);
    return sw;
}

static void
ofswitch_clear_ports(struct ofswitch *sw)
{
    struct ofswitch_port *p;

    HMAP_FOR_EACH_POP (p, node, &sw->ports) {
        free(p);
    }
}

void
ofswitch_destroy(struct ofswitch *sw)
{
    if (sw) {
        rconn_destroy(sw->rconn);
        ofswitch_clear_ports(sw);
        hmap_destroy(&sw->ports);
        flows_set_destroy(&sw->installed);
        flows_set_destroy(&sw->target);
        free(sw);
    }
}

bool
ofswitch_is_alive(const struct ofswitch *sw)
{
    return rconn_is_alive(sw->rconn);
}

bool
ofswitch_is_ready(const struct ofswitch *sw)
{
    return sw->state == S_READY;
}

bool
ofswitch_is_busy(const struct ofswitch *sw)
{
    return sw->batch != B_NONE;
}

bool
ofswitch_needs_resync(const struct ofswitch *sw)
{
    return sw->needs_resync;
}

long long int
ofswitch_retry_time(const struct ofswitch *sw)
{
    return sw->retry_time;
}

uint64_t
ofswitch_dpid(const struct ofswitch *sw)
{
    return sw->dpid;
}

const char *
ofswitch_name(const struct ofswitch *sw)
{
    return sw->name;
}

const struct flows_set *
ofswitch_installed(const struct ofswitch *sw)
{
    return &sw->installed;
}

void
ofswitch_set_use_bundles(struct ofswitch *sw, bool use)
{
    sw->use_bundles = use;
}

static struct ofswitch_port *
ofswitch_find_port(const struct ofswitch *sw, uint32_t port)
{
    struct ofswitch_port *p;

    HMAP_FOR_EACH_WITH_HASH (p, node, hash_int(port, 0), &sw->ports) {
        if (p->port == port) {
            return p;
        }
    }
    return NULL;
}

int
ofswitch_port_state(const struct ofswitch *sw, uint32_t port)
{
    const struct ofswitch_port *p = ofswitch_find_port(sw, port);
    return p ? p->up : -1;
}

static bool
phy_port_up(const struct ofputil_phy_port *pp)
{
    return !(pp->config & OFPUTIL_PC_PORT_DOWN)
           && !(pp->state & OFPUTIL_PS_LINK_DOWN);
}

/* Records the state of one port; reports a change once ready. */
static void
ofswitch_update_port(struct ofswitch *sw, uint32_t port, bool exists,
                     bool up)
{
    struct ofswitch_port *p = ofswitch_find_port(sw, port);
    bool was_up = p && p->up;

    if (!exists) {
        if (p) {
            hmap_remove(&sw->ports, &p->node);
            free(p);
        }
        up = false;
    } else {
        if (!p) {
            p = xzalloc(sizeof *p);
            p->port = port;
            hmap_insert(&sw->ports, &p->node, hash_int(port, 0));
        }
        p->up = up;
    }
    if (sw->state == S_READY && up != was_up) {
        sw->cb->port_status(sw->aux, sw, port, up);
    }
}

/* A new connection: start the handshake from scratch. */
static void
ofswitch_connected(struct ofswitch *sw)
{
    sw->seqno = rconn_get_connection_seqno(sw->rconn);
    sw->state = S_FEATURES;
    sw->needs_resync = true;
    sw->retry_time = 0;
    sw->stray = false;
    flows_set_clear(&sw->installed);
    ofswitch_clear_ports(sw);
    ofswitch_send(sw, ofpraw_alloc(OFPRAW_OFPT_FEATURES_REQUEST,
                                   ofswitch_version(sw), 0));
}

static void
ofswitch_disconnected(struct ofswitch *sw)
{
    bool was_ready = sw->state == S_READY;

    sw->state = S_DISCONNECTED;
    if (sw->batch != B_NONE) {
        ofswitch_batch_finish(sw, ECONNRESET);
    }
    if (was_ready) {
        ET_WARN("openflow: switch %s disconnected", sw->name);
        sw->cb->disconnected(sw->aux, sw);
    }
}

static void
ofswitch_handle_features(struct ofswitch *sw, const struct ofp_header *oh)
{
    struct ofpbuf b = ofpbuf_const_initializer(oh, ntohs(oh->length));
    struct ofputil_switch_features features;
    enum ofperr error = ofputil_pull_switch_features(&b, &features);

    if (error) {
        ET_WARN("openflow: %s: bad features reply: %s", sw->name,
                ofperr_to_string(error));
        rconn_disconnect(sw->rconn);
        return;
    }
    if (features.auxiliary_id) {
        /* Auxiliary connections carry no flow state; keep it quiet. */
        sw->state = S_IGNORED;
        return;
    }
    sw->dpid = features.datapath_id;
    snprintf(sw->name, sizeof sw->name, "%016"PRIx64, sw->dpid);
    sw->state = S_PORTS;
    ofswitch_send(sw, ofputil_encode_port_desc_stats_request(
                          ofswitch_version(sw), OFPP_ANY));
}

static void
ofswitch_handle_port_desc(struct ofswitch *sw, const struct ofp_header *oh)
{
    struct ofpbuf b = ofpbuf_const_initializer(oh, ntohs(oh->length));
    struct ofputil_phy_port pp;
    int error;

    ofpraw_pull_assert(&b);
    while (!(error = ofputil_pull_phy_port(oh->version, &b, &pp))) {
        ofswitch_update_port(sw, ofp_to_u16(pp.port_no), true,
                             phy_port_up(&pp));
    }
    if (error != EOF) {
        ET_WARN("openflow: %s: bad port description: %s", sw->name,
                ofperr_to_string(error));
    }
    if (sw->state != S_PORTS || ofpmp_more(oh)) {
        return;
    }
    ofswitch_request_flows(sw);
}

/* Asks for every flow in every table: what the switch holds is read back
 * instead of assumed, so a reconnection (a restarted controller, a switch
 * that kept its flows) changes only what differs. */
static void
ofswitch_request_flows(struct ofswitch *sw)
{
    struct ofputil_flow_stats_request fsr = {
        .aggregate = false,
        .out_port = OFPP_ANY,
        .out_group = OFPG_ANY,
        .table_id = 0xff,
    };
    match_init_catchall(&fsr.match);
    struct ofpbuf *msg = ofputil_encode_flow_stats_request(
        &fsr, ofswitch_protocol(sw));
    sw->dump_xid = ((struct ofp_header *) msg->data)->xid;
    sw->state = S_FLOWS;
    ofswitch_send(sw, msg);
}

/* One part of the flow dump: edgetrain's own flows become 'installed';
 * any other flow marks the switch for a full resynchronisation (which
 * removes it).  After the last part the switch is ready. */
static void
ofswitch_handle_flow_stats(struct ofswitch *sw, const struct ofp_header *oh)
{
    struct ofpbuf b = ofpbuf_const_initializer(oh, ntohs(oh->length));
    uint64_t ofpacts_stub[256 / 8];
    struct ofpbuf ofpacts;
    int error;

    if (sw->state != S_FLOWS || oh->xid != sw->dump_xid) {
        return;
    }
    ofpbuf_use_stub(&ofpacts, ofpacts_stub, sizeof ofpacts_stub);
    for (;;) {
        struct ofputil_flow_stats fs;
        struct flows_entry e;

        error = ofputil_decode_flow_stats_reply(&fs, &b, false, &ofpacts);
        if (error) {
            break;
        }
        if (flows_entry_from_stats(&fs, &e)) {
            flows_set_put(&sw->installed, &e.key, e.cookie, e.out_port);
        } else {
            sw->stray = true;
        }
    }
    ofpbuf_uninit(&ofpacts);
    if (error != EOF) {
        ET_WARN("openflow: %s: bad flow statistics reply: %s", sw->name,
                ofperr_to_string(error));
        sw->stray = true;       /* Unknown content: replace it all. */
    }
    if (ofpmp_more(oh)) {
        return;
    }
    sw->needs_resync = sw->stray;
    ET_INFO("openflow: switch %s holds %zu edgetrain flows%s", sw->name,
            flows_set_count(&sw->installed),
            sw->stray ? " and others (full resync)" : "");
    ofswitch_ready(sw);
}

/* The handshake is complete: offer the switch to the owner. */
static void
ofswitch_ready(struct ofswitch *sw)
{
    if (!sw->cb->ready(sw->aux, sw, sw->dpid)) {
        sw->state = S_IGNORED;
        return;
    }
    sw->state = S_READY;
    ET_INFO("openflow: switch %s ready (%zu ports)", sw->name,
            hmap_count(&sw->ports));

    /* Report the initial state of every port. */
    struct ofswitch_port *p;
    HMAP_FOR_EACH (p, node, &sw->ports) {
        sw->cb->port_status(sw->aux, sw, p->port, p->up);
    }
}

static void
ofswitch_handle_port_status(struct ofswitch *sw, const struct ofp_header *oh)
{
    struct ofputil_port_status ps;
    enum ofperr error = ofputil_decode_port_status(oh, &ps);

    if (error) {
        ET_WARN("openflow: %s: bad port status: %s", sw->name,
                ofperr_to_string(error));
        return;
    }
    ofswitch_update_port(sw, ofp_to_u16(ps.desc.port_no),
                         ps.reason != OFPPR_DELETE, phy_port_up(&ps.desc));
}

static void
ofswitch_handle_port_stats(struct ofswitch *sw, const struct ofp_header *oh)
{
    struct ofpbuf b = ofpbuf_const_initializer(oh, ntohs(oh->length));
    long long int now = time_msec();
    struct ofputil_port_stats ps;
    int error;

    if (sw->state != S_READY) {
        return;
    }
    while (!(error = ofputil_decode_port_stats(&ps, &b))) {
        uint32_t port = ofp_to_u16(ps.port_no);

        netdev_free_custom_stats_counters(&ps.custom_stats);
        if (port >= 0xff00) {
            continue;           /* LOCAL and other reserved ports. */
        }
        sw->cb->port_stats(sw->aux, sw, port, ps.stats.rx_packets,
                           ps.stats.tx_packets, ps.stats.rx_bytes,
                           ps.stats.tx_bytes, ps.stats.rx_dropped,
                           ps.stats.tx_dropped, now);
    }
    if (error != EOF) {
        ET_WARN("openflow: %s: bad port stats reply: %s", sw->name,
                ofperr_to_string(error));
    }
}

static void
ofswitch_handle_error(struct ofswitch *sw, const struct ofp_header *oh)
{
    struct ofpbuf payload;
    enum ofperr error = ofperr_decode_msg(oh, &payload);

    ET_WARN("openflow: %s: switch reports error %s (xid %#"PRIx32")",
            sw->name, error ? ofperr_to_string(error) : "(undecodable)",
            ntohl(oh->xid));
    if (sw->batch == B_NONE) {
        return;
    }
    sw->batch_failed = true;
    if (oh->xid == sw->open_xid
        && (error == OFPERR_OFPBRC_BAD_TYPE
            || error == OFPERR_OFPBRC_BAD_VENDOR
            || error == OFPERR_OFPBRC_BAD_SUBTYPE)) {
        ET_WARN("openflow: %s: no bundle support, sending flows unbundled",
                sw->name);
        sw->use_bundles = false;
    }
}

/* Ends the batch in flight: on success the target becomes installed. */
static void
ofswitch_batch_finish(struct ofswitch *sw, int error)
{
    sw->batch = B_NONE;
    if (!error) {
        flows_set_swap(&sw->installed, &sw->target);
        sw->needs_resync = false;
    } else {
        sw->needs_resync = true;
        sw->retry_time = time_msec() + (error == ECONNRESET ? 0 : 1000);
    }
    flows_set_clear(&sw->target);
    sw->cb->batch_done(sw->aux, sw, error);
}

static ovs_be32
ofswitch_send_barrier(struct ofswitch *sw)
{
    struct ofpbuf *msg = ofputil_encode_barrier_request(ofswitch_version(sw));
    ovs_be32 xid = ((struct ofp_header *) msg->data)->xid;

    ofswitch_send(sw, msg);
    return xid;
}

static ovs_be32
ofswitch_send_bundle_ctrl(struct ofswitch *sw, uint16_t type)
{
    struct ofputil_bundle_ctrl_msg bc = {
        .bundle_id = sw->bundle_id,
        .type = type,
        .flags = OFPBF_ATOMIC | OFPBF_ORDERED,
    };
    struct ofpbuf *msg = ofputil_encode_bundle_ctrl_request(
        ofswitch_version(sw), &bc);
    ovs_be32 xid = ((struct ofp_header *) msg->data)->xid;

    ofswitch_send(sw, msg);
    return xid;
}

static void
ofswitch_handle_barrier(struct ofswitch *sw, const struct ofp_header *oh)
{
    if (sw->batch == B_NONE || oh->xid != sw->barrier_xid) {
        return;
    }
    switch (sw->batch) {
    case B_ADDED:
        if (sw->batch_failed) {
            /* Some message was refused and left out of the bundle: do not
             * commit a partial change. */
            ofswitch_send_bundle_ctrl(sw, OFPBCT_DISCARD_REQUEST);
            ofswitch_batch_finish(sw, EPROTO);
        } else {
            ofswitch_send_bundle_ctrl(sw, OFPBCT_COMMIT_REQUEST);
            sw->barrier_xid = ofswitch_send_barrier(sw);
            sw->batch = B_COMMITTED;
        }
        break;
    case B_COMMITTED:
        ofswitch_batch_finish(sw, sw->batch_failed || !sw->commit_replied
                                  ? EPROTO : 0);
        break;
    case B_PLAIN:
        ofswitch_batch_finish(sw, sw->batch_failed ? EPROTO : 0);
        break;
    case B_NONE:
        break;
    }
}

static void
ofswitch_handle_bundle_ctrl(struct ofswitch *sw, const struct ofp_header *oh)
{
    struct ofputil_bundle_ctrl_msg bc;

    if (!ofputil_decode_bundle_ctrl(oh, &bc)
        && bc.type == OFPBCT_COMMIT_REPLY && bc.bundle_id == sw->bundle_id
        && sw->batch == B_COMMITTED) {
        sw->commit_replied = true;
    }
}

static void
ofswitch_handle(struct ofswitch *sw, const struct ofp_header *oh)
{
    enum ofptype type;
    enum ofperr error = ofptype_decode(&type, oh);

    if (error) {
        ET_WARN("openflow: %s: undecodable message: %s", sw->name,
                ofperr_to_string(error));
        return;
    }
    switch (type) {
    case OFPTYPE_ECHO_REQUEST:
        ofswitch_send(sw, ofputil_encode_echo_reply(oh));
        break;
    case OFPTYPE_FEATURES_REPLY:
        if (sw->state == S_FEATURES) {
            ofswitch_handle_features(sw, oh);
        }
        break;
    case OFPTYPE_PORT_DESC_STATS_REPLY:
        ofswitch_handle_port_desc(sw, oh);
        break;
    case OFPTYPE_PORT_STATUS:
        ofswitch_handle_port_status(sw, oh);
        break;
    case OFPTYPE_PORT_STATS_REPLY:
        ofswitch_handle_port_stats(sw, oh);
        break;
    case OFPTYPE_FLOW_STATS_REPLY:
        ofswitch_handle_flow_stats(sw, oh);
        break;
    case OFPTYPE_BARRIER_REPLY:
        ofswitch_handle_barrier(sw, oh);
        break;
    case OFPTYPE_BUNDLE_CONTROL:
        ofswitch_handle_bundle_ctrl(sw, oh);
        break;
    case OFPTYPE_ERROR:
        ofswitch_handle_error(sw, oh);
        break;
    default:
        /* Packet-ins (none expected: the table-miss drops), flow-removed,
         * echo replies (rconn's probes) and the rest need nothing. */
        break;
    }
}

void
ofswitch_run(struct ofswitch *sw)
{
    rconn_run(sw->rconn);

    if (rconn_is_connected(sw->rconn)) {
        if (sw->state == S_DISCONNECTED
            || sw->seqno != rconn_get_connection_seqno(sw->rconn)) {
            if (sw->state != S_DISCONNECTED) {
                ofswitch_disconnected(sw);
            }
            ofswitch_connected(sw);
        }
    } else if (sw->state != S_DISCONNECTED) {
        ofswitch_disconnected(sw);
    }

    /* Bounded, so one busy switch cannot starve the others. */
    for (int i = 0; i < 500; i++) {
        struct ofpbuf *msg = rconn_recv(sw->rconn);

        if (!msg) {
            return;
        }
        ofswitch_handle(sw, msg->data);
        ofpbuf_delete(msg);
    }
    poll_immediate_wake();
}

void
ofswitch_wait(struct ofswitch *sw)
{
    rconn_run_wait(sw->rconn);
    rconn_recv_wait(sw->rconn);
}

void
ofswitch_request_port_stats(struct ofswitch *sw)
{
    if (sw->state == S_READY) {
        ofswitch_send(sw, ofputil_encode_dump_ports_request(
                              ofswitch_version(sw), OFPP_ANY));
    }
}

/* Queues one flow_mod, inside the open bundle if bundling. */
static void
ofswitch_put_mod(struct ofswitch *sw, const struct flows_entry *e,
                 int command)
{
    enum ofputil_protocol protocol = ofswitch_protocol(sw);
    struct ofpbuf *fm = e ? flows_encode_mod(e, command, protocol)
                          : flows_encode_delete_all(protocol);

    if (sw->use_bundles) {
        struct ofputil_bundle_add_msg bam = {
            .bundle_id = sw->bundle_id,
            .flags = OFPBF_ATOMIC | OFPBF_ORDERED,
            .msg = fm->data,
        };
        ofswitch_send(sw, ofputil_encode_bundle_add(ofswitch_version(sw),
                                                    &bam));
        ofpbuf_delete(fm);
    } else {
        ofswitch_send(sw, fm);
    }
}

size_t
ofswitch_sync(struct ofswitch *sw, const struct flows_set *desired,
              enum ofswitch_step step)
{
    const struct flows_entry *d;
    struct flows_entry *i;
    size_t n = 0;

    ovs_assert(sw->batch == B_NONE && sw->state == S_READY);

    /* Count first: an empty step sends nothing. */
    switch (step) {
    case OFSWITCH_REPLACE:
        n = 1 + flows_set_count(desired);
        break;
    case OFSWITCH_ADD:
    case OFSWITCH_MODIFY:
        HMAP_FOR_EACH (d, node, &desired->map) {
            i = flows_set_find(&sw->installed, &d->key);
            n += step == OFSWITCH_ADD ? !i : i && !flows_entry_same(i, d);
        }
        break;
    case OFSWITCH_DELETE:
        HMAP_FOR_EACH (i, node, &sw->installed.map) {
            n += !flows_set_find(desired, &i->key);
        }
        break;
    }
    if (!n) {
        return 0;
    }

    sw->batch_failed = false;
    sw->commit_replied = false;
    if (sw->use_bundles) {
        sw->bundle_id++;
        sw->open_xid = ofswitch_send_bundle_ctrl(sw, OFPBCT_OPEN_REQUEST);
    }

    if (step == OFSWITCH_REPLACE) {
        flows_set_copy(&sw->target, desired);
        ofswitch_put_mod(sw, NULL, OFPFC_DELETE);
        HMAP_FOR_EACH (d, node, &desired->map) {
            ofswitch_put_mod(sw, d, OFPFC_ADD);
        }
    } else {
        flows_set_copy(&sw->target, &sw->installed);
        if (step == OFSWITCH_DELETE) {
            HMAP_FOR_EACH (i, node, &sw->installed.map) {
                if (!flows_set_find(desired, &i->key)) {
                    ofswitch_put_mod(sw, i, OFPFC_DELETE_STRICT);
                    flows_set_remove(&sw->target,
                                     flows_set_find(&sw->target, &i->key));
                }
            }
        } else {
            HMAP_FOR_EACH (d, node, &desired->map) {
                i = flows_set_find(&sw->installed, &d->key);
                if (step == OFSWITCH_ADD ? !i
                    : i && !flows_entry_same(i, d)) {
                    /* OpenFlow 1.1+ modify cannot change a cookie; an
                     * add of the same match and priority replaces the
                     * flow atomically, cookie included. */
                    ofswitch_put_mod(sw, d, step == OFSWITCH_ADD
                                            || i->cookie != d->cookie
                                            ? OFPFC_ADD
                                            : OFPFC_MODIFY_STRICT);
                    flows_set_put(&sw->target, &d->key, d->cookie,
                                  d->out_port);
                }
            }
        }
    }

    sw->barrier_xid = ofswitch_send_barrier(sw);
    sw->batch = sw->use_bundles ? B_ADDED : B_PLAIN;
    return n;
}
