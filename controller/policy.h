/* policy: placement and routing policies, built in or loaded as plugins.
 *
 * A policy is a struct with a name and one function. The controller picks
 * one of each by name (--placement NAME, --routing NAME); --plugin FILE.so
 * adds more. A plugin is a shared object exporting one function,
 *
 *   int edgetrain_policy_plugin_init(struct policy_registry *reg,
 *                                    const struct policy_host *host);
 *
 * which checks host->api_version and calls host->add_placement() and/or
 * host->add_routing() for each policy it brings. The policy structs must
 * live as long as the plugin is loaded (static storage). A plugin needs no
 * symbol of the controller: what it may use (path algorithms, splits, the
 * reference placement, logging) comes through 'host'. docs/plugins.md
 * describes this with an example (controller/plugins/example_policies.c).
 *
 * Policies run on the controller's main thread, one call at a time. */
#ifndef ET_POLICY_H
#define ET_POLICY_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paths.h"
#include "placement.h"

/* 2: struct blockcost gained train_cost, placement_problem value_bytes. */
#define POLICY_API_VERSION 2
#define POLICY_PLUGIN_SYMBOL "edgetrain_policy_plugin_init"
#define POLICY_MAX_PATHS 8

/* A placement policy fills 'out' for 'problem' (placement.h): agents come
 * in chain order with the source first; stages must tile blocks 1..n on
 * distinct agents with agent 0 first. Returns 0 or a positive errno. */
struct policy_placement {
    const char *name;
    const char *description;
    int (*place)(const struct placement_problem *problem,
                 struct placement *out, void *aux);
    void *aux;
};

/* One demand to route: from agent node 'src' to agent node 'dst' of 'g'
 * (whose residuals already account for the demands routed before it). */
struct routing_request {
    struct pgraph *g;
    int src, dst;
    size_t k;                  /* at most this many paths (<= MAX_PATHS) */
    bool edge_disjoint;        /* paths must not share switch links */
    double demand_mbps;        /* expected rate of the stream */
    double pkt_bits;           /* chunk size, for queueing models */
};

/* The answer: 'n' paths (owned, edges allocated with malloc/calloc; the
 * controller frees them with free()) and weights summing to 1. */
struct routing_result {
    size_t n;
    struct path paths[POLICY_MAX_PATHS];
    double weights[POLICY_MAX_PATHS];
};

struct policy_routing {
    const char *name;
    const char *description;
    int (*route)(const struct routing_request *req,
                 struct routing_result *out, void *aux);
    void *aux;
};

struct policy_registry;

/* What the controller offers a plugin. */
struct policy_host {
    uint32_t api_version;      /* POLICY_API_VERSION */
    int (*add_placement)(struct policy_registry *,
                         const struct policy_placement *);
    int (*add_routing)(struct policy_registry *,
                       const struct policy_routing *);
    int (*shortest)(struct pgraph *, int src, int dst, struct path *);
    size_t (*k_shortest)(struct pgraph *, int src, int dst, size_t k,
                         bool edge_disjoint, struct path *out);
    double (*split_waterfill)(const struct pgraph *, const struct path *,
                              size_t n, double *weights);
    int (*split_delay_equal)(const double *cap_mbps, const double *delay_s,
                             size_t n, double demand_mbps, double pkt_bits,
                             double *weights, double *t_s);
    int (*placement_evaluate)(const struct placement_problem *,
                              struct placement *);
    void (*log)(int level, const char *fmt, ...);   /* log.h levels */
};

typedef int policy_plugin_init_fn(struct policy_registry *reg,
                                  const struct policy_host *host);

/* Creates a registry holding the built-in policies:
 *   placement: bottleneck-dp, equal, round-robin, single
 *   routing:   ksp-waterfill, ksp-delay-equal, shortest */
struct policy_registry *policy_registry_create(void);

/* Unloads plugins and frees 'reg'. Accepts NULL. */
void policy_registry_destroy(struct policy_registry *reg);

/* Loads plugin 'path'. Returns 0, or an errno with a message in 'err'
 * (not a shared object, no init symbol, API mismatch, init failed,
 * duplicate policy name). */
int policy_load_plugin(struct policy_registry *reg, const char *path,
                       char *err, size_t err_size);

const struct policy_placement *policy_find_placement(
    const struct policy_registry *reg, const char *name);
const struct policy_routing *policy_find_routing(
    const struct policy_registry *reg, const char *name);

/* Writes the names, comma separated, into 'buf' (for usage messages). */
void policy_list(const struct policy_registry *reg, bool routing, char *buf,
                 size_t size);

/* Frees the paths of 'r' and zeroes it. */
void routing_result_clear(struct routing_result *r);

#endif /* ET_POLICY_H */
