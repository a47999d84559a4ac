/* Southbound: see southbound.h.
 *
 * Threads: the caller's thread (libevent) and the OpenFlow thread (this
 * file's southbound_main(), libopenvswitch's poll loop).  They share only
 * the fields under 'mutex': the pending routes (in, with the 'wake' latch)
 * and the event ring (out, with a pipe whose read end is readable exactly
 * while the ring is non-empty).  The topology copy is immutable after
 * creation and read by both.  Everything else belongs to the OpenFlow
 * thread. */
#include <config.h>

#include "southbound.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fatal-signal.h"
#include "flowpaths.h"
#include "flows.h"
#include "latch.h"
#include "log.h"
#include "ofswitch.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vconn.h"
#include "openvswitch/vlog.h"
#include "ovs-rcu.h"
#include "ovs-thread.h"
#include "socket-util.h"
#include "timeval.h"
#include "util.h"

/* Beyond this many queued events, port statistics are dropped (the
 * controller is not reading); other events are always kept. */
enum { SB_MAX_EVENTS = 1 << 16 };

/* One OpenFlow connection and what it maps to. */
struct sb_conn {
    struct southbound *sb;
    struct ofswitch *sw;
    size_t idx;                 /* Topology switch index, or SIZE_MAX. */
};

/* Make-before-break steps, in order. */
enum sb_phase { SB_IDLE, SB_ADD, SB_MODIFY, SB_DELETE };

struct southbound {
    /* Immutable after southbound_create(). */
    struct southbound_topology topo;
    char *names;                /* Storage of the topology's names. */
    int stats_interval;

    /* OpenFlow thread only. */
    pthread_t thread;
    struct pvconn *pvconn;
    struct sb_conn **conns;
    size_t n_conns, allocated_conns;
    struct sb_conn **by_index;  /* Ready connection per topology switch. */
    bool *link_up;              /* Per topology link. */
    bool links_dirty;           /* Port state changed: recompute link_up. */
    bool recompute;             /* A switch came up (with found flows):
                                 * recompute desired, run a cycle. */
    struct southbound_route *routes;   /* Current routes (own copy). */
    size_t n_routes;
    uint64_t routes_gen;        /* Generation of 'routes'. */
    struct flows_set *desired;  /* Per topology switch. */
    /* Until the caller first sets routes (a restarted controller that has
     * not yet adopted its run), the sub-stream flows found on each switch
     * are kept: deleting them would move running streams off their paths
     * only to put them back moments later. */
    bool routes_set;
    struct flows_set *found;    /* Per topology switch. */
    uint64_t desired_seq;       /* Bumped on each recomputation. */
    uint64_t cycle_seq;         /* desired_seq of the cycle running. */
    enum sb_phase phase;
    uint64_t reported_gen;      /* Last FLOWS_SYNCED generation sent. */
    long long int next_stats;

    /* Shared, under 'mutex'. */
    struct ovs_mutex mutex;
    struct latch wake;          /* Caller -> OpenFlow thread. */
    bool exiting;
    bool routes_pending;
    struct southbound_route *new_routes;
    size_t n_new_routes;
    uint64_t next_gen;
    struct southbound_event *events;    /* Ring. */
    size_t ev_head, ev_count, ev_cap;
    bool ev_dropped;
    int pipe[2];                /* OpenFlow thread -> caller. */
    /* The sub-stream flows of 'found' whose ports were up, as each
     * switch reported them (southbound_found_substreams()); 'found_seen'
     * says which switches have. */
    struct flows_set *found_shared;
    bool *found_seen;
};

/* Routes: copies own one array of routes and one of all their links. */

static struct southbound_route *
routes_copy(const struct southbound_route *routes, size_t n)
{
    size_t n_links = 0;

    for (size_t i = 0; i < n; i++) {
        n_links += routes[i].n_links;
    }
    struct southbound_route *copy = xmalloc(n * sizeof *copy
                                            + n_links * sizeof(size_t) + 1);
    size_t *links = (size_t *) (copy + n);
    for (size_t i = 0; i < n; i++) {
        copy[i] = routes[i];
        memcpy(links, routes[i].links, routes[i].n_links * sizeof *links);
        copy[i].links = links;
        links += routes[i].n_links;
    }
    return copy;
}

