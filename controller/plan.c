/* plan: placement + routing from topology and link state. See plan.h. */
#include "plan.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "linkstate.h"
#include "paths.h"
#include "topology.h"

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        abort();
    }
    return p;
}

double
plan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
routes_free(struct plan_route *routes, size_t n)
{
    for (size_t r = 0; r < n; r++) {
        for (size_t s = 0; s < routes[r].n_sub; s++) {
            free(routes[r].sub[s].links);
            free(routes[r].sub[s].nodes);
        }
    }
    free(routes);
}

void
plan_clear(struct plan *pl)
{
    if (!pl) {
        return;
    }
    placement_clear(&pl->placement);
    free(pl->order);
    free(pl->agents);
    routes_free(pl->routes, pl->n_routes);
    memset(pl, 0, sizeof *pl);
}

size_t
plan_stage_agent(const struct plan *pl, size_t s)
{
    return pl->order[pl->placement.stages[s].agent];
}

bool
plan_same_placement(const struct plan *a, const struct plan *b)
{
    if (a->placement.n_stages != b->placement.n_stages) {
        return false;
    }
    for (size_t s = 0; s < a->placement.n_stages; s++) {
        const struct placement_stage *x = &a->placement.stages[s];
        const struct placement_stage *y = &b->placement.stages[s];
        if (x->first_block != y->first_block || x->last_block != y->last_block
            || plan_stage_agent(a, s) != plan_stage_agent(b, s)) {
            return false;
        }
    }
    return true;
}

/* Bits a stage sends per step (its last block's output for the batch, as
 * encoded on the wire). */
static double
stream_bits(const struct plan *pl, size_t stage)
{
    uint32_t last = pl->placement.stages[stage].last_block;
    return pl->blocks[last - 1].out_bytes * pl->value_bytes / 4 * pl->batch
           * 8;
}

/* Copies a routing result (edge ids of 'g') into topology terms. */
static void
substream_from_path(const struct pgraph *g, const struct path *p,
                    double weight, struct plan_substream *ss)
{
    ss->weight = weight;
    ss->n_links = p->n_edges;
    ss->links = xcalloc(p->n_edges, sizeof *ss->links);
    ss->nodes = xcalloc(p->n_edges + 1, sizeof *ss->nodes);
    for (size_t i = 0; i < p->n_edges; i++) {
        const struct pgraph_edge *e = &g->edges[p->edges[i]];
        ss->links[i] = e->link;
        ss->nodes[i] = e->from;
        ss->nodes[i + 1] = e->to;
    }
    ss->delay_ms = p->delay_ms;
    ss->bottleneck_mbps = p->bottleneck_mbps;
}

static void evaluate_transfers(struct plan *pl);

/* Routes every stream of 'pl' (placement filled) into new routes; on
 * success replaces pl->routes and re-evaluates the transfers. */
static int
route_all(const struct topology *topo, const struct linkstate *ls,
          const struct policy_routing *routing,
          const struct plan_options *opt, struct plan *pl, char *err,
          size_t err_size)
{
    size_t n_routes = pl->placement.n_stages ? pl->placement.n_stages - 1 : 0;
    struct plan_route *routes = xcalloc(n_routes, sizeof *routes);
    double bottleneck = pl->placement.bottleneck_s > 0
                        ? pl->placement.bottleneck_s : 1;
    bool loopback = topo->n_switches == 0;
    struct pgraph g;
    if (!loopback) {
        pgraph_build(&g, topo, ls, opt->ref_bits);
    }
    int e = 0;
    for (size_t r = 0; r < n_routes && !e; r++) {
        struct plan_route *rt = &routes[r];
        rt->from_stage = r;
        rt->src = plan_stage_agent(pl, r);
        rt->dst = plan_stage_agent(pl, r + 1);
        rt->demand_mbps = stream_bits(pl, r) / bottleneck / 1e6;
        if (loopback) {
            size_t n = opt->loopback_substreams ? opt->loopback_substreams : 1;
            n = n > POLICY_MAX_PATHS ? POLICY_MAX_PATHS : n;
            rt->n_sub = n;
            for (size_t s = 0; s < n; s++) {
                rt->sub[s].weight = 1.0 / n;
                rt->sub[s].nodes = xcalloc(2, sizeof *rt->sub[s].nodes);
                rt->sub[s].nodes[0] = topology_agent_node(topo, rt->src);
                rt->sub[s].nodes[1] = topology_agent_node(topo, rt->dst);
                rt->sub[s].bottleneck_mbps = opt->loopback_mbps;
            }
            rt->rate_mbps = opt->loopback_mbps;
            continue;
        }
        struct routing_request req = {
            &g, topology_agent_node(topo, rt->src),
            topology_agent_node(topo, rt->dst),
            opt->k ? opt->k : 3, opt->edge_disjoint, rt->demand_mbps,
            opt->pkt_bits > 0 ? opt->pkt_bits : 1e6,
        };
        struct routing_result res;
        memset(&res, 0, sizeof res);
        e = routing->route(&req, &res, routing->aux);
        if (!e && (!res.n || res.n > POLICY_MAX_PATHS)) {
            e = ENOENT;
        }
        if (e) {
            snprintf(err, err_size, "routing policy %s: no path from %s to "
                     "%s (%s)", routing->name, topo->agents[rt->src].name,
                     topo->agents[rt->dst].name, strerror(e));
            routing_result_clear(&res);
            break;
        }
        double w[POLICY_MAX_PATHS];
        rt->rate_mbps = paths_split_waterfill(&g, res.paths, res.n, w);
        rt->n_sub = res.n;
        for (size_t s = 0; s < res.n; s++) {
            substream_from_path(&g, &res.paths[s], res.weights[s],
                                &rt->sub[s]);
            pgraph_consume(&g, &res.paths[s],
                           res.weights[s] * rt->demand_mbps);
        }
        routing_result_clear(&res);
    }
    if (!loopback) {
        pgraph_destroy(&g);
    }
    if (e) {
        routes_free(routes, n_routes);
        return e;
    }
    routes_free(pl->routes, pl->n_routes);
    pl->routes = routes;
    pl->n_routes = n_routes;
    evaluate_transfers(pl);
    return 0;
}

