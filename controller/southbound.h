/* Southbound: the controller's OpenFlow 1.3 side, on libopenvswitch.
 *
 * A southbound owns one thread that runs libopenvswitch's poll loop: it
 * listens for switches (pvconn), keeps one connection per switch (rconn),
 * installs flows and polls port statistics.  The rest of the controller
 * (the libevent thread) talks to it only through this interface:
 *
 *   - in:  southbound_set_routes() replaces the set of pinned sub-stream
 *          routes; the call copies its input and wakes the OpenFlow thread.
 *   - out: events (switch up/down, port statistics, port status, flows
 *          synced, errors) wait in a queue; southbound_event_fd() becomes
 *          readable while the queue is non-empty and
 *          southbound_next_event() pops one.
 *
 * No other state is shared between the threads.  Base connectivity (ARP
 * and IPv4 between every pair of hosts over shortest paths) is computed by
 * the southbound itself from the topology and the link state it observes,
 * so hosts can reach each other before, and independently of, any route.
 *
 * Every function returns 0 or a positive errno value unless it says
 * otherwise.  Functions are called from one (the controller's) thread. */
#ifndef ET_SOUTHBOUND_H
#define ET_SOUTHBOUND_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The network as the southbound needs it.  Ports are OpenFlow port
 * numbers; addresses are IPv4 in network byte order.  Indexes refer to the
 * arrays of the same southbound_topology. */
struct southbound_switch {
    const char *name;
    uint64_t dpid;              /* Datapath id the switch reports. */
};

struct southbound_host {
    const char *name;
    uint32_t ip;                /* Data-plane IPv4 address, network order. */
    size_t sw;                  /* Switch the host is attached to... */
    uint32_t port;              /* ...on this port. */
};

struct southbound_link {
    size_t sw[2];               /* The two switches... */
    uint32_t port[2];           /* ...and the port on each. */
};

struct southbound_topology {
    const struct southbound_switch *switches;
    size_t n_switches;
    const struct southbound_host *hosts;
    size_t n_hosts;
    const struct southbound_link *links;
    size_t n_links;
};

/* One pinned sub-stream: a transport connection (5-tuple of the forward
 * direction) and the path it takes.  Flows are installed in both
 * directions: the reverse direction (ACKs) follows the same links back. */
struct southbound_route {
    uint64_t id;                /* Caller's id, low 40 bits go in cookies. */
    size_t src_host;            /* Host that opens the connection. */
    size_t dst_host;            /* Host that accepts it. */
    uint8_t ip_proto;           /* 6 (TCP) or 17 (UDP). */
    uint16_t src_port;          /* Transport ports of the forward */
    uint16_t dst_port;          /* direction, host byte order. */
    const size_t *links;        /* Path: link indexes from src_host's switch */
    size_t n_links;             /* to dst_host's switch (0: same switch). */
};

struct southbound_options {
    /* Passive OpenFlow listener, a pvconn name: "ptcp:6653",
     * "ptcp:6653:127.0.0.1", "punix:/path".  NULL: do not listen. */
    const char *listen;

    /* Active connections (vconn names, e.g. "unix:/run/br0.mgmt" or
     * "tcp:10.0.0.1:6653"), reconnected with backoff.  May be empty. */
    const char *const *connect;
    size_t n_connect;

    int stats_interval_ms;      /* Port statistics period; 0: 1000 ms. */
};

enum southbound_event_type {
    SOUTHBOUND_SWITCH_UP,       /* sw connected, identified, resync begun. */
    SOUTHBOUND_SWITCH_DOWN,     /* sw's OpenFlow connection dropped. */
    SOUTHBOUND_PORT_STATS,      /* Counters of sw:port at time_msec. */
    SOUTHBOUND_PORT_STATUS,     /* sw:port went up or down ('up'). */
    SOUTHBOUND_FLOWS_SYNCED,    /* Every connected switch has the flows of
                                 * routes generation 'generation'. */
    SOUTHBOUND_ERROR,           /* A switch rejected flows; 'sw' says which.
                                 * The switch is resynchronised. */
};

