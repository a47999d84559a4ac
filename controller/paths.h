/* paths: multipath routing between agents.
 *
 * A pgraph is the directed graph the routing works on, built from the
 * topology and the link state: every up link gives two directed edges, each
 * with its own residual capacity (a down link's edges are kept, marked down). The edge metric combines delay and load:
 *
 *     cost(e) = delay_ms(e) + ref_bits / residual_bps(e) * 1000   [ms]
 *
 * i.e. propagation delay plus the time a reference chunk ('ref_bits',
 * default 1 Mbit) needs on what is left of the link, so a loaded link is
 * "longer". The residual in the cost is floored at 1% of capacity, so a
 * full link is long, not infinite.
 *
 * paths_k_shortest() is Yen's algorithm (k loopless paths in cost order);
 * with 'edge_disjoint' it instead takes successive shortest paths that share
 * no switch-to-switch link (agent access links are necessarily shared).
 *
 * Two splits turn a path set into weights (each sums to 1):
 * - paths_split_waterfill(): progressive filling ("water-filling") of the
 *   residual capacities: all paths grow at the same rate until an edge is
 *   full; paths through it freeze; the rest keep growing. Shared edges are
 *   accounted for. Weights are the final rates, normalised.
 * - paths_split_delay_equal(): the multipath QoS model of Lemeshko et al.:
 *   every path is an M/M/1 queue plus propagation delay,
 *       T_i(x_i) = d_i + 1 / (mu_i - x_i),
 *   and the demand is split so that every used path has the same delay
 *   T and every unused path has T_i(0) >= T. Solved by bisection on T. */
#ifndef ET_PATHS_H
#define ET_PATHS_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct topology;
struct linkstate;

struct pgraph_edge {
    int from, to;              /* node ids */
    int link;                  /* topology link index */
    int dir;                   /* 0: link a->b, 1: b->a */
    bool access;               /* agent attachment link */
    bool up;                   /* false: the link is down, never used */
    double delay_ms;
    double capacity_mbps;
    double residual_mbps;      /* 0: unusable (down or full) */
    double cost;               /* metric above */
};

/* Compressed adjacency: the edges leaving node v are
 * edges[first[v] .. first[v+1]-1]. */
struct pgraph {
    size_t n_nodes, n_edges;
    size_t n_switches;         /* nodes below this are switches */
    size_t n_links;
    size_t *first;             /* n_nodes + 1 */
    struct pgraph_edge *edges;
    int *link_edge;            /* [2 * link + dir] -> edge id */
    double ref_bits;
    /* Scratch for Dijkstra, reused across calls (single-threaded). */
    double *dist;
    int *prev_edge;
    uint8_t *banned_node;
    uint8_t *banned_edge;
    int *heap, *heap_pos;
};

/* Builds 'g' from 'topo' and the link state 'ls' (NULL: idle links).
 * 'ref_bits' <= 0 selects 1e6. Returns 0 or ENOMEM. */
int pgraph_build(struct pgraph *g, const struct topology *topo,
                 const struct linkstate *ls, double ref_bits);
void pgraph_destroy(struct pgraph *g);

/* Recomputes the cost of edge 'e' from its residual capacity. */
void pgraph_edge_recost(const struct pgraph *g, struct pgraph_edge *e);

/* Subtracts 'mbps' from the residual of every edge of 'p' (floor 0), for
 * routing one demand after another. */
struct path;
void pgraph_consume(struct pgraph *g, const struct path *p, double mbps);

/* A path: edge ids into the pgraph, in order from source to destination. */
struct path {
    size_t n_edges;
    int *edges;                /* owned */
    double cost;               /* sum of edge costs */
    double delay_ms;           /* sum of edge delays */
    double bottleneck_mbps;    /* min residual along the path */
};

void path_destroy(struct path *p);        /* frees p->edges; accepts NULL */
void path_copy(struct path *dst, const struct path *src);
bool path_equal(const struct path *a, const struct path *b);

/* Shortest path from 'src' to 'dst' (node ids). Returns 0 and fills 'out'
 * or ENOENT if 'dst' is unreachable. */
int paths_shortest(struct pgraph *g, int src, int dst, struct path *out);

/* Up to 'k' paths from 'src' to 'dst' into 'out' (caller array of 'k');
 * returns the number found (0 if unreachable). */
size_t paths_k_shortest(struct pgraph *g, int src, int dst, size_t k,
                        bool edge_disjoint, struct path *out);

/* Widest paths (maximum bottleneck residual) from agent node 'src' to
 * every agent node: fills 'rate_mbps[v]' (0 if unreachable) and
 * 'delay_ms[v]' along the chosen path; arrays of g->n_nodes. Switch nodes
 * not settled before the last agent keep 0 (the search stops there). Used to estimate agent-to-agent rates
 * for placement without routing every pair. */
void paths_widest(struct pgraph *g, int src, double *rate_mbps,
                  double *delay_ms);

/* Water-filling split over 'n' paths of 'g'; 'weights' gets n values
 * summing to 1 (equal weights if no path has capacity). Returns the total
 * rate of the fill in Mbit/s. */
double paths_split_waterfill(const struct pgraph *g, const struct path *paths,
                             size_t n, double *weights);

/* Delay-equalising split of 'demand_mbps' over 'n' paths with residual
 * capacities 'cap_mbps' and propagation delays 'delay_s'; 'pkt_bits' is the
 * mean packet (chunk) size of the M/M/1 model. Fills 'weights' (summing to
 * 1) and the common delay in '*t_s' (may be NULL). Returns 0, or ERANGE if
 * the demand is not below the total capacity (weights are then proportional
 * to capacity and '*t_s' is infinity). */
int paths_split_delay_equal(const double *cap_mbps, const double *delay_s,
                            size_t n, double demand_mbps, double pkt_bits,
                            double *weights, double *t_s);

#endif /* ET_PATHS_H */
