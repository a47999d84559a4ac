/* Flowbench: flow installation speed through the controller's own path.
 *
 * Connects to one switch as the southbound does (rconn, OpenFlow 1.3
 * handshake, port descriptions), then installs 'count' exact-match
 * sub-stream flows the way a reconnecting switch is resynchronised: one
 * atomic bundle (delete everything, table-miss, the flows) closed by a
 * barrier.  Kept free of libopenvswitch types so cli/ can call it. */
#ifndef ET_FLOWBENCH_H
#define ET_FLOWBENCH_H 1

#include <stdbool.h>
#include <stddef.h>

struct flowbench_result {
    size_t n_flows;             /* Flows installed (excluding table-miss). */
    size_t n_mods;              /* Flow_mods sent (delete-all, table-miss,
                                 * the flows). */
    double connect_ms;          /* Connect, handshake, port descriptions. */
    double build_ms;            /* Building the desired flow set. */
    double install_ms;          /* First flow_mod sent -> last barrier. */
    double total_ms;            /* All of the above. */
    double modify_ms;           /* With 'modify': every flow re-pointed
                                 * (one bundle of modifies + barrier). */
};

/* Installs 'count' flows into the switch at vconn 'target' ("unix:PATH",
 * "tcp:IP:PORT"), in one bundle if 'bundles', otherwise as plain flow_mods
 * and a barrier; with 'modify', then changes the output port of all of
 * them.  Gives up after 'timeout_ms'.  Returns 0 or a positive errno
 * (ETIMEDOUT, EPROTO if the switch rejected the flows). */
int flowbench_run(const char *target, size_t count, bool bundles,
                  bool modify, int timeout_ms, struct flowbench_result *);

/* The vconn name of local OVS bridge 'bridge': "unix:$OVS_RUNDIR/NAME.mgmt"
 * (OVS_RUNDIR defaults to /var/run/openvswitch).  A name with a ':' is
 * returned as is.  Caller frees. */
char *flowbench_bridge_target(const char *bridge);

#endif /* ET_FLOWBENCH_H */