/* Transfers with the rates the path sets really offer; the bottleneck. */
static void
evaluate_transfers(struct plan *pl)
{
    const struct plan_route *routes = pl->routes;

    pl->bottleneck_s = 0;
    for (size_t s = 0; s < pl->placement.n_stages; s++) {
        struct placement_stage *st = &pl->placement.stages[s];
        if (s) {
            const struct plan_route *rt = &routes[s - 1];
            double min_delay = INFINITY;
            for (size_t k = 0; k < rt->n_sub; k++) {
                min_delay = fmin(min_delay, rt->sub[k].delay_ms);
            }
            st->transfer_s = rt->rate_mbps > 0
                             ? stream_bits(pl, s - 1) / (rt->rate_mbps * 1e6)
                               + min_delay / 1e3
                             : INFINITY;
        }
        pl->bottleneck_s = fmax(pl->bottleneck_s,
                                fmax(st->compute_s, st->transfer_s));
    }
}

int
plan_compute(const struct topology *topo, const struct linkstate *ls,
             const struct plan_agent *agents, size_t n, size_t source,
             const struct policy_placement *placement,
             const struct policy_routing *routing,
             const struct plan_options *opt, struct plan *out, char *err,
             size_t err_size)
{
    double t0 = plan_now();
    plan_clear(out);
    if (!n || source >= n) {
        snprintf(err, err_size, "no agents to plan for");
        return EINVAL;
    }
    if (blockcost_mobilenet_v1(&opt->model, out->blocks)) {
        snprintf(err, err_size, "bad model configuration (alpha %g, input "
                 "%u, classes %u, batch %u)", opt->model.alpha,
                 opt->model.input_size, opt->model.classes, opt->model.batch);
        return EINVAL;
    }
    out->batch = opt->model.batch;
    out->input_bytes = 4.0 * opt->model.input_size * opt->model.input_size
                       * opt->model.in_channels;
    out->value_bytes = opt->value_bytes > 0 ? opt->value_bytes : 4;
    snprintf(out->placement_policy, sizeof out->placement_policy, "%s",
             placement->name);
    snprintf(out->routing_policy, sizeof out->routing_policy, "%s",
             routing->name);

    /* Agent-to-agent rate estimates, in 'agents' order. */
    double *rate = xcalloc(n * n, sizeof *rate);
    double *delay = xcalloc(n * n, sizeof *delay);
    if (topo->n_switches) {
        struct pgraph g;
        pgraph_build(&g, topo, ls, opt->ref_bits);
        double *r = xcalloc(g.n_nodes, sizeof *r);
        double *d = xcalloc(g.n_nodes, sizeof *d);
        for (size_t i = 0; i < n; i++) {
            paths_widest(&g, topology_agent_node(topo, agents[i].topo), r, d);
            for (size_t j = 0; j < n; j++) {
                int v = topology_agent_node(topo, agents[j].topo);
                rate[i * n + j] = i == j ? 0 : r[v];
                delay[i * n + j] = d[v];
            }
        }
        free(r);
        free(d);
        pgraph_destroy(&g);
    } else {
        for (size_t i = 0; i < n * n; i++) {
            rate[i] = i % (n + 1) ? opt->loopback_mbps : 0;
        }
    }

    /* Chain order and the problem in that order. */
    double *gflops = xcalloc(n, sizeof *gflops);
    for (size_t i = 0; i < n; i++) {
        gflops[i] = agents[i].gflops;
    }
    size_t *chain = xcalloc(n, sizeof *chain);
    placement_chain_order(n, rate, gflops, source, chain);
    out->n_order = n;
    out->order = xcalloc(n, sizeof *out->order);
    out->agents = xcalloc(n, sizeof *out->agents);
    struct placement_agent *pa = xcalloc(n, sizeof *pa);
    double *prate = xcalloc(n * n, sizeof *prate);
    double *pdelay = xcalloc(n * n, sizeof *pdelay);
    for (size_t i = 0; i < n; i++) {
        const struct plan_agent *a = &agents[chain[i]];
        out->order[i] = a->topo;
        out->agents[i] = *a;
        pa[i] = (struct placement_agent) {
            topo->agents[a->topo].name, a->topo, a->gflops, a->memory_bytes};
        for (size_t j = 0; j < n; j++) {
            prate[i * n + j] = rate[chain[i] * n + chain[j]];
            pdelay[i * n + j] = delay[chain[i] * n + chain[j]];
        }
    }
    struct placement_problem prob = {
        out->blocks, BLOCKCOST_BLOCKS, out->batch, out->input_bytes, pa, n,
        prate, pdelay, opt->stages, out->value_bytes,
    };
    int e = placement->place(&prob, &out->placement, placement->aux);
    if (!e && !out->placement.n_stages) {
        e = EINVAL;
    }
    if (e) {
        snprintf(err, err_size, "placement policy %s: %s", placement->name,
                 e == ENOSPC ? "no placement fits the agents' memory (or "
                               "too few agents for the stages asked)"
                             : strerror(e));
    } else {
        e = route_all(topo, ls, routing, opt, out, err, err_size);
    }
    free(rate);
    free(delay);
    free(gflops);
    free(chain);
    free(pa);
    free(prate);
    free(pdelay);
    out->plan_ms = (plan_now() - t0) * 1e3;
    return e;
}

