/* Flowpaths: a sub-stream's path read back from the flows on the switches.
 *
 * The inverse of flows_compute() for one route: starting at the source
 * host's switch, the forward flow of the route's 5-tuple (entering on the
 * host's port) says where it leaves; a switch-to-switch link leads to the
 * next switch, entered on the link's port there, and so on until a flow
 * outputs on the destination host's port.  At every switch the reverse
 * flow (ACKs) must undo the forward one and both must carry the route's
 * cookie.  A restarted controller uses it to take over the paths its
 * predecessor installed (docs/openflow.md, *Reconnection*) instead of
 * routing the run afresh, which would move sub-streams a re-plan had
 * moved. */
#ifndef ET_FLOWPATHS_H
#define ET_FLOWPATHS_H 1

#include <stdbool.h>
#include <stddef.h>

#include "flows.h"
#include "southbound.h"

/* Traces 'route' (id, hosts, protocol and ports; its 'links' are ignored)
 * through 'sets' (the flows found on each switch of 'topo', one set per
 * switch).  'link_up' (one per link, or NULL: all up) rejects a path over
 * a link that is down.  On success stores the path's southbound link
 * indexes in 'links' (room for 'max') and their number in '*n'.  Returns
 * 0, or, with a message naming the switch and what is wrong in 'err':
 *   ENOENT   a flow of the path (forward or reverse) is missing;
 *   EINVAL   a flow carries another cookie, outputs nowhere the topology
 *            knows, or its reverse flow does not lead back;
 *   ENETDOWN the path crosses a link that is down;
 *   ELOOP    the flows lead round in a loop (or longer than 'max'). */
int flowpaths_trace(const struct southbound_topology *topo,
                    const struct flows_set *sets, const bool *link_up,
                    const struct southbound_route *route,
                    size_t *links, size_t max, size_t *n,
                    char *err, size_t err_len);

/* Number of sub-stream flows in 'sets' (one per switch of 'topo') that
 * the 'n' routes (with their links, e.g. as traced) do not install:
 * left-overs that keeping those routes would remove. */
size_t flowpaths_count_extra(const struct southbound_topology *topo,
                             const struct flows_set *sets,
                             const struct southbound_route *routes,
                             size_t n);

#endif /* ET_FLOWPATHS_H */
