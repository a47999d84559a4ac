/* placement: which agent trains which contiguous range of blocks.
 *
 * The pipeline runs at the speed of its slowest stage. A stage's time per
 * training step on agent a is
 *
 *   stage_time = max(compute, transfer)
 *   compute    = (train cost of its blocks, FLOPs plus the memory term of
 *                blockcost.h, and head FLOPs) * batch / gflops(a)
 *   transfer   = bytes of its input per step as encoded on the wire /
 *                rate of the path set from the previous stage's agent,
 *                plus the path delay
 *
 * (the transfer of a stage's output is charged to the stage that receives
 * it; the source stage reads local data). Stages overlap (pipelining), so
 * the step time of the whole run is the bottleneck max over stages.
 *
 * placement_bottleneck_dp() minimises that bottleneck subject to each
 * agent's memory by dynamic programming over the block chain: agents are
 * taken in a given chain order (problem.agents[0] is the source agent,
 * which holds the data and must train block 1), each gets a contiguous,
 * possibly empty, range, and
 *
 *   best[i][a] = min over j < i, a' < a of
 *                max(best[j][a'], transfer(a' -> a, out of block j),
 *                    compute(j+1..i on a))
 *
 * is exact for that order (O(B^2 A^2)); placement_chain_order() builds the
 * order greedily (next = the unused agent best reached from the current
 * one). The naive policies: single (everything on the source), equal (N
 * stages of equal block count on the first N agents of the chain order),
 * round-robin (blocks dealt to the agents in topology order, N = min(A, B)
 * equal stages: no network awareness at all). */
#ifndef ET_PLACEMENT_H
#define ET_PLACEMENT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockcost.h"

struct placement_agent {
    const char *name;
    size_t id;                 /* caller's index (topology agent index) */
    double gflops;             /* effective, > 0 */
    double memory_bytes;       /* 0: unlimited */
};

struct placement_problem {
    const struct blockcost *blocks;   /* n_blocks entries, block 1 first */
    size_t n_blocks;
    uint32_t batch;
    double input_bytes;        /* per image of the network input */
    const struct placement_agent *agents;   /* chain order, [0] = source */
    size_t n_agents;
    /* Estimated rate (Mbit/s, 0 = unreachable) and delay (ms) from agent
     * i to agent j, at [i * n_agents + j], indices into 'agents'. */
    const double *rate_mbps;
    const double *delay_ms;
    size_t stages;             /* wanted number of stages; 0: automatic */
    double value_bytes;        /* per activation value on the wire: 4 f32,
                                * 2 f16, 1 int8; 0: 4 */
};

struct placement_stage {
    size_t agent;              /* index into problem.agents */
    uint32_t first_block, last_block;   /* 1-based, inclusive */
    double compute_s;          /* per step */
    double transfer_s;         /* of its input, per step (0 for stage 0) */
    double memory_bytes;
};

struct placement {
    size_t n_stages;
    struct placement_stage *stages;   /* owned */
    double bottleneck_s;       /* max over stages of max(compute, transfer) */
};

/* Each fills 'out' (cleared first) and returns 0, EINVAL on a bad problem,
 * or ENOSPC if no placement fits the agents' memory (or, for 'stages',
 * not enough agents). */
int placement_bottleneck_dp(const struct placement_problem *p,
                            struct placement *out);
int placement_single(const struct placement_problem *p, struct placement *out);
int placement_equal(const struct placement_problem *p, struct placement *out);
int placement_round_robin(const struct placement_problem *p,
                          struct placement *out);

/* Recomputes the times and memory of every stage of 'pl' and its
 * bottleneck. Returns ENOSPC if some stage exceeds its agent's memory. */
int placement_evaluate(const struct placement_problem *p,
                       struct placement *pl);

/* Stage time terms, exposed for tests and the planner. */
double placement_compute_s(const struct placement_problem *p, size_t agent,
                           uint32_t first, uint32_t last);
double placement_transfer_s(const struct placement_problem *p, size_t from,
                            size_t to, uint32_t after_block);
/* Bytes per image of block 'block''s output as encoded on the wire. */
double placement_wire_bytes(const struct placement_problem *p,
                            uint32_t block);

/* Chain order: fills 'order' (n entries, a permutation of 0..n-1 with
 * 'source' first); each next agent is the unused one with the highest
 * rate from the current one (ties: more gflops, then lower index).
 * 'rate_mbps' is n x n as in the problem. */
void placement_chain_order(size_t n, const double *rate_mbps,
                           const double *gflops, size_t source,
                           size_t *order);

void placement_clear(struct placement *pl);   /* frees stages; zeroes */

#endif /* ET_PLACEMENT_H */
