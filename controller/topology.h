/* topology: the network the controller manages, loaded from a JSON file
 * (format in docs/topology.md).
 *
 * Nodes are numbered switches first (0 .. n_switches-1), then agents
 * (n_switches .. n_nodes-1). Links are undirected; an agent's attachment to
 * its switch is a link too (flag access, stored before the file's links), so the graph
 * code sees one uniform list. A topology with no switches is valid: the
 * agents then talk directly (loopback mode, no OpenFlow). */
#ifndef ET_TOPOLOGY_H
#define ET_TOPOLOGY_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct topo_agent {
    char *name;
    char *data_addr;          /* "host:port" where it accepts streams */
    char *mgmt_addr;          /* its management-network address, or NULL */
    uint32_t ip;              /* data_addr's IPv4, host order (0: a name) */
    uint16_t data_port;
    char *mac;                /* optional "aa:bb:..", or NULL */
    int sw;                   /* switch node of attachment, -1 if none */
    uint32_t port;            /* OpenFlow port on that switch */
    double gflops;            /* 0 if unknown (the agent reports it) */
    uint64_t memory_bytes;    /* 0 if unknown */
};

struct topo_switch {
    char *name;
    uint64_t dpid;
};

/* An undirected link. Direction 0 is a->b, direction 1 is b->a. The port on
 * an agent end is 0 (agents are hosts, not switches). */
struct topo_link {
    int a, b;                 /* node ids */
    uint32_t a_port, b_port;
    double capacity_mbps;
    double delay_ms;
    double loss_pct;
    bool access;              /* agent attachment link */
};

struct topology {
    char *name;
    char *mgmt_addr;          /* controller management address, or NULL */
    size_t n_switches, n_agents, n_links;
    struct topo_switch *switches;
    struct topo_agent *agents;
    struct topo_link *links;
};

/* Parses JSON 'text' ('where' names the source in messages). On success
 * returns 0 and stores a new topology in '*topop'. On error returns EINVAL
 * and, if 'err' is nonnull, writes a message naming the item at fault
 * ("links[3]: unknown node 's9'") into 'err' (size 'err_size'). */
int topology_parse(const char *text, const char *where,
                   struct topology **topop, char *err, size_t err_size);

/* Reads and parses file 'path'; errno values as topology_parse() plus the
 * file's own (ENOENT ...). */
int topology_load(const char *path, struct topology **topop,
                  char *err, size_t err_size);

void topology_destroy(struct topology *topo);   /* accepts NULL */

static inline size_t
topology_n_nodes(const struct topology *t)
{
    return t->n_switches + t->n_agents;
}

static inline int
topology_agent_node(const struct topology *t, size_t agent)
{
    return (int) (t->n_switches + agent);
}

/* Returns the node id named 'name' (switch or agent), or -1. */
int topology_find_node(const struct topology *t, const char *name);

/* Returns the agent index named 'name', or -1. */
int topology_find_agent(const struct topology *t, const char *name);

/* Returns the switch index with datapath id 'dpid', or -1. */
int topology_find_switch_dpid(const struct topology *t, uint64_t dpid);

/* Returns the name of node 'node'. */
const char *topology_node_name(const struct topology *t, int node);

/* Returns the link index leaving switch node 'sw' through port 'port' and
 * stores the direction of travel out of that port (0: a->b, 1: b->a) in
 * '*dir'; -1 if no link uses that port. */
int topology_link_at_port(const struct topology *t, int sw, uint32_t port,
                          int *dir);

/* Splits "host:port"; the host must be an IPv4 literal or a name. Returns 0
 * or EINVAL. '*ip' is 0 for a name. */
int topology_parse_hostport(const char *s, uint32_t *ip, uint16_t *port);

#endif /* ET_TOPOLOGY_H */