/* Events. */

static void
sb_push_event(struct southbound *sb, const struct southbound_event *ev)
{
    ovs_mutex_lock(&sb->mutex);
    if (sb->ev_count == sb->ev_cap) {
        if (sb->ev_cap >= SB_MAX_EVENTS && ev->type == SOUTHBOUND_PORT_STATS) {
            if (!sb->ev_dropped) {
                ET_WARN("openflow: event queue full, dropping port stats");
                sb->ev_dropped = true;
            }
            ovs_mutex_unlock(&sb->mutex);
            return;
        }
        /* Grow and unwrap the ring. */
        size_t cap = sb->ev_cap ? 2 * sb->ev_cap : 64;
        struct southbound_event *events = xmalloc(cap * sizeof *events);
        for (size_t i = 0; i < sb->ev_count; i++) {
            events[i] = sb->events[(sb->ev_head + i) % sb->ev_cap];
        }
        free(sb->events);
        sb->events = events;
        sb->ev_cap = cap;
        sb->ev_head = 0;
    }
    sb->events[(sb->ev_head + sb->ev_count) % sb->ev_cap] = *ev;
    if (!sb->ev_count++) {
        char c = 0;
        ignore(write(sb->pipe[1], &c, 1));
    }
    ovs_mutex_unlock(&sb->mutex);
}

bool
southbound_next_event(struct southbound *sb, struct southbound_event *ev)
{
    bool found = false;

    ovs_mutex_lock(&sb->mutex);
    if (sb->ev_count) {
        *ev = sb->events[sb->ev_head];
        sb->ev_head = (sb->ev_head + 1) % sb->ev_cap;
        if (!--sb->ev_count) {
            char buf[16];
            while (read(sb->pipe[0], buf, sizeof buf) > 0) {
                continue;
            }
            sb->ev_dropped = false;
        }
        found = true;
    }
    ovs_mutex_unlock(&sb->mutex);
    return found;
}

int
southbound_event_fd(const struct southbound *sb)
{
    return sb->pipe[0];
}

const char *
southbound_event_type_name(enum southbound_event_type type)
{
    switch (type) {
    case SOUTHBOUND_SWITCH_UP: return "switch-up";
    case SOUTHBOUND_SWITCH_DOWN: return "switch-down";
    case SOUTHBOUND_PORT_STATS: return "port-stats";
    case SOUTHBOUND_PORT_STATUS: return "port-status";
    case SOUTHBOUND_FLOWS_SYNCED: return "flows-synced";
    case SOUTHBOUND_ERROR: return "error";
    }
    return "unknown";
}

static void
sb_event_init(struct southbound_event *ev, enum southbound_event_type type,
              const struct sb_conn *c)
{
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->sw = c ? c->idx : SIZE_MAX;
    ev->dpid = c ? ofswitch_dpid(c->sw) : 0;
    ev->time_msec = time_msec();
}

static void sb_find_substreams(struct southbound *, const struct sb_conn *);

/* Callbacks from the ofswitches. */

static bool
sb_cb_ready(void *c_, struct ofswitch *sw, uint64_t dpid)
{
    struct sb_conn *c = c_;
    struct southbound *sb = c->sb;
    struct southbound_event ev;
    size_t idx;

    for (idx = 0; idx < sb->topo.n_switches; idx++) {
        if (sb->topo.switches[idx].dpid == dpid) {
            break;
        }
    }
    if (idx == sb->topo.n_switches) {
        ET_WARN("openflow: switch %016"PRIx64" is not in the topology: "
                "ignored", dpid);
        return false;
    }
    if (sb->by_index[idx] && sb->by_index[idx] != c) {
        /* A reconnection whose old connection has not timed out yet. */
        ET_WARN("openflow: switch %s connected again; dropping the older "
                "connection", sb->topo.switches[idx].name);
        sb->by_index[idx]->idx = SIZE_MAX;
    }
    c->idx = idx;
    sb->by_index[idx] = c;
    sb->links_dirty = true;
    if (!sb->routes_set) {
        sb_find_substreams(sb, c);
    }
    sb->recompute = true;       /* Bring its flows to desired. */
    ET_INFO("openflow: switch %s (%s) up", sb->topo.switches[idx].name,
            ofswitch_name(sw));
    sb_event_init(&ev, SOUTHBOUND_SWITCH_UP, c);
    sb_push_event(sb, &ev);
    return true;
}

