/* Sbtopo: see sbtopo.h. */
#include "sbtopo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "topology.h"

static void *
sbtopo_alloc(size_t n, size_t size)
{
    void *p = calloc(n + 1, size);
    if (!p) {
        abort();                /* Out of memory, as xmalloc would. */
    }
    return p;
}

void
sbtopo_init(struct sbtopo *st, const struct topology *topo)
{
    memset(st, 0, sizeof *st);
    st->n_agents = topo->n_agents;
    st->n_tlinks = topo->n_links;
    st->switches = sbtopo_alloc(topo->n_switches, sizeof *st->switches);
    st->hosts = sbtopo_alloc(topo->n_agents, sizeof *st->hosts);
    st->links = sbtopo_alloc(topo->n_links, sizeof *st->links);
    st->host_of_agent = sbtopo_alloc(topo->n_agents, sizeof(size_t));
    st->link_of_tlink = sbtopo_alloc(topo->n_links, sizeof(size_t));

    for (size_t i = 0; i < topo->n_switches; i++) {
        st->switches[i].name = topo->switches[i].name;
        st->switches[i].dpid = topo->switches[i].dpid;
    }
    size_t n_hosts = 0;
    for (size_t i = 0; i < topo->n_agents; i++) {
        const struct topo_agent *ag = &topo->agents[i];

        st->host_of_agent[i] = SIZE_MAX;
        if (ag->sw < 0) {
            continue;
        }
        if (!ag->ip) {
            ET_WARN("openflow: agent %s: data address %s is not an IPv4 "
                    "address; its traffic cannot be routed", ag->name,
                    ag->data_addr);
            continue;
        }
        struct southbound_host *h = &st->hosts[n_hosts];
        h->name = ag->name;
        h->ip = htonl(ag->ip);
        h->sw = (size_t) ag->sw;
        h->port = ag->port;
        st->host_of_agent[i] = n_hosts++;
    }
    size_t n_links = 0;
    for (size_t i = 0; i < topo->n_links; i++) {
        const struct topo_link *l = &topo->links[i];

        st->link_of_tlink[i] = SIZE_MAX;
        if (l->access || l->a < 0 || l->b < 0
            || (size_t) l->a >= topo->n_switches
            || (size_t) l->b >= topo->n_switches) {
            continue;           /* Not switch-to-switch. */
        }
        struct southbound_link *sl = &st->links[n_links];
        sl->sw[0] = (size_t) l->a;
        sl->port[0] = l->a_port;
        sl->sw[1] = (size_t) l->b;
        sl->port[1] = l->b_port;
        st->link_of_tlink[i] = n_links++;
    }
    st->sb = (struct southbound_topology) {
        st->switches, topo->n_switches, st->hosts, n_hosts, st->links,
        n_links,
    };
}

void
sbtopo_destroy(struct sbtopo *st)
{
    if (st) {
        free(st->switches);
        free(st->hosts);
        free(st->links);
        free(st->host_of_agent);
        free(st->link_of_tlink);
        memset(st, 0, sizeof *st);
    }
}

int
sbtopo_route(const struct sbtopo *st, uint64_t id, size_t src, size_t dst,
             uint16_t src_port, uint16_t dst_port, const int *tlinks,
             size_t n_tlinks, size_t *links_buf,
             struct southbound_route *route)
{
    size_t n = 0;

    memset(route, 0, sizeof *route);
    if (src >= st->n_agents || dst >= st->n_agents
        || st->host_of_agent[src] == SIZE_MAX
        || st->host_of_agent[dst] == SIZE_MAX) {
        return EINVAL;
    }
    for (size_t i = 0; i < n_tlinks; i++) {
        if (tlinks[i] < 0 || (size_t) tlinks[i] >= st->n_tlinks) {
            return EINVAL;
        }
        size_t l = st->link_of_tlink[tlinks[i]];
        if (l != SIZE_MAX) {
            links_buf[n++] = l;
        }
    }
    route->id = id;
    route->src_host = st->host_of_agent[src];
    route->dst_host = st->host_of_agent[dst];
    route->ip_proto = 6;
    route->src_port = src_port;
    route->dst_port = dst_port;
    route->links = links_buf;
    route->n_links = n;
    return 0;
}
