/* policy: the registry, the built-in policies and plugin loading. */
#include "policy.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Paths whose water-filling weight is below this are dropped (a sub-stream
 * that carries almost nothing is not worth a connection). */
#define MIN_WEIGHT 0.02

struct policy_registry {
    size_t n_placements, n_routings, n_handles;
    const struct policy_placement *placements[64];
    const struct policy_routing *routings[64];
    void *handles[16];
};

void
routing_result_clear(struct routing_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        path_destroy(&r->paths[i]);
    }
    memset(r, 0, sizeof *r);
}

/* ---- built-in placement policies ---------------------------------------- */

static int
place_dp(const struct placement_problem *p, struct placement *out, void *aux)
{
    return placement_bottleneck_dp(p, out);
}

static int
place_equal(const struct placement_problem *p, struct placement *out,
            void *aux)
{
    return placement_equal(p, out);
}

static int
place_round_robin(const struct placement_problem *p, struct placement *out,
                  void *aux)
{
    return placement_round_robin(p, out);
}

static int
place_single(const struct placement_problem *p, struct placement *out,
             void *aux)
{
    return placement_single(p, out);
}

static const struct policy_placement builtin_placements[] = {
    {"bottleneck-dp", "minimise the slowest stage (compute or transfer) "
     "by DP over the block chain, within memory", place_dp, NULL},
    {"equal", "equal block counts on the first N agents of the network "
     "chain order", place_equal, NULL},
    {"round-robin", "equal block counts on agents in topology order "
     "(network-unaware)", place_round_robin, NULL},
    {"single", "every block on the source agent", place_single, NULL},
};

/* ---- built-in routing policies ------------------------------------------ */

/* Drops paths with tiny weights and renormalises. */
static void
prune_small(struct routing_result *r)
{
    size_t k = 0;
    double sum = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->weights[i] >= MIN_WEIGHT || (k == 0 && i == r->n - 1)) {
            r->paths[k] = r->paths[i];
            r->weights[k] = r->weights[i];
            sum += r->weights[k++];
        } else {
            path_destroy(&r->paths[i]);
        }
    }
    r->n = k;
    for (size_t i = 0; i < k; i++) {
        r->weights[i] = sum > 0 ? r->weights[i] / sum : 1.0 / k;
    }
}

static size_t
clamp_k(size_t k)
{
    return k < 1 ? 1 : k > POLICY_MAX_PATHS ? POLICY_MAX_PATHS : k;
}

static int
route_shortest(const struct routing_request *req, struct routing_result *out,
               void *aux)
{
    memset(out, 0, sizeof *out);
    if (paths_shortest(req->g, req->src, req->dst, &out->paths[0])) {
        return ENOENT;
    }
    out->n = 1;
    out->weights[0] = 1;
    return 0;
}

static int
route_ksp_waterfill(const struct routing_request *req,
                    struct routing_result *out, void *aux)
{
    memset(out, 0, sizeof *out);
    out->n = paths_k_shortest(req->g, req->src, req->dst, clamp_k(req->k),
                              req->edge_disjoint, out->paths);
    if (!out->n) {
        return ENOENT;
    }
    paths_split_waterfill(req->g, out->paths, out->n, out->weights);
    prune_small(out);
    return 0;
}

static int
route_ksp_delay_equal(const struct routing_request *req,
                      struct routing_result *out, void *aux)
{
    memset(out, 0, sizeof *out);
    out->n = paths_k_shortest(req->g, req->src, req->dst, clamp_k(req->k),
                              req->edge_disjoint, out->paths);
    if (!out->n) {
        return ENOENT;
    }
    double cap[POLICY_MAX_PATHS], delay[POLICY_MAX_PATHS];
    for (size_t i = 0; i < out->n; i++) {
        cap[i] = out->paths[i].bottleneck_mbps;
        delay[i] = out->paths[i].delay_ms / 1e3;
    }
    paths_split_delay_equal(cap, delay, out->n, req->demand_mbps,
                            req->pkt_bits > 0 ? req->pkt_bits : 1e6,
                            out->weights, NULL);
    prune_small(out);
    return 0;
}

static const struct policy_routing builtin_routings[] = {
    {"ksp-waterfill", "k shortest paths (Yen) on delay+load, split by "
     "water-filling of residual capacity", route_ksp_waterfill, NULL},
    {"ksp-delay-equal", "k shortest paths, split so every used path has the "
     "same M/M/1 delay (Lemeshko et al.)", route_ksp_delay_equal, NULL},
    {"shortest", "one shortest path on delay+load", route_shortest, NULL},
};