static void
sb_cb_disconnected(void *c_, struct ofswitch *sw OVS_UNUSED)
{
    struct sb_conn *c = c_;
    struct southbound *sb = c->sb;
    struct southbound_event ev;

    if (c->idx == SIZE_MAX) {
        return;
    }
    sb_event_init(&ev, SOUTHBOUND_SWITCH_DOWN, c);
    sb_push_event(sb, &ev);
    if (sb->by_index[c->idx] == c) {
        sb->by_index[c->idx] = NULL;
    }
    c->idx = SIZE_MAX;
    sb->links_dirty = true;
}

static void
sb_cb_port_status(void *c_, struct ofswitch *sw OVS_UNUSED, uint32_t port,
                  bool up)
{
    struct sb_conn *c = c_;
    struct southbound_event ev;

    if (c->idx == SIZE_MAX) {
        return;
    }
    sb_event_init(&ev, SOUTHBOUND_PORT_STATUS, c);
    ev.port = port;
    ev.up = up;
    sb_push_event(c->sb, &ev);
    c->sb->links_dirty = true;
}

static void
sb_cb_port_stats(void *c_, struct ofswitch *sw OVS_UNUSED, uint32_t port,
                 uint64_t rx_packets, uint64_t tx_packets, uint64_t rx_bytes,
                 uint64_t tx_bytes, uint64_t rx_dropped, uint64_t tx_dropped,
                 long long int time)
{
    struct sb_conn *c = c_;
    struct southbound_event ev;

    if (c->idx == SIZE_MAX) {
        return;
    }
    sb_event_init(&ev, SOUTHBOUND_PORT_STATS, c);
    ev.port = port;
    ev.rx_packets = rx_packets;
    ev.tx_packets = tx_packets;
    ev.rx_bytes = rx_bytes;
    ev.tx_bytes = tx_bytes;
    ev.rx_dropped = rx_dropped;
    ev.tx_dropped = tx_dropped;
    ev.time_msec = time;
    sb_push_event(c->sb, &ev);
}

static void
sb_cb_batch_done(void *c_, struct ofswitch *sw, int error)
{
    struct sb_conn *c = c_;
    struct southbound_event ev;

    if (error && error != ECONNRESET && c->idx != SIZE_MAX) {
        ET_WARN("openflow: switch %s rejected a flow batch; resynchronising",
                c->sb->topo.switches[c->idx].name);
        sb_event_init(&ev, SOUTHBOUND_ERROR, c);
        sb_push_event(c->sb, &ev);
    }
}

static const struct ofswitch_callbacks sb_callbacks = {
    .ready = sb_cb_ready,
    .disconnected = sb_cb_disconnected,
    .port_status = sb_cb_port_status,
    .port_stats = sb_cb_port_stats,
    .batch_done = sb_cb_batch_done,
};

/* The OpenFlow thread. */

static void
sb_add_conn(struct southbound *sb, struct sb_conn *c)
{
    if (sb->n_conns == sb->allocated_conns) {
        sb->conns = x2nrealloc(sb->conns, &sb->allocated_conns,
                               sizeof *sb->conns);
    }
    sb->conns[sb->n_conns++] = c;
}

static struct sb_conn *
sb_conn_new(struct southbound *sb)
{
    struct sb_conn *c = xzalloc(sizeof *c);

    c->sb = sb;
    c->idx = SIZE_MAX;
    return c;
}