int
plan_adopt(const struct topology *topo, const struct linkstate *ls,
           const struct plan_agent *agents, const uint32_t (*ranges)[2],
           size_t n, const struct policy_routing *routing,
           const struct plan_options *opt, struct plan *out, char *err,
           size_t err_size)
{
    double t0 = plan_now();
    plan_clear(out);
    uint32_t next = 1;
    for (size_t s = 0; s < n; s++) {
        if (ranges[s][0] != next || ranges[s][1] < ranges[s][0]
            || ranges[s][1] > BLOCKCOST_BLOCKS) {
            snprintf(err, err_size, "stage %zu: blocks %u-%u do not continue "
                     "the chain at block %u", s, ranges[s][0], ranges[s][1],
                     next);
            return EINVAL;
        }
        next = ranges[s][1] + 1;
    }
    if (!n || next != BLOCKCOST_BLOCKS + 1
        || blockcost_mobilenet_v1(&opt->model, out->blocks)) {
        snprintf(err, err_size, "stages do not cover blocks 1-%d, or bad "
                 "model", BLOCKCOST_BLOCKS);
        return EINVAL;
    }
    out->batch = opt->model.batch;
    out->input_bytes = 4.0 * opt->model.input_size * opt->model.input_size
                       * opt->model.in_channels;
    out->value_bytes = opt->value_bytes > 0 ? opt->value_bytes : 4;
    snprintf(out->placement_policy, sizeof out->placement_policy, "adopted");
    snprintf(out->routing_policy, sizeof out->routing_policy, "%s",
             routing->name);
    out->n_order = n;
    out->order = xcalloc(n, sizeof *out->order);
    out->agents = xcalloc(n, sizeof *out->agents);
    out->placement.n_stages = n;
    out->placement.stages = xcalloc(n, sizeof *out->placement.stages);
    struct placement_agent *pa = xcalloc(n, sizeof *pa);
    for (size_t s = 0; s < n; s++) {
        out->order[s] = agents[s].topo;
        out->agents[s] = agents[s];
        pa[s] = (struct placement_agent) {
            topo->agents[agents[s].topo].name, agents[s].topo,
            agents[s].gflops, agents[s].memory_bytes};
    }
    struct placement_problem prob = {
        out->blocks, BLOCKCOST_BLOCKS, out->batch, out->input_bytes, pa, n,
        NULL, NULL, 0, out->value_bytes,
    };
    for (size_t s = 0; s < n; s++) {
        struct placement_stage *st = &out->placement.stages[s];
        st->agent = s;
        st->first_block = ranges[s][0];
        st->last_block = ranges[s][1];
        st->compute_s = placement_compute_s(&prob, s, st->first_block,
                                            st->last_block);
        st->memory_bytes = blockcost_stage_memory(
            out->blocks, st->first_block, st->last_block, out->batch,
            st->first_block == 1 ? out->input_bytes
                                 : out->blocks[st->first_block - 2].out_bytes);
        out->placement.bottleneck_s = fmax(out->placement.bottleneck_s,
                                           st->compute_s);
    }
    free(pa);
    int e = route_all(topo, ls, routing, opt, out, err, err_size);
    out->plan_ms = (plan_now() - t0) * 1e3;
    return e;
}

