/* Sbtopo: the controller's topology and plans in the southbound's terms.
 *
 * The southbound (southbound.h) sees switches, hosts on switch ports and
 * switch-to-switch links.  The controller's topology (topology.h) numbers
 * nodes switches-first, keeps agents' attachments as "access" links, and
 * its plans give paths as topology link indexes from agent to agent.  This
 * module builds the southbound view once and translates paths into
 * southbound routes.
 *
 * Hosts are the agents attached to a switch whose data address is an IPv4
 * literal; other agents have no host (their streams cannot be pinned). */
#ifndef ET_SBTOPO_H
#define ET_SBTOPO_H 1

#include <stddef.h>
#include <stdint.h>

#include "southbound.h"

struct topology;

struct sbtopo {
    struct southbound_topology sb;      /* Points into the arrays below. */
    struct southbound_switch *switches;
    struct southbound_host *hosts;
    struct southbound_link *links;
    size_t *host_of_agent;      /* Topology agent -> host, or SIZE_MAX. */
    size_t *link_of_tlink;      /* Topology link -> southbound link, or
                                 * SIZE_MAX (access links). */
    size_t n_agents, n_tlinks;  /* Of the topology. */
};

/* Builds the southbound view of 'topo', which must outlive it (names are
 * shared).  southbound_create() checks the result. */
void sbtopo_init(struct sbtopo *, const struct topology *topo);
void sbtopo_destroy(struct sbtopo *);     /* Accepts a zeroed one. */

/* Fills 'route' for the TCP sub-stream 'id' from agent 'src' (source port
 * 'src_port') to agent 'dst' ('dst_port') along 'tlinks' (topology link
 * indexes, agent to agent; access links are skipped).  'links_buf' (room
 * for 'n_tlinks' entries) receives the southbound link indexes and must
 * live as long as 'route'.  Returns 0, or EINVAL if an agent has no host
 * (not attached, or not an IPv4 address) or an index is out of range. */
int sbtopo_route(const struct sbtopo *, uint64_t id, size_t src, size_t dst,
                 uint16_t src_port, uint16_t dst_port,
                 const int *tlinks, size_t n_tlinks, size_t *links_buf,
                 struct southbound_route *route);

#endif /* ET_SBTOPO_H */
