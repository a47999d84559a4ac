/* Ofswitch: one OpenFlow 1.3 connection to one switch.
 *
 * Owns the rconn, runs the handshake (hello by vconn, then features, port
 * descriptions and a dump of the switch's flows, which become 'installed'
 * so that a reconnection changes only what differs), answers echo
 * requests, keeps the switch's port states, polls port statistics on
 * request, and applies flow changes as batches: each batch is one atomic
 * bundle (open, adds, barrier, commit, barrier) whose success moves the
 * 'installed' set to the batch's target.
 * A failed batch leaves nothing half-applied (the bundle is discarded) and
 * marks the switch for a full resynchronisation.
 *
 * Used only on the OpenFlow thread (libopenvswitch's poll loop):
 * ofswitch_run() does work, ofswitch_wait() arranges the wake-ups. */
#ifndef ET_OFSWITCH_H
#define ET_OFSWITCH_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flows.h"

struct ofswitch;
struct vconn;

/* What an ofswitch tells its owner.  Each callback gets 'aux'. */
struct ofswitch_callbacks {
    /* The switch identified itself ('dpid') and listed its ports; it is
     * ready for flows.  Returns false to ignore it (an unknown switch): it
     * then stays connected but gets no flows and reports nothing more. */
    bool (*ready)(void *aux, struct ofswitch *, uint64_t dpid);

    /* The connection dropped; ofswitch_is_ready() is false from now on. */
    void (*disconnected)(void *aux, struct ofswitch *);

    /* Port 'port' is now 'up' (link up and not administratively down) or
     * not ('up' false, also when the port was deleted). */
    void (*port_status)(void *aux, struct ofswitch *, uint32_t port,
                        bool up);

    /* Counters of one port, as of 'time_msec'. */
    void (*port_stats)(void *aux, struct ofswitch *, uint32_t port,
                       uint64_t rx_packets, uint64_t tx_packets,
                       uint64_t rx_bytes, uint64_t tx_bytes,
                       uint64_t rx_dropped, uint64_t tx_dropped,
                       long long int time_msec);

    /* A batch finished: 'error' is 0 (installed now equals the target) or
     * a positive errno (the switch rejected it or the connection broke). */
    void (*batch_done)(void *aux, struct ofswitch *, int error);
};

/* Steps of a synchronisation (see ofswitch_sync()). */
enum ofswitch_step {
    OFSWITCH_ADD,               /* Flows whose key is not installed. */
    OFSWITCH_MODIFY,            /* Installed keys whose action changed. */
    OFSWITCH_DELETE,            /* Installed keys no longer desired. */
    OFSWITCH_REPLACE,           /* Delete everything, add all desired. */
};

/* Wraps an accepted connection; the ofswitch owns 'vconn'. */
struct ofswitch *ofswitch_create_passive(struct vconn *vconn,
                                         const struct ofswitch_callbacks *,
                                         void *aux);
/* Connects to 'target' (a vconn name), reconnecting with backoff. */
struct ofswitch *ofswitch_create_active(const char *target,
                                        const struct ofswitch_callbacks *,
                                        void *aux);
void ofswitch_destroy(struct ofswitch *);

void ofswitch_run(struct ofswitch *);
void ofswitch_wait(struct ofswitch *);

/* False once a passive connection has dropped (destroy it then). */
bool ofswitch_is_alive(const struct ofswitch *);
/* Identified, accepted by the 'ready' callback and connected. */
bool ofswitch_is_ready(const struct ofswitch *);
/* A batch is in flight. */
bool ofswitch_is_busy(const struct ofswitch *);
/* The installed set may differ from what we believe (the flow dump found
 * flows that are not edgetrain's, or a batch failed): the next sync should
 * be OFSWITCH_REPLACE. */
bool ofswitch_needs_resync(const struct ofswitch *);
/* Earliest time_msec() at which a resync after a failure may be tried. */
long long int ofswitch_retry_time(const struct ofswitch *);

uint64_t ofswitch_dpid(const struct ofswitch *);
const char *ofswitch_name(const struct ofswitch *);
const struct flows_set *ofswitch_installed(const struct ofswitch *);

/* Port state: 1 up, 0 down, -1 the switch has no such port. */
int ofswitch_port_state(const struct ofswitch *, uint32_t port);

/* Starts a batch that moves the installed flows towards 'desired' by
 * 'step'.  Returns the number of flow_mods sent (0: nothing to do, no
 * batch).  Must not be called while busy or not ready. */
size_t ofswitch_sync(struct ofswitch *, const struct flows_set *desired,
                     enum ofswitch_step step);

/* Asks for the counters of every port; replies arrive as port_stats
 * callbacks. */
void ofswitch_request_port_stats(struct ofswitch *);

/* Send without bundles (for switches that reject them); set automatically
 * when a bundle open is refused. */
void ofswitch_set_use_bundles(struct ofswitch *, bool);

#endif /* ET_OFSWITCH_H */