/* Adds the sub-stream flows found on switch 'idx' to its desired set,
 * except those that use a port that is down now. */
static void
sb_keep_found(struct southbound *sb, size_t idx)
{
    const struct sb_conn *c = sb->by_index[idx];
    const struct flows_entry *e;

    HMAP_FOR_EACH (e, node, &sb->found[idx].map) {
        if (c && ofswitch_is_ready(c->sw)
            && (ofswitch_port_state(c->sw, e->key.in_port) != 1
                || ofswitch_port_state(c->sw, e->out_port) != 1)) {
            continue;
        }
        if (!flows_set_find(&sb->desired[idx], &e->key)) {
            flows_set_put(&sb->desired[idx], &e->key, e->cookie, e->out_port);
        }
    }
}

/* Remembers the sub-stream flows that switch 'c' reported in its flow
 * dump, while no routes have been set. */
static void
sb_find_substreams(struct southbound *sb, const struct sb_conn *c)
{
    const struct flows_entry *e;
    size_t n = 0;

    if (sb->routes_set) {
        return;
    }
    flows_set_clear(&sb->found[c->idx]);
    HMAP_FOR_EACH (e, node, &ofswitch_installed(c->sw)->map) {
        if (e->key.kind == FLOWS_SUBSTREAM) {
            flows_set_put(&sb->found[c->idx], &e->key, e->cookie,
                          e->out_port);
            n++;
        }
    }
    if (n) {
        ET_INFO("openflow: switch %s: keeping %zu sub-stream flows found on "
                "it until routes are set", sb->topo.switches[c->idx].name, n);
    }

    /* For the caller, before SWITCH_UP tells it the switch is in. */
    ovs_mutex_lock(&sb->mutex);
    flows_set_clear(&sb->found_shared[c->idx]);
    HMAP_FOR_EACH (e, node, &sb->found[c->idx].map) {
        if (ofswitch_port_state(c->sw, e->key.in_port) == 1
            && ofswitch_port_state(c->sw, e->out_port) == 1) {
            flows_set_put(&sb->found_shared[c->idx], &e->key, e->cookie,
                          e->out_port);
        }
    }
    sb->found_seen[c->idx] = true;
    ovs_mutex_unlock(&sb->mutex);
}

static void
sb_recompute(struct southbound *sb)
{
    size_t withdrawn;

    flows_compute(&sb->topo, sb->link_up, sb->routes, sb->n_routes,
                  sb->desired, &withdrawn);
    for (size_t i = 0; !sb->routes_set && i < sb->topo.n_switches; i++) {
        sb_keep_found(sb, i);
    }
    sb->desired_seq++;
    if (withdrawn) {
        ET_INFO("openflow: %zu of %zu routes withdrawn (link down)",
                withdrawn, sb->n_routes);
    }
}

/* A link is up unless a connected end reports its port down or missing. */
static void
sb_update_links(struct southbound *sb)
{
    bool changed = false;

    sb->links_dirty = false;
    for (size_t l = 0; l < sb->topo.n_links; l++) {
        const struct southbound_link *link = &sb->topo.links[l];
        bool up = true;

        for (int side = 0; side < 2; side++) {
            struct sb_conn *c = sb->by_index[link->sw[side]];
            if (c && ofswitch_is_ready(c->sw)
                && ofswitch_port_state(c->sw, link->port[side]) != 1) {
                up = false;
            }
        }
        if (up != sb->link_up[l]) {
            ET_INFO("openflow: link %zu (%s:%"PRIu32" - %s:%"PRIu32") %s",
                    l, sb->topo.switches[link->sw[0]].name, link->port[0],
                    sb->topo.switches[link->sw[1]].name, link->port[1],
                    up ? "up" : "down");
            sb->link_up[l] = up;
            changed = true;
        }
    }
    if (changed) {
        sb_recompute(sb);
    }
}

