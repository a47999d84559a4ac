/* bench_agents: N simulated agents registering with a management server
 * and streaming metrics, as background load for bench-flows. */
#ifndef ET_CLI_BENCH_AGENTS_H
#define ET_CLI_BENCH_AGENTS_H 1

#include <stddef.h>

struct bench_agents;

/* Starts the server thread and N agent-sim processes; returns once all
 * registered (0) or an errno with a message. *bp is set even on error
 * (pass it to bench_agents_stop()). */
int bench_agents_start(size_t n, struct bench_agents **bp, char *err,
                       size_t err_size);
/* Metrics frames received so far. */
size_t bench_agents_metrics(const struct bench_agents *b);
void bench_agents_stop(struct bench_agents *b);   /* accepts NULL */

#endif
