/* Example edgetrain policy plugin (docs/plugins.md).
 *
 * Build: cc -shared -fPIC -Icontroller -Icommon -o example_policies.so \
 *            controller/plugins/example_policies.c
 * Use:   edgetrain-controller --plugin build/plugins/example_policies.so \
 *            --placement compute-proportional --routing ksp-equal ...
 *
 * Brings two policies:
 * - placement "compute-proportional": one stage per agent in chain order,
 *   block ranges cut so each agent's share of the training FLOPs is
 *   proportional to its gflops (network ignored);
 * - routing "ksp-equal": the k shortest paths with equal weights.
 * It uses the controller only through 'host' and links against nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static const struct policy_host *host;

static int
place_proportional(const struct placement_problem *p, struct placement *out,
                   void *aux)
{
    size_t n = p->n_agents < p->n_blocks ? p->n_agents : p->n_blocks;
    double total_flops = 0, total_gflops = 0;
    for (size_t b = 0; b < p->n_blocks; b++) {
        total_flops += p->blocks[b].train_cost;
    }
    for (size_t a = 0; a < n; a++) {
        total_gflops += p->agents[a].gflops;
    }
    out->stages = calloc(n, sizeof *out->stages);
    if (!out->stages) {
        return ENOMEM;
    }
    out->n_stages = 0;
    uint32_t next = 1;
    double done = 0, target = 0;
    for (size_t a = 0; a < n && next <= p->n_blocks; a++) {
        target += total_flops * p->agents[a].gflops / total_gflops;
        uint32_t last = next;
        done += p->blocks[next - 1].train_cost;
        /* Grow while under target, leaving a block for each later agent. */
        while (last < p->n_blocks && p->n_blocks - last > n - a - 1
               && done + p->blocks[last].train_cost / 2 <= target) {
            done += p->blocks[last].train_cost;
            last++;
        }
        if (a == n - 1) {
            last = (uint32_t) p->n_blocks;
        }
        struct placement_stage *st = &out->stages[out->n_stages++];
        st->agent = a;
        st->first_block = next;
        st->last_block = last;
        next = last + 1;
    }
    return host->placement_evaluate(p, out);
}

static int
route_ksp_equal(const struct routing_request *req, struct routing_result *out,
                void *aux)
{
    memset(out, 0, sizeof *out);
    size_t k = req->k < POLICY_MAX_PATHS ? req->k : POLICY_MAX_PATHS;
    out->n = host->k_shortest(req->g, req->src, req->dst, k ? k : 1,
                              req->edge_disjoint, out->paths);
    for (size_t i = 0; i < out->n; i++) {
        out->weights[i] = 1.0 / out->n;
    }
    return out->n ? 0 : ENOENT;
}

static const struct policy_placement proportional = {
    "compute-proportional",
    "one stage per agent, FLOPs proportional to gflops (example plugin)",
    place_proportional, NULL,
};

static const struct policy_routing ksp_equal = {
    "ksp-equal", "k shortest paths, equal weights (example plugin)",
    route_ksp_equal, NULL,
};

int edgetrain_policy_plugin_init(struct policy_registry *reg,
                                 const struct policy_host *h);

int
edgetrain_policy_plugin_init(struct policy_registry *reg,
                             const struct policy_host *h)
{
    if (h->api_version != POLICY_API_VERSION) {
        return EPROTO;
    }
    host = h;
    int e = h->add_placement(reg, &proportional);
    return e ? e : h->add_routing(reg, &ksp_equal);
}