static bool
sb_conn_syncable(const struct sb_conn *c)
{
    return c->idx != SIZE_MAX && ofswitch_is_ready(c->sw);
}

/* Drives the flows of every ready switch towards 'desired': full
 * resynchronisation for switches that need it, then for the others the
 * make-before-break cycle add -> modify -> delete, each step waiting until
 * every switch has acknowledged the previous one. */
static void
sb_sync_run(struct southbound *sb)
{
    long long int now = time_msec();
    bool busy = false;

    for (size_t i = 0; i < sb->n_conns; i++) {
        struct sb_conn *c = sb->conns[i];

        if (!sb_conn_syncable(c)) {
            continue;
        }
        if (!ofswitch_is_busy(c->sw) && ofswitch_needs_resync(c->sw)) {
            if (now < ofswitch_retry_time(c->sw)) {
                poll_timer_wait_until(ofswitch_retry_time(c->sw));
                continue;
            }
            size_t n = ofswitch_sync(c->sw, &sb->desired[c->idx],
                                     OFSWITCH_REPLACE);
            ET_INFO("openflow: switch %s: resynchronising %zu flows",
                    sb->topo.switches[c->idx].name, n - 1);
        }
        busy = busy || ofswitch_is_busy(c->sw) || ofswitch_needs_resync(c->sw);
    }
    if (busy) {
        return;
    }

    if (sb->phase == SB_IDLE) {
        if (sb->cycle_seq == sb->desired_seq) {
            if (sb->reported_gen < sb->routes_gen) {
                struct southbound_event ev;

                sb_event_init(&ev, SOUTHBOUND_FLOWS_SYNCED, NULL);
                ev.generation = sb->routes_gen;
                sb_push_event(sb, &ev);
                sb->reported_gen = sb->routes_gen;
            }
            return;
        }
        sb->cycle_seq = sb->desired_seq;
        sb->phase = SB_ADD;
    } else if (sb->cycle_seq != sb->desired_seq) {
        /* The target moved mid-cycle: a modify now could point traffic at
         * hops not yet added, so start again from the adds. */
        sb->cycle_seq = sb->desired_seq;
        sb->phase = SB_ADD;
    }
    while (sb->phase != SB_IDLE) {
        static const enum ofswitch_step steps[] = {
            [SB_ADD] = OFSWITCH_ADD,
            [SB_MODIFY] = OFSWITCH_MODIFY,
            [SB_DELETE] = OFSWITCH_DELETE,
        };
        size_t sent = 0;

        for (size_t i = 0; i < sb->n_conns; i++) {
            struct sb_conn *c = sb->conns[i];

            if (sb_conn_syncable(c)) {
                sent += ofswitch_sync(c->sw, &sb->desired[c->idx],
                                      steps[sb->phase]);
            }
        }
        sb->phase = sb->phase == SB_DELETE ? SB_IDLE : sb->phase + 1;
        if (sent) {
            return;             /* Next step once these are acknowledged. */
        }
    }
    poll_immediate_wake();      /* Report FLOWS_SYNCED on the next pass. */
}

static void
sb_take_routes(struct southbound *sb)
{
    struct southbound_route *routes = NULL;
    size_t n = 0;
    uint64_t gen = 0;
    bool pending;

    ovs_mutex_lock(&sb->mutex);
    pending = sb->routes_pending;
    if (pending) {
        routes = sb->new_routes;
        n = sb->n_new_routes;
        gen = sb->next_gen;
        sb->new_routes = NULL;
        sb->routes_pending = false;
    }
    ovs_mutex_unlock(&sb->mutex);

    if (pending) {
        free(sb->routes);
        sb->routes = routes;
        sb->n_routes = n;
        sb->routes_gen = gen;
        if (!sb->routes_set) {
            sb->routes_set = true;
            for (size_t i = 0; i < sb->topo.n_switches; i++) {
                flows_set_clear(&sb->found[i]);
            }
        }
        sb_recompute(sb);
    }
}

