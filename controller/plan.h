/* plan: one complete decision of the controller, from topology, link state
 * and the agents taking part to a placement of blocks and a set of weighted
 * paths for every stream between consecutive stages.
 *
 * plan_compute():
 *   1. builds the path graph from the topology and the link state;
 *   2. estimates the rate between every pair of agents (widest path, one
 *      Dijkstra per agent) and orders the agents in a chain from the source;
 *   3. runs the placement policy (placement.h) on the block costs;
 *   4. routes each stream s -> s+1 with the routing policy, in pipeline
 *      order, each demand (output bytes per step / bottleneck step time)
 *      taken out of the residual capacity before the next is routed;
 *   5. re-evaluates every transfer with the rate its path set really gets.
 * plan_reroute() repeats 4-5 for the placement it is given (link state
 * changed; placement changes only at epoch boundaries).
 *
 * Without switches (loopback) every stream gets 'loopback_substreams'
 * sub-streams with no hops and equal weights. */
#ifndef ET_PLAN_H
#define ET_PLAN_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockcost.h"
#include "placement.h"
#include "policy.h"

struct topology;
struct linkstate;

/* An agent taking part in the plan. */
struct plan_agent {
    size_t topo;               /* topology agent index */
    double gflops;             /* effective, > 0 */
    double memory_bytes;       /* 0: unlimited */
};

struct plan_options {
    struct blockcost_config model;
    size_t stages;             /* 0: automatic */
    size_t k;                  /* paths per stream (1..POLICY_MAX_PATHS) */
    bool edge_disjoint;
    double ref_bits;           /* metric reference chunk; 0: 1 Mbit */
    double pkt_bits;           /* chunk size for the delay model; 0: 1 Mbit */
    size_t loopback_substreams;   /* 0: 1 */
    double loopback_mbps;      /* agent-to-agent rate without switches */
    double value_bytes;        /* activation encoding on the wire: 4 f32,
                                * 2 f16, 1 int8; 0: 4 */
};

/* One sub-stream: a path through the network and its share. */
struct plan_substream {
    double weight;
    size_t n_links;
    int *links;                /* topology link indexes, source first */
    int *nodes;                /* n_links + 1 node ids (agent ... agent) */
    double delay_ms;
    double bottleneck_mbps;
    /* Set by the controller after a re-route: this sub-stream had a path
     * whose links are all still up (moved for load, not for a failure). */
    bool old_path_up;
};

/* The stream from stage 'from_stage' to the next one. */
struct plan_route {
    size_t from_stage;
    size_t src, dst;           /* topology agent indexes */
    double demand_mbps;
    double rate_mbps;          /* what the path set offers (water-filled) */
    size_t n_sub;
    struct plan_substream sub[POLICY_MAX_PATHS];
};

struct plan {
    struct placement placement;   /* stage.agent indexes 'order' */
    size_t n_order;
    size_t *order;             /* chain position -> topology agent index */
    struct plan_agent *agents; /* chain order, copied */
    struct blockcost blocks[BLOCKCOST_BLOCKS];
    uint32_t batch;
    double input_bytes;
    double value_bytes;        /* on the wire, per activation value */
    size_t n_routes;
    struct plan_route *routes;
    double bottleneck_s;       /* after routing */
    double plan_ms;            /* wall time of the last compute/reroute */
    char placement_policy[48];
    char routing_policy[48];
};

/* Computes a plan for 'agents' (n >= 1; agents[source] holds the data).
 * Returns 0, or an errno with a message in 'err': EINVAL (bad model or
 * options), ENOSPC (no placement fits), ENOENT (two consecutive stages
 * cannot reach each other). 'out' is cleared first. */
int plan_compute(const struct topology *topo, const struct linkstate *ls,
                 const struct plan_agent *agents, size_t n, size_t source,
                 const struct policy_placement *placement,
                 const struct policy_routing *routing,
                 const struct plan_options *opt, struct plan *out,
                 char *err, size_t err_size);

/* Re-routes every stream of 'pl' on the current link state, keeping its
 * placement. On error 'pl' keeps its old routes. */
int plan_reroute(const struct topology *topo, const struct linkstate *ls,
                 const struct policy_routing *routing,
                 const struct plan_options *opt, struct plan *pl,
                 char *err, size_t err_size);

/* Builds a plan around an existing placement (a run the agents were
 * already doing when the controller restarted): stage s is agents[s] with
 * blocks ranges[s][0]..ranges[s][1]. Routes every stream as plan_compute
 * does. The ranges must tile 1..13 in order (EINVAL otherwise). */
int plan_adopt(const struct topology *topo, const struct linkstate *ls,
               const struct plan_agent *agents, const uint32_t (*ranges)[2],
               size_t n, const struct policy_routing *routing,
               const struct plan_options *opt, struct plan *out,
               char *err, size_t err_size);

/* Re-evaluates 'pl' for sub-stream paths and weights its caller set (each
 * route's sub[]: weight, n_links, links, nodes; e.g. a restarted
 * controller keeping the paths its predecessor installed): each
 * sub-stream's delay and bottleneck and each route's rate from the link
 * state, as plan_compute() does for the paths it chooses (streams in
 * pipeline order, each demand taken out of the residual capacity before
 * the next), then the transfer times and the bottleneck.  Returns 0, or
 * EINVAL with a message in 'err' if a path does not lead from its route's
 * source agent to its destination over the topology's links. */
int plan_evaluate(const struct topology *topo, const struct linkstate *ls,
                  const struct plan_options *opt, struct plan *pl,
                  char *err, size_t err_size);

/* Topology agent index of stage 's'. */
size_t plan_stage_agent(const struct plan *pl, size_t s);

/* True if 'a' and 'b' give every stage the same blocks and agent (their
 * routes may differ). */
bool plan_same_placement(const struct plan *a, const struct plan *b);

void plan_clear(struct plan *pl);   /* frees; zeroes; accepts zeroed */

/* Monotonic clock in seconds. */
double plan_now(void);

#endif /* ET_PLAN_H */
