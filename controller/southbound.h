/* southbound: the interface between the controller's planning side and its
 * OpenFlow 1.3 module.
 *
 * NOTE FOR THE OPENFLOW MODULE (branch `openflow`), from the controller
 * branch: this is the interface controller/main.c calls. The OpenFlow module
 * implements the three functions southbound_start, _set_desired_flows and
 * _stop (sb_flow_set_* live in controller/flows.c) on its own thread with libopenvswitch's poll loop
 * and reports events back through the ctlq it is given (controller/ctlq.h,
 * implemented on the controller branch). controller/southbound_stub.c holds
 * placeholders that make the controller link and run without OpenFlow
 * (loopback topologies); delete it when the real implementation is merged.
 * If the OpenFlow branch already defines its own header, the lead reconciles
 * the two; the semantics below are what the planning side relies on.
 *
 * Threading: southbound_start() spawns the southbound thread and returns;
 * after that, main and southbound share nothing but the two ctlqs. Every
 * function here except southbound_start/_stop only posts a message.
 *
 * Desired state: the controller always sends the COMPLETE desired flow set
 * (all switches) with an increasing generation. The southbound keeps it as
 * the desired state, diffs it against what it installed on each switch,
 * applies the difference atomically per switch (OpenFlow bundles where the
 * switch supports them; add new flows before deleting old ones otherwise)
 * and re-applies it after a switch reconnects. Flows it installs carry
 * the cookie SB_COOKIE so that flows of others are left alone; the table-miss
 * flow (priority 0) is the southbound's own business.
 *
 * Events (southbound -> main, see ctlq.h): CTLQ_SWITCH_UP/DOWN,
 * CTLQ_PORT_STATS every stats interval per switch (cumulative counters, the
 * controller turns them into rates), CTLQ_PORT_STATUS on OFPT_PORT_STATUS
 * (link down/up: the controller re-routes), CTLQ_FLOWS_INSTALLED after a
 * switch confirmed a generation. */
#ifndef ET_SOUTHBOUND_H
#define ET_SOUTHBOUND_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctlq;

/* Cookie on every flow the controller installs. */
#define SB_COOKIE 0x4554524e00000000ull   /* "ETRN" in the high word */

/* Flow priorities used by the planner. */
#define SB_PRIO_BASE      100   /* destination-based ARP/IP connectivity */
#define SB_PRIO_SUBSTREAM 1000  /* per-sub-stream exact-match flows */

/* One flow entry in table 0 of switch 'dpid'. A match field that is 0 is
 * wildcarded. Addresses are IPv4 in host byte order. Action: output to
 * 'out_port' (an OpenFlow port number), nothing else.
 *
 *   eth_type 0x0806 (ARP): 'nw_dst' matches arp_tpa.
 *   eth_type 0x0800 (IPv4): nw_src/nw_dst; ip_proto 6 with tp_src/tp_dst
 *   matches TCP ports. */
struct sb_flow {
    uint64_t dpid;
    uint16_t priority;
    uint16_t eth_type;
    uint32_t in_port;
    uint32_t nw_src;
    uint32_t nw_dst;
    uint8_t ip_proto;
    uint16_t tp_src;
    uint16_t tp_dst;
    uint32_t out_port;
};

/* The complete desired flow set, all switches, sorted by dpid (so a switch's
 * flows are one contiguous run). */
struct sb_flow_set {
    uint64_t generation;
    size_t n, cap;
    struct sb_flow *flows;
};

/* Switch connected (handshake done) or lost. */
struct sb_switch_event {
    uint64_t dpid;
    uint32_t n_ports;       /* SWITCH_UP: ports reported in features/desc */
};

/* Cumulative counters of one port, as in OFPMP_PORT_STATS. */
struct sb_port_stats {
    uint32_t port_no;
    uint64_t rx_packets, tx_packets;
    uint64_t rx_bytes, tx_bytes;
    uint64_t rx_dropped, tx_dropped;
};

/* One port-stats reply of one switch. 'time_s' is the monotonic time (s)
 * at which the reply arrived. */
struct sb_port_stats_batch {
    uint64_t dpid;
    double time_s;
    size_t n;
    struct sb_port_stats *ports;     /* owned by the batch */
};

/* A port's link went up or down (OFPPS_LINK_DOWN / OFPPC_PORT_DOWN), or it
 * was deleted (reported as down). */
struct sb_port_status {
    uint64_t dpid;
    uint32_t port_no;
    bool up;
};

struct sb_flows_installed {
    uint64_t dpid;
    uint64_t generation;
    uint32_t n_flows;        /* flows of this switch in that generation */
    int error;               /* 0, or an errno / OpenFlow error summary */
};

/* Southbound configuration. */
struct sb_config {
    const char *listen;      /* e.g. "ptcp:6653" (vconn passive name) */
    double stats_interval_s; /* port-stats polling period, e.g. 1.0 */
    struct ctlq *to_ctl;     /* events go here; owned by the caller */
};

struct southbound;

/* Starts the OpenFlow thread listening on cfg->listen. On success stores the
 * handle in '*sbp' and returns 0; otherwise returns a positive errno and
 * logs why. 'cfg->to_ctl' must outlive the southbound. */
int southbound_start(const struct sb_config *cfg, struct southbound **sbp);

/* Replaces the desired flow set with 'set' (ownership passes to the
 * southbound). Thread-safe, non-blocking. Returns 0 or a positive errno. */
int southbound_set_desired_flows(struct southbound *sb,
                                 struct sb_flow_set *set);

/* Stops the thread, closes the connections and frees 'sb'. Accepts NULL.
 * Installed flows stay on the switches. */
void southbound_stop(struct southbound *sb);

/* Flow-set helpers (plain data; implemented with the planner). */
struct sb_flow_set *sb_flow_set_create(uint64_t generation);
void sb_flow_set_add(struct sb_flow_set *set, const struct sb_flow *flow);
void sb_flow_set_sort(struct sb_flow_set *set);   /* by dpid, then match */
void sb_flow_set_destroy(struct sb_flow_set *set);

#endif /* ET_SOUTHBOUND_H */