static void
sb_accept(struct southbound *sb)
{
    for (int i = 0; sb->pvconn && i < 16; i++) {
        struct vconn *vconn;
        int error = pvconn_accept(sb->pvconn, &vconn);

        if (error) {
            if (error != EAGAIN) {
                ET_WARN("openflow: accept: %s", ovs_strerror(error));
            }
            return;
        }
        struct sb_conn *c = sb_conn_new(sb);
        c->sw = ofswitch_create_passive(vconn, &sb_callbacks, c);
        sb_add_conn(sb, c);
    }
}

static void *
southbound_main(void *sb_)
{
    struct southbound *sb = sb_;

    for (;;) {
        bool exiting;

        latch_poll(&sb->wake);
        ovs_mutex_lock(&sb->mutex);
        exiting = sb->exiting;
        ovs_mutex_unlock(&sb->mutex);
        if (exiting) {
            break;
        }
        sb_take_routes(sb);
        sb_accept(sb);

        for (size_t i = 0; i < sb->n_conns; ) {
            struct sb_conn *c = sb->conns[i];

            ofswitch_run(c->sw);
            if (!ofswitch_is_alive(c->sw)) {
                sb_cb_disconnected(c, c->sw);
                ofswitch_destroy(c->sw);
                free(c);
                sb->conns[i] = sb->conns[--sb->n_conns];
            } else {
                i++;
            }
        }
        if (sb->links_dirty) {
            sb_update_links(sb);
        }
        if (sb->recompute) {
            sb->recompute = false;
            sb_recompute(sb);
        }

        long long int now = time_msec();
        if (now >= sb->next_stats) {
            for (size_t i = 0; i < sb->n_conns; i++) {
                if (sb_conn_syncable(sb->conns[i])) {
                    ofswitch_request_port_stats(sb->conns[i]->sw);
                }
            }
            sb->next_stats = now + sb->stats_interval;
        }
        sb_sync_run(sb);

        for (size_t i = 0; i < sb->n_conns; i++) {
            ofswitch_wait(sb->conns[i]->sw);
        }
        if (sb->pvconn) {
            pvconn_wait(sb->pvconn);
        }
        latch_wait(&sb->wake);
        poll_timer_wait_until(sb->next_stats);
        poll_block();
    }
    return NULL;
}

/* Creation and the caller's side. */

/* Copies 'n' elements of 'size' bytes; never returns NULL (n may be 0). */
static void *
sb_dup_array(const void *p, size_t n, size_t size)
{
    void *copy = xmalloc(n * size + 1);
    if (n) {
        memcpy(copy, p, n * size);
    }
    return copy;
}

static void
sb_copy_topology(struct southbound *sb, const struct southbound_topology *t)
{
    size_t len = 0;

    for (size_t i = 0; i < t->n_switches; i++) {
        len += strlen(t->switches[i].name ? t->switches[i].name : "") + 1;
    }
    for (size_t i = 0; i < t->n_hosts; i++) {
        len += strlen(t->hosts[i].name ? t->hosts[i].name : "") + 1;
    }
    char *p = sb->names = xmalloc(len + 1);

    struct southbound_switch *sws = sb_dup_array(t->switches, t->n_switches,
                                                 sizeof *sws);
    struct southbound_host *hosts = sb_dup_array(t->hosts, t->n_hosts,
                                                 sizeof *hosts);
    for (size_t i = 0; i < t->n_switches; i++) {
        strcpy(p, t->switches[i].name ? t->switches[i].name : "");
        sws[i].name = p;
        p += strlen(p) + 1;
    }
    for (size_t i = 0; i < t->n_hosts; i++) {
        strcpy(p, t->hosts[i].name ? t->hosts[i].name : "");
        hosts[i].name = p;
        p += strlen(p) + 1;
    }
    sb->topo.switches = sws;
    sb->topo.n_switches = t->n_switches;
    sb->topo.hosts = hosts;
    sb->topo.n_hosts = t->n_hosts;
    sb->topo.links = sb_dup_array(t->links, t->n_links, sizeof *t->links);
    sb->topo.n_links = t->n_links;
}