int
plan_reroute(const struct topology *topo, const struct linkstate *ls,
             const struct policy_routing *routing,
             const struct plan_options *opt, struct plan *pl, char *err,
             size_t err_size)
{
    double t0 = plan_now();
    int e = route_all(topo, ls, routing, opt, pl, err, err_size);
    pl->plan_ms = (plan_now() - t0) * 1e3;
    return e;
}

/* The edges of 'g' along sub-stream 'ss' of 'rt' into 'p' (its delay and
 * bottleneck from the residuals left in 'g'). */
static int
path_of_substream(const struct topology *topo, const struct pgraph *g,
                  const struct plan_route *rt, size_t k,
                  const struct plan_substream *ss, struct path *p,
                  char *err, size_t err_size)
{
    int at = topology_agent_node(topo, rt->src);

    memset(p, 0, sizeof *p);
    if (!ss->n_links || !ss->links || !ss->nodes || ss->nodes[0] != at) {
        snprintf(err, err_size, "%s -> %s sub-stream %zu: no path from %s",
                 topo->agents[rt->src].name, topo->agents[rt->dst].name, k,
                 topo->agents[rt->src].name);
        return EINVAL;
    }
    p->edges = xcalloc(ss->n_links, sizeof *p->edges);
    p->bottleneck_mbps = INFINITY;
    for (size_t i = 0; i < ss->n_links; i++) {
        int l = ss->links[i];
        const struct topo_link *tl = l >= 0 && (size_t) l < topo->n_links
                                     ? &topo->links[l] : NULL;
        int dir = tl && tl->a == at ? 0 : 1;
        int to = tl ? (dir ? tl->a : tl->b) : -1;
        if (!tl || (dir ? tl->b : tl->a) != at || ss->nodes[i + 1] != to) {
            snprintf(err, err_size, "%s -> %s sub-stream %zu: hop %zu "
                     "(link %d) does not continue the path at node %d",
                     topo->agents[rt->src].name, topo->agents[rt->dst].name,
                     k, i, l, at);
            path_destroy(p);
            return EINVAL;
        }
        const struct pgraph_edge *e = &g->edges[g->link_edge[2 * l + dir]];
        p->edges[p->n_edges++] = g->link_edge[2 * l + dir];
        p->cost += e->cost;
        p->delay_ms += e->delay_ms;
        p->bottleneck_mbps = fmin(p->bottleneck_mbps, e->residual_mbps);
        at = to;
    }
    if (at != topology_agent_node(topo, rt->dst)) {
        snprintf(err, err_size, "%s -> %s sub-stream %zu: the path ends "
                 "elsewhere", topo->agents[rt->src].name,
                 topo->agents[rt->dst].name, k);
        path_destroy(p);
        return EINVAL;
    }
    return 0;
}

int
plan_evaluate(const struct topology *topo, const struct linkstate *ls,
              const struct plan_options *opt, struct plan *pl, char *err,
              size_t err_size)
{
    if (!topo->n_switches) {
        evaluate_transfers(pl);     /* loopback: nothing to measure */
        return 0;
    }
    struct pgraph g;
    pgraph_build(&g, topo, ls, opt->ref_bits);
    int e = 0;
    for (size_t r = 0; r < pl->n_routes && !e; r++) {
        struct plan_route *rt = &pl->routes[r];
        struct path paths[POLICY_MAX_PATHS];
        size_t n = 0;
        for (; n < rt->n_sub && n < POLICY_MAX_PATHS && !e; n++) {
            e = path_of_substream(topo, &g, rt, n, &rt->sub[n], &paths[n],
                                  err, err_size);
        }
        if (!e && !n) {
            snprintf(err, err_size, "%s -> %s: no sub-stream",
                     topo->agents[rt->src].name, topo->agents[rt->dst].name);
            e = EINVAL;
        }
        if (!e) {
            double w[POLICY_MAX_PATHS];
            rt->rate_mbps = paths_split_waterfill(&g, paths, n, w);
            for (size_t k = 0; k < n; k++) {
                rt->sub[k].delay_ms = paths[k].delay_ms;
                rt->sub[k].bottleneck_mbps = paths[k].bottleneck_mbps;
                pgraph_consume(&g, &paths[k],
                               rt->sub[k].weight * rt->demand_mbps);
            }
        }
        for (size_t k = 0; k < n; k++) {
            path_destroy(&paths[k]);
        }
    }
    pgraph_destroy(&g);
    if (!e) {
        evaluate_transfers(pl);
    }
    return e;
}