/* ---- registry ------------------------------------------------------------ */

static int
registry_add_placement(struct policy_registry *reg,
                       const struct policy_placement *p)
{
    if (!p || !p->name || !p->place) {
        return EINVAL;
    }
    if (policy_find_placement(reg, p->name)) {
        return EEXIST;
    }
    if (reg->n_placements == sizeof reg->placements / sizeof *reg->placements) {
        return ENOSPC;
    }
    reg->placements[reg->n_placements++] = p;
    return 0;
}

static int
registry_add_routing(struct policy_registry *reg,
                     const struct policy_routing *r)
{
    if (!r || !r->name || !r->route) {
        return EINVAL;
    }
    if (policy_find_routing(reg, r->name)) {
        return EEXIST;
    }
    if (reg->n_routings == sizeof reg->routings / sizeof *reg->routings) {
        return ENOSPC;
    }
    reg->routings[reg->n_routings++] = r;
    return 0;
}

static void
host_log(int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    et_log((enum et_log_level) level, "plugin: %s", buf);
}

static const struct policy_host host = {
    .api_version = POLICY_API_VERSION,
    .add_placement = registry_add_placement,
    .add_routing = registry_add_routing,
    .shortest = paths_shortest,
    .k_shortest = paths_k_shortest,
    .split_waterfill = paths_split_waterfill,
    .split_delay_equal = paths_split_delay_equal,
    .placement_evaluate = placement_evaluate,
    .log = host_log,
};

struct policy_registry *
policy_registry_create(void)
{
    struct policy_registry *reg = calloc(1, sizeof *reg);
    if (!reg) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof builtin_placements
                           / sizeof *builtin_placements; i++) {
        registry_add_placement(reg, &builtin_placements[i]);
    }
    for (size_t i = 0; i < sizeof builtin_routings
                           / sizeof *builtin_routings; i++) {
        registry_add_routing(reg, &builtin_routings[i]);
    }
    return reg;
}

void
policy_registry_destroy(struct policy_registry *reg)
{
    if (!reg) {
        return;
    }
    for (size_t i = 0; i < reg->n_handles; i++) {
        dlclose(reg->handles[i]);
    }
    free(reg);
}

int
policy_load_plugin(struct policy_registry *reg, const char *path, char *err,
                   size_t err_size)
{
    if (reg->n_handles == sizeof reg->handles / sizeof *reg->handles) {
        snprintf(err, err_size, "%s: too many plugins", path);
        return ENOSPC;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, err_size, "%s: cannot load: %s", path, dlerror());
        return ENOENT;
    }
    policy_plugin_init_fn *init;
    *(void **) &init = dlsym(h, POLICY_PLUGIN_SYMBOL);
    if (!init) {
        snprintf(err, err_size, "%s: no symbol %s (not an edgetrain policy "
                 "plugin)", path, POLICY_PLUGIN_SYMBOL);
        dlclose(h);
        return EINVAL;
    }
    /* Register into a scratch copy so a failing plugin adds nothing. */
    struct policy_registry scratch = *reg;
    int e = init(&scratch, &host);
    if (e) {
        snprintf(err, err_size, "%s: plugin init failed: %s", path,
                 e == EEXIST ? "a policy name is already taken"
                 : e == EPROTO ? "plugin API version mismatch"
                 : strerror(e));
        dlclose(h);
        return e;
    }
    size_t added = (scratch.n_placements - reg->n_placements)
                   + (scratch.n_routings - reg->n_routings);
    scratch.handles[scratch.n_handles++] = h;
    *reg = scratch;
    ET_INFO("policy: loaded %s (%zu policies)", path, added);
    return 0;
}

const struct policy_placement *
policy_find_placement(const struct policy_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_placements; i++) {
        if (!strcmp(reg->placements[i]->name, name)) {
            return reg->placements[i];
        }
    }
    return NULL;
}

const struct policy_routing *
policy_find_routing(const struct policy_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_routings; i++) {
        if (!strcmp(reg->routings[i]->name, name)) {
            return reg->routings[i];
        }
    }
    return NULL;
}

void
policy_list(const struct policy_registry *reg, bool routing, char *buf,
            size_t size)
{
    size_t n = 0, count = routing ? reg->n_routings : reg->n_placements;
    buf[0] = '\0';
    for (size_t i = 0; i < count && n < size; i++) {
        const char *name = routing ? reg->routings[i]->name
                                   : reg->placements[i]->name;
        int w = snprintf(buf + n, size - n, "%s%s", i ? ", " : "", name);
        if (w < 0) {
            break;
        }
        n += (size_t) w;
    }
}
