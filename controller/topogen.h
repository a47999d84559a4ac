/* topogen: random connected topologies for benchmarks and tests. */
#ifndef ET_TOPOGEN_H
#define ET_TOPOGEN_H 1

#include <stddef.h>
#include <stdint.h>

struct topology;
struct linkstate;

/* Builds a connected topology of 'n_switches' switches joined by 'n_links'
 * switch-to-switch links (a random spanning tree, then random extra links
 * between distinct pairs), with 'n_agents' agents attached to distinct
 * random switches. Capacities are 100, 1000 or 10000 Mbit/s, delays 0.1 to
 * 5 ms, agents 5-30 GFLOP/s and 1-4 GiB. Deterministic in 'seed'. Returns
 * 0 or EINVAL (n_links < n_switches - 1, more links than pairs, more
 * agents than switches, no switches). */
int topogen_random(size_t n_switches, size_t n_links, size_t n_agents,
                   uint64_t seed, struct topology **topop);

/* Sets every link direction of 'ls' to a random utilisation in [0, max). */
void topogen_random_load(struct linkstate *ls, double max, uint64_t seed);

#endif /* ET_TOPOGEN_H */