static void
sb_free(struct southbound *sb)
{
    for (size_t i = 0; i < sb->n_conns; i++) {
        ofswitch_destroy(sb->conns[i]->sw);
        free(sb->conns[i]);
    }
    free(sb->conns);
    pvconn_close(sb->pvconn);
    for (size_t i = 0; sb->desired && i < sb->topo.n_switches; i++) {
        flows_set_destroy(&sb->desired[i]);
        flows_set_destroy(&sb->found[i]);
        flows_set_destroy(&sb->found_shared[i]);
    }
    free(sb->desired);
    free(sb->found);
    free(sb->found_shared);
    free(sb->found_seen);
    free(sb->by_index);
    free(sb->link_up);
    free(sb->routes);
    free(sb->new_routes);
    free(sb->events);
    free(CONST_CAST(struct southbound_switch *, sb->topo.switches));
    free(CONST_CAST(struct southbound_host *, sb->topo.hosts));
    free(CONST_CAST(struct southbound_link *, sb->topo.links));
    free(sb->names);
    if (sb->pipe[0] >= 0) {
        close(sb->pipe[0]);
        close(sb->pipe[1]);
    }
    latch_destroy(&sb->wake);
    ovs_mutex_destroy(&sb->mutex);
    free(sb);
}

int
southbound_create(const struct southbound_topology *topo,
                  const struct southbound_options *options,
                  struct southbound **sbp)
{
    char err[256];
    int error;

    *sbp = NULL;
    error = flows_check_topology(topo, err, sizeof err);
    if (error) {
        ET_ERROR("openflow: topology: %s", err);
        return error;
    }

    /* libopenvswitch logs to the console at INFO by default; keep only its
     * warnings unless edgetrain itself is at debug level. */
    const char *level = getenv("EDGETRAIN_LOG");
    if (!level || strcmp(level, "debug")) {
        vlog_set_levels(NULL, VLF_ANY_DESTINATION, VLL_WARN);
    }

    /* libopenvswitch's fatal-signal module must start while the process
     * is single-threaded; it takes SIGTERM, SIGINT, SIGHUP and SIGALRM only
     * where their disposition is still the default, so handlers that the
     * controller installs before or after this call win.  A peer closing
     * its connection must not kill the process. */
    fatal_signal_init();
    fatal_ignore_sigpipe();

    struct southbound *sb = xzalloc(sizeof *sb);
    ovs_mutex_init(&sb->mutex);
    latch_init(&sb->wake);
    sb->pipe[0] = sb->pipe[1] = -1;
    sb_copy_topology(sb, topo);
    sb->stats_interval = options->stats_interval_ms > 0
                         ? options->stats_interval_ms : 1000;
    sb->by_index = xcalloc(topo->n_switches + 1, sizeof *sb->by_index);
    sb->link_up = xmalloc((topo->n_links + 1) * sizeof *sb->link_up);
    for (size_t i = 0; i < topo->n_links; i++) {
        sb->link_up[i] = true;
    }
    sb->desired = xmalloc((topo->n_switches + 1) * sizeof *sb->desired);
    sb->found = xmalloc((topo->n_switches + 1) * sizeof *sb->found);
    sb->found_shared = xmalloc((topo->n_switches + 1)
                               * sizeof *sb->found_shared);
    sb->found_seen = xcalloc(topo->n_switches + 1, sizeof *sb->found_seen);
    for (size_t i = 0; i < topo->n_switches; i++) {
        flows_set_init(&sb->desired[i]);
        flows_set_init(&sb->found[i]);
        flows_set_init(&sb->found_shared[i]);
    }
    sb_recompute(sb);

    if (pipe(sb->pipe) || fcntl(sb->pipe[0], F_SETFL, O_NONBLOCK)
        || fcntl(sb->pipe[1], F_SETFL, O_NONBLOCK)) {
        error = errno;
        ET_ERROR("openflow: pipe: %s", strerror(error));
        sb_free(sb);
        return error;
    }

