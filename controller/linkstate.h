/* linkstate: what the controller knows about each link right now.
 *
 * Per link: capacity (from the topology), up/down, and per direction the
 * measured rate, turned into utilisation and residual capacity. The OpenFlow
 * module's port statistics feed it (linkstate_feed_port: cumulative byte
 * counters of one switch port with the time they were read; the rate is the
 * counter difference over the time difference, smoothed), its port-status
 * events set links up or down (linkstate_set_port_up).
 *
 * Which counter measures which direction: a switch port's tx_bytes is the
 * traffic leaving the switch over that link. Switch-to-switch links are
 * measured in each direction by the tx counter of the sending end. An agent's
 * access link has one switch port only: tx measures switch->agent, rx
 * measures agent->switch.
 *
 * Re-planning: linkstate_mark_planned() snapshots the state a plan was made
 * from; linkstate_changed() says whether the state has since moved by more
 * than a threshold (a link went up/down, or some residual capacity changed
 * by more than a fraction of the link's capacity). Single-threaded: lives on
 * the controller's main thread. */
#ifndef ET_LINKSTATE_H
#define ET_LINKSTATE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct topology;

struct linkstate_dir {
    double rate_mbps;          /* smoothed measured rate */
    uint64_t last_bytes;       /* last cumulative counter */
    double last_time_s;
    bool have_sample;
};

struct linkstate_link {
    bool up;
    double capacity_mbps;
    struct linkstate_dir dir[2];   /* 0: a->b, 1: b->a (topology.h) */
};

struct linkstate_port {
    uint64_t dpid;
    uint32_t port_no;
    int link, dir;             /* dir: direction out of that port */
};

struct linkstate {
    const struct topology *topo;   /* not owned; outlives this */
    size_t n_links;
    struct linkstate_link *links;
    double ewma;                   /* weight of the newest rate, (0,1] */
    uint64_t samples;              /* port samples fed so far */
    /* The controller's own planned load per direction (2 per link): our
     * streams are re-routed from scratch, so they must not count as
     * background load, or a stream would chase itself between paths. */
    double *own_mbps;
    /* Port index: sorted (dpid, port) -> link and direction. */
    size_t n_ports;
    struct linkstate_port *ports;
    /* Snapshot taken by linkstate_mark_planned(). */
    double *planned_residual;      /* 2 per link */
    bool *planned_up;
};

struct linkstate *linkstate_create(const struct topology *topo);
void linkstate_destroy(struct linkstate *ls);   /* accepts NULL */

/* Feeds the cumulative counters of port 'port_no' of switch 'dpid' read at
 * monotonic time 'time_s'. A counter that went backwards (switch restart)
 * restarts the measurement. Returns 0, or ENOENT if no link uses that port
 * (the sample is ignored). */
int linkstate_feed_port(struct linkstate *ls, uint64_t dpid, uint32_t port_no,
                        uint64_t tx_bytes, uint64_t rx_bytes, double time_s);

/* Sets the link at ('dpid', 'port_no') up or down. Returns 0 if the state
 * changed, EALREADY if it did not, ENOENT if no link uses that port. */
int linkstate_set_port_up(struct linkstate *ls, uint64_t dpid,
                          uint32_t port_no, bool up);

/* Directly sets link 'link' up or down (tests, emulation, HTTP). */
void linkstate_set_link_up(struct linkstate *ls, size_t link, bool up);

/* Overrides the measured rate of one direction (tests, benchmarks). */
void linkstate_set_rate(struct linkstate *ls, size_t link, int dir,
                        double rate_mbps);

/* Utilisation of one direction in [0, 1]. */
double linkstate_utilisation(const struct linkstate *ls, size_t link, int dir);

/* Residual capacity of one direction in Mbit/s for planning: capacity
 * minus the background load (measured rate minus the controller's own
 * planned load on it, see linkstate_add_own), never below 0; 0 if the link
 * is down. */
double linkstate_residual_mbps(const struct linkstate *ls, size_t link,
                               int dir);

/* Own planned load: clear all, or add 'mbps' to one direction. */
void linkstate_clear_own(struct linkstate *ls);
void linkstate_add_own(struct linkstate *ls, size_t link, int dir,
                       double mbps);

/* Counts all the load measured now as the controller's own (no background
 * left): a restarted controller adopting a run whose streams kept flowing
 * cannot tell that load from other traffic, and must not route the run
 * away from its own paths because of it. */
void linkstate_own_all(struct linkstate *ls);

/* On every direction that carries some of the controller's own planned
 * load, counts all the load measured there as its own. For choosing a new
 * placement: the run's streams are TCP and take what their links offer,
 * often more than the plan's estimate of them, and that surplus is not
 * background a new placement must avoid (counted as such, it left the
 * re-placement no capacity on the run's own links: a transfer rate of 0).
 * Load on directions the run does not use stays background. */
void linkstate_own_measured(struct linkstate *ls);

/* Snapshot for linkstate_changed(). */
void linkstate_mark_planned(struct linkstate *ls);

/* True if a link changed up/down since the snapshot, or if some direction's
 * residual moved by more than 'threshold' (fraction of capacity). */
bool linkstate_changed(const struct linkstate *ls, double threshold);

#endif /* ET_LINKSTATE_H */