struct southbound_event {
    enum southbound_event_type type;
    size_t sw;                  /* Topology switch index. */
    uint64_t dpid;
    uint32_t port;              /* PORT_STATS, PORT_STATUS. */
    bool up;                    /* PORT_STATUS: link usable. */
    uint64_t rx_bytes, tx_bytes;        /* PORT_STATS counters. */
    uint64_t rx_packets, tx_packets;
    uint64_t rx_dropped, tx_dropped;
    long long int time_msec;    /* Monotonic time the event was seen
                                 * (time_msec() of libopenvswitch). */
    uint64_t generation;        /* FLOWS_SYNCED. */
};

struct southbound;
struct flows_set;

/* Starts the OpenFlow thread for 'topo' (deep-copied) with 'options'.
 * Call it while the process has no other threads that use
 * libopenvswitch.  It ignores SIGPIPE and lets libopenvswitch handle
 * SIGTERM, SIGINT, SIGHUP and SIGALRM (exit) unless the caller has
 * installed, or later installs, its own handlers for them.
 * Fails with EINVAL if the topology is inconsistent (bad index, duplicate
 * dpid or port) or with the listener's error (e.g. EADDRINUSE).  On
 * success stores the new southbound in '*sbp'; the caller destroys it. */
int southbound_create(const struct southbound_topology *topo,
                      const struct southbound_options *options,
                      struct southbound **sbp);

/* Stops the thread, closes connections (flows stay on the switches).
 * Accepts NULL. */
void southbound_destroy(struct southbound *);

/* Replaces the whole set of pinned routes with 'routes' (copied).  The
 * OpenFlow thread installs them make-before-break: new flows first, then
 * changed ones, then removed ones, each step an atomic bundle per switch.
 * A route whose path crosses a link that is down is withdrawn until the
 * link comes back (its traffic falls back to base connectivity).  Returns
 * EINVAL, and changes nothing, if a route is inconsistent with the
 * topology (the message says which and why); otherwise stores in
 * '*generation' (if nonnull) the number a later FLOWS_SYNCED event
 * carries. */
int southbound_set_routes(struct southbound *,
                          const struct southbound_route *routes, size_t n,
                          uint64_t *generation);

/* The sub-stream flows each switch had when it connected before the first
 * southbound_set_routes() (a restarted controller that has not yet
 * adopted its run: its predecessor's flows, read from the switch's flow
 * dump), less those using a port that was down then.  Copies them into
 * 'sets' (one initialised flows_set per topology switch; each replaced)
 * and sets 'seen[i]' if switch i has reported.  A switch's flows are in
 * before its SWITCH_UP event is queued. */
void southbound_found_substreams(struct southbound *, struct flows_set *sets,
                                 bool *seen);

/* Traces each of the 'n' 'routes' (id, hosts, protocol and ports as the
 * caller pins them; their 'links' and 'n_links' are outputs) through the
 * sub-stream flows southbound_found_substreams() gives (flowpaths.h):
 * route i's path goes to 'links' + i * L, where L is the topology's
 * number of links ('links' has room for n * L), and routes[i].links and
 * n_links are set to it.  'link_up' (one per link, or NULL) refuses a path
 * over a link that is down.  Stores in '*extra' (if nonnull) how many of
 * those flows no route uses.  Returns 0, or with a message in 'err':
 * ENOENT if a switch has not reported its flows (not connected), else
 * flowpaths_trace()'s error for the first route that fails.  Call from
 * the controller's thread. */
int southbound_trace_found(struct southbound *,
                           struct southbound_route *routes, size_t n,
                           size_t *links, const bool *link_up,
                           size_t *extra, char *err, size_t err_len);

/* A file descriptor that is readable while events are queued (for
 * event_new(..., EV_READ | EV_PERSIST, ...)).  Owned by the southbound. */
int southbound_event_fd(const struct southbound *);

/* Pops the oldest event into '*ev'; returns false if there is none. */
bool southbound_next_event(struct southbound *, struct southbound_event *ev);

/* Returns a short name for 'type' ("port-stats"...). */
const char *southbound_event_type_name(enum southbound_event_type type);

#endif /* ET_SOUTHBOUND_H */