    if (options->listen) {
        error = pvconn_open(options->listen, 1u << OFP13_VERSION,
                            DSCP_DEFAULT, &sb->pvconn);
        if (error) {
            ET_ERROR("openflow: cannot listen on %s: %s", options->listen,
                     ovs_strerror(error));
            sb->pvconn = NULL;
            sb_free(sb);
            return error;
        }
        ET_INFO("openflow: listening on %s", options->listen);
    }
    for (size_t i = 0; i < options->n_connect; i++) {
        struct sb_conn *c = sb_conn_new(sb);
        c->sw = ofswitch_create_active(options->connect[i], &sb_callbacks, c);
        sb_add_conn(sb, c);
    }

    sb->thread = ovs_thread_create("southbound", southbound_main, sb);
    /* The caller's thread never reads RCU-protected OVS data; let RCU
     * grace periods pass without it. */
    ovsrcu_quiesce_start();
    *sbp = sb;
    return 0;
}

void
southbound_destroy(struct southbound *sb)
{
    if (!sb) {
        return;
    }
    ovs_mutex_lock(&sb->mutex);
    sb->exiting = true;
    ovs_mutex_unlock(&sb->mutex);
    latch_set(&sb->wake);
    xpthread_join(sb->thread, NULL);
    sb_free(sb);
}

int
southbound_set_routes(struct southbound *sb,
                      const struct southbound_route *routes, size_t n,
                      uint64_t *generation)
{
    char err[256];

    for (size_t i = 0; i < n; i++) {
        int error = flows_check_route(&sb->topo, &routes[i], err, sizeof err);
        if (error) {
            ET_ERROR("openflow: %s", err);
            return error;
        }
    }

    struct southbound_route *copy = routes_copy(routes, n);
    ovs_mutex_lock(&sb->mutex);
    free(sb->new_routes);
    sb->new_routes = copy;
    sb->n_new_routes = n;
    sb->routes_pending = true;
    if (generation) {
        *generation = ++sb->next_gen;
    } else {
        ++sb->next_gen;
    }
    ovs_mutex_unlock(&sb->mutex);
    latch_set(&sb->wake);
    return 0;
}

void
southbound_found_substreams(struct southbound *sb, struct flows_set *sets,
                            bool *seen)
{
    ovs_mutex_lock(&sb->mutex);
    for (size_t i = 0; i < sb->topo.n_switches; i++) {
        flows_set_copy(&sets[i], &sb->found_shared[i]);
        seen[i] = sb->found_seen[i];
    }
    ovs_mutex_unlock(&sb->mutex);
}

int
southbound_trace_found(struct southbound *sb, struct southbound_route *routes,
                       size_t n, size_t *links, const bool *link_up,
                       size_t *extra, char *err, size_t err_len)
{
    const struct southbound_topology *t = &sb->topo;
    struct flows_set *sets = xmalloc((t->n_switches + 1) * sizeof *sets);
    bool *seen = xmalloc((t->n_switches + 1) * sizeof *seen);
    int error = 0;

    for (size_t i = 0; i < t->n_switches; i++) {
        flows_set_init(&sets[i]);
    }
    southbound_found_substreams(sb, sets, seen);
    for (size_t i = 0; i < t->n_switches && !error; i++) {
        if (!seen[i]) {
            snprintf(err, err_len, "switch %s has not connected",
                     t->switches[i].name);
            error = ENOENT;
        }
    }
    for (size_t i = 0; i < n && !error; i++) {
        size_t *path = links + i * t->n_links;

        error = flowpaths_trace(t, sets, link_up, &routes[i], path,
                                t->n_links, &routes[i].n_links, err,
                                err_len);
        routes[i].links = path;
    }
    if (!error && extra) {
        *extra = flowpaths_count_extra(t, sets, routes, n);
    }
    for (size_t i = 0; i < t->n_switches; i++) {
        flows_set_destroy(&sets[i]);
    }
    free(sets);
    free(seen);
    return error;
}
