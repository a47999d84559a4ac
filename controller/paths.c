/* paths: Yen's k shortest loopless paths and two multipath splits. See
 * paths.h for the metric and the models. */
#include "paths.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linkstate.h"
#include "topology.h"

/* Floor of the residual used in the cost, as a fraction of capacity, so a
 * saturated but up link is expensive rather than infinitely long. */
#define RESIDUAL_FLOOR 0.01

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        abort();
    }
    return p;
}

void
pgraph_edge_recost(const struct pgraph *g, struct pgraph_edge *e)
{
    double r = e->residual_mbps;
    if (r < RESIDUAL_FLOOR * e->capacity_mbps) {
        r = RESIDUAL_FLOOR * e->capacity_mbps;
    }
    e->cost = e->delay_ms + g->ref_bits / (r * 1e3);
}

int
pgraph_build(struct pgraph *g, const struct topology *topo,
             const struct linkstate *ls, double ref_bits)
{
    memset(g, 0, sizeof *g);
    g->n_nodes = topology_n_nodes(topo);
    g->n_switches = topo->n_switches;
    g->n_links = topo->n_links;
    g->n_edges = 2 * topo->n_links;
    g->ref_bits = ref_bits > 0 ? ref_bits : 1e6;
    g->first = xcalloc(g->n_nodes + 1, sizeof *g->first);
    g->edges = xcalloc(g->n_edges, sizeof *g->edges);
    g->link_edge = xcalloc(g->n_edges, sizeof *g->link_edge);

    /* Counting sort of the directed edges by their tail. */
    for (size_t l = 0; l < topo->n_links; l++) {
        g->first[topo->links[l].a + 1]++;
        g->first[topo->links[l].b + 1]++;
    }
    for (size_t v = 0; v < g->n_nodes; v++) {
        g->first[v + 1] += g->first[v];
    }
    size_t *fill = xcalloc(g->n_nodes, sizeof *fill);
    for (size_t l = 0; l < topo->n_links; l++) {
        const struct topo_link *tl = &topo->links[l];
        for (int dir = 0; dir < 2; dir++) {
            int from = dir ? tl->b : tl->a, to = dir ? tl->a : tl->b;
            size_t id = g->first[from] + fill[from]++;
            struct pgraph_edge *e = &g->edges[id];
            e->from = from;
            e->to = to;
            e->link = (int) l;
            e->dir = dir;
            e->access = tl->access;
            e->delay_ms = tl->delay_ms;
            e->capacity_mbps = tl->capacity_mbps;
            e->up = ls ? ls->links[l].up : true;
            e->residual_mbps = ls ? linkstate_residual_mbps(ls, l, dir)
                                  : tl->capacity_mbps;
            pgraph_edge_recost(g, e);
            g->link_edge[2 * l + dir] = (int) id;
        }
    }
    free(fill);
    g->dist = xcalloc(g->n_nodes, sizeof *g->dist);
    g->prev_edge = xcalloc(g->n_nodes, sizeof *g->prev_edge);
    g->banned_node = xcalloc(g->n_nodes, 1);
    g->banned_edge = xcalloc(g->n_edges, 1);
    g->heap = xcalloc(g->n_nodes, sizeof *g->heap);
    g->heap_pos = xcalloc(g->n_nodes, sizeof *g->heap_pos);
    return 0;
}

void
pgraph_destroy(struct pgraph *g)
{
    if (!g) {
        return;
    }
    free(g->first);
    free(g->edges);
    free(g->link_edge);
    free(g->dist);
    free(g->prev_edge);
    free(g->banned_node);
    free(g->banned_edge);
    free(g->heap);
    free(g->heap_pos);
    memset(g, 0, sizeof *g);
}

void
pgraph_consume(struct pgraph *g, const struct path *p, double mbps)
{
    for (size_t i = 0; i < p->n_edges; i++) {
        struct pgraph_edge *e = &g->edges[p->edges[i]];
        e->residual_mbps = e->residual_mbps > mbps ? e->residual_mbps - mbps
                                                   : 0;
        pgraph_edge_recost(g, e);
    }
}

void
path_destroy(struct path *p)
{
    if (p) {
        free(p->edges);
        memset(p, 0, sizeof *p);
    }
}

void
path_copy(struct path *dst, const struct path *src)
{
    *dst = *src;
    dst->edges = xcalloc(src->n_edges, sizeof *dst->edges);
    memcpy(dst->edges, src->edges, src->n_edges * sizeof *dst->edges);
}

bool
path_equal(const struct path *a, const struct path *b)
{
    return a->n_edges == b->n_edges
           && !memcmp(a->edges, b->edges, a->n_edges * sizeof *a->edges);
}

/* Fills cost, delay and bottleneck of 'p' from its edges. */
static void
path_measure(const struct pgraph *g, struct path *p)
{
    p->cost = 0;
    p->delay_ms = 0;
    p->bottleneck_mbps = INFINITY;
    for (size_t i = 0; i < p->n_edges; i++) {
        const struct pgraph_edge *e = &g->edges[p->edges[i]];
        p->cost += e->cost;
        p->delay_ms += e->delay_ms;
        double r = e->up ? e->residual_mbps : 0;
        if (r < p->bottleneck_mbps) {
            p->bottleneck_mbps = r;
        }
    }
    if (!p->n_edges) {
        p->bottleneck_mbps = INFINITY;
    }
}

/* Indexed binary min-heap on g->dist. */
static void
heap_swap(struct pgraph *g, size_t i, size_t j)
{
    int a = g->heap[i], b = g->heap[j];
    g->heap[i] = b;
    g->heap[j] = a;
    g->heap_pos[b] = (int) i;
    g->heap_pos[a] = (int) j;
}

static void
heap_up(struct pgraph *g, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (g->dist[g->heap[parent]] <= g->dist[g->heap[i]]) {
            break;
        }
        heap_swap(g, i, parent);
        i = parent;
    }
}

static void
heap_down(struct pgraph *g, size_t i, size_t n)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && g->dist[g->heap[l]] < g->dist[g->heap[m]]) {
            m = l;
        }
        if (r < n && g->dist[g->heap[r]] < g->dist[g->heap[m]]) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(g, i, m);
        i = m;
    }
}

/* Dijkstra from 'src' to 'dst' avoiding banned nodes and edges and down
 * links. Agents never forward: an agent node other than 'dst' is a dead
 * end. Returns 0 with 'out' filled, or ENOENT. */
static int
dijkstra(struct pgraph *g, int src, int dst, struct path *out)
{
    for (size_t v = 0; v < g->n_nodes; v++) {
        g->dist[v] = INFINITY;
        g->prev_edge[v] = -1;
        g->heap_pos[v] = -1;
    }
    size_t n = 0;
    g->dist[src] = 0;
    g->heap[n] = src;
    g->heap_pos[src] = (int) n++;
    bool found = false;
    while (n) {
        int u = g->heap[0];
        heap_swap(g, 0, --n);
        heap_down(g, 0, n);
        g->heap_pos[u] = -2;           /* settled */
        if (u == dst) {
            found = true;
            break;
        }
        if ((size_t) u >= g->n_switches && u != src) {
            continue;
        }
        for (size_t id = g->first[u]; id < g->first[u + 1]; id++) {
            const struct pgraph_edge *e = &g->edges[id];
            int v = e->to;
            if (!e->up || g->banned_edge[id] || g->banned_node[v]
                || g->heap_pos[v] == -2) {
                continue;
            }
            double d = g->dist[u] + e->cost;
            if (d < g->dist[v]) {
                g->dist[v] = d;
                g->prev_edge[v] = (int) id;
                if (g->heap_pos[v] < 0) {
                    g->heap[n] = v;
                    g->heap_pos[v] = (int) n++;
                }
                heap_up(g, g->heap_pos[v]);
            }
        }
    }
    if (!found) {
        return ENOENT;
    }
    size_t len = 0;
    for (int v = dst; v != src; v = g->edges[g->prev_edge[v]].from) {
        len++;
    }
    out->n_edges = len;
    out->edges = xcalloc(len, sizeof *out->edges);
    for (int v = dst; v != src; v = g->edges[g->prev_edge[v]].from) {
        out->edges[--len] = g->prev_edge[v];
    }
    path_measure(g, out);
    return 0;
}

void
paths_widest(struct pgraph *g, int src, double *rate_mbps, double *delay_ms)
{
    /* Dijkstra on -bottleneck: the heap keys are g->dist. */
    for (size_t v = 0; v < g->n_nodes; v++) {
        g->dist[v] = 0;
        g->heap_pos[v] = -1;
        rate_mbps[v] = 0;
        delay_ms[v] = 0;
    }
    size_t n = 0;
    size_t agents_left = g->n_nodes - g->n_switches;   /* src included */
    g->dist[src] = -INFINITY;
    g->heap[n] = src;
    g->heap_pos[src] = (int) n++;
    while (n && agents_left) {
        int u = g->heap[0];
        heap_swap(g, 0, --n);
        heap_down(g, 0, n);
        g->heap_pos[u] = -2;
        rate_mbps[u] = -g->dist[u];
        if ((size_t) u >= g->n_switches) {
            agents_left--;          /* every agent settled: done */
            if (u != src) {
                continue;
            }
        }
        for (size_t id = g->first[u]; id < g->first[u + 1]; id++) {
            const struct pgraph_edge *e = &g->edges[id];
            int v = e->to;
            if (!e->up || e->residual_mbps <= 0 || g->heap_pos[v] == -2) {
                continue;
            }
            double w = fmin(-g->dist[u], e->residual_mbps);
            if (-w < g->dist[v]) {
                g->dist[v] = -w;
                delay_ms[v] = delay_ms[u] + e->delay_ms;
                if (g->heap_pos[v] < 0) {
                    g->heap[n] = v;
                    g->heap_pos[v] = (int) n++;
                }
                heap_up(g, g->heap_pos[v]);
            }
        }
    }
    rate_mbps[src] = INFINITY;
}

int
paths_shortest(struct pgraph *g, int src, int dst, struct path *out)
{
    memset(g->banned_node, 0, g->n_nodes);
    memset(g->banned_edge, 0, g->n_edges);
    memset(out, 0, sizeof *out);
    if (src == dst) {
        return EINVAL;
    }
    return dijkstra(g, src, dst, out);
}

/* Successive shortest paths, each time banning the switch-to-switch links
 * (both directions) the previous paths used. */
static size_t
k_disjoint(struct pgraph *g, int src, int dst, size_t k, struct path *out)
{
    memset(g->banned_node, 0, g->n_nodes);
    memset(g->banned_edge, 0, g->n_edges);
    size_t found = 0;
    while (found < k && !dijkstra(g, src, dst, &out[found])) {
        const struct path *p = &out[found++];
        for (size_t i = 0; i < p->n_edges; i++) {
            const struct pgraph_edge *e = &g->edges[p->edges[i]];
            if (!e->access) {
                g->banned_edge[g->link_edge[2 * e->link]] = 1;
                g->banned_edge[g->link_edge[2 * e->link + 1]] = 1;
            }
        }
    }
    return found;
}

/* Yen's candidate list. */
struct candidates {
    size_t n, cap;
    struct path *paths;
};

static bool
contains(const struct path *ps, size_t n, const struct path *p)
{
    for (size_t i = 0; i < n; i++) {
        if (path_equal(&ps[i], p)) {
            return true;
        }
    }
    return false;
}

size_t
paths_k_shortest(struct pgraph *g, int src, int dst, size_t k,
                 bool edge_disjoint, struct path *out)
{
    memset(out, 0, k * sizeof *out);
    if (!k || src == dst) {
        return 0;
    }
    if (edge_disjoint) {
        return k_disjoint(g, src, dst, k, out);
    }
    if (paths_shortest(g, src, dst, &out[0])) {
        return 0;
    }
    struct candidates b = {0, 0, NULL};
    size_t found = 1;
    while (found < k) {
        const struct path *prev = &out[found - 1];
        for (size_t i = 0; i < prev->n_edges; i++) {
            int spur = g->edges[prev->edges[i]].from;
            memset(g->banned_node, 0, g->n_nodes);
            memset(g->banned_edge, 0, g->n_edges);
            /* Paths sharing this root leave it by a different edge. */
            for (size_t j = 0; j < found; j++) {
                const struct path *p = &out[j];
                if (p->n_edges > i
                    && !memcmp(p->edges, prev->edges, i * sizeof *p->edges)) {
                    g->banned_edge[p->edges[i]] = 1;
                }
            }
            /* Loopless: the spur path avoids the root's nodes. */
            for (size_t j = 0; j < i; j++) {
                g->banned_node[g->edges[prev->edges[j]].from] = 1;
            }
            struct path spur_path;
            if (dijkstra(g, spur, dst, &spur_path)) {
                continue;
            }
            struct path total;
            total.n_edges = i + spur_path.n_edges;
            total.edges = xcalloc(total.n_edges, sizeof *total.edges);
            memcpy(total.edges, prev->edges, i * sizeof *total.edges);
            memcpy(total.edges + i, spur_path.edges,
                   spur_path.n_edges * sizeof *total.edges);
            path_destroy(&spur_path);
            path_measure(g, &total);
            if (contains(b.paths, b.n, &total)
                || contains(out, found, &total)) {
                path_destroy(&total);
                continue;
            }
            if (b.n == b.cap) {
                b.cap = b.cap ? 2 * b.cap : 16;
                b.paths = realloc(b.paths, b.cap * sizeof *b.paths);
                if (!b.paths) {
                    abort();
                }
            }
            b.paths[b.n++] = total;
        }
        if (!b.n) {
            break;
        }
        size_t best = 0;
        for (size_t j = 1; j < b.n; j++) {
            const struct path *x = &b.paths[j], *y = &b.paths[best];
            if (x->cost < y->cost
                || (x->cost == y->cost && x->n_edges < y->n_edges)) {
                best = j;
            }
        }
        out[found++] = b.paths[best];
        b.paths[best] = b.paths[--b.n];
    }
    for (size_t j = 0; j < b.n; j++) {
        path_destroy(&b.paths[j]);
    }
    free(b.paths);
    return found;
}

static bool
path_uses(const struct path *p, int edge)
{
    for (size_t i = 0; i < p->n_edges; i++) {
        if (p->edges[i] == edge) {
            return true;
        }
    }
    return false;
}

double
paths_split_waterfill(const struct pgraph *g, const struct path *paths,
                      size_t n, double *weights)
{
    if (!n) {
        return 0;
    }
    /* Unique directed edges of the set and their remaining capacity. */
    size_t max_e = 0;
    for (size_t i = 0; i < n; i++) {
        max_e += paths[i].n_edges;
    }
    int *ids = xcalloc(max_e, sizeof *ids);
    double *rem = xcalloc(max_e, sizeof *rem);
    size_t n_e = 0;
    bool unconstrained = false;
    for (size_t i = 0; i < n; i++) {
        unconstrained |= paths[i].n_edges == 0;
        for (size_t j = 0; j < paths[i].n_edges; j++) {
            int id = paths[i].edges[j];
            size_t u = 0;
            while (u < n_e && ids[u] != id) {
                u++;
            }
            if (u == n_e) {
                ids[n_e] = id;
                rem[n_e++] = g->edges[id].up ? g->edges[id].residual_mbps : 0;
            }
        }
    }
    double *x = xcalloc(n, sizeof *x);
    bool *active = xcalloc(n, sizeof *active);
    for (size_t i = 0; i < n; i++) {
        active[i] = !unconstrained;
    }
    for (size_t round = 0; round < n; round++) {
        double delta = INFINITY;
        for (size_t u = 0; u < n_e; u++) {
            size_t a = 0;
            for (size_t i = 0; i < n; i++) {
                a += active[i] && path_uses(&paths[i], ids[u]);
            }
            if (a && rem[u] / a < delta) {
                delta = rem[u] / a;
            }
        }
        if (delta == INFINITY) {
            break;                     /* nothing active */
        }
        for (size_t u = 0; u < n_e; u++) {
            for (size_t i = 0; i < n; i++) {
                if (active[i] && path_uses(&paths[i], ids[u])) {
                    rem[u] -= delta;
                }
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (active[i]) {
                x[i] += delta;
            }
        }
        for (size_t u = 0; u < n_e; u++) {
            if (rem[u] <= 1e-9 * (1 + g->edges[ids[u]].capacity_mbps)) {
                for (size_t i = 0; i < n; i++) {
                    if (path_uses(&paths[i], ids[u])) {
                        active[i] = false;
                    }
                }
            }
        }
    }
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        total += x[i];
    }
    for (size_t i = 0; i < n; i++) {
        weights[i] = total > 0 ? x[i] / total : 1.0 / n;
    }
    free(ids);
    free(rem);
    free(x);
    free(active);
    return unconstrained ? INFINITY : total;
}

/* The total rate (packets/s) the paths carry when every used path has delay
 * 't': sum_i max(0, mu_i - 1/(t - d_i)). Increasing in 't'. */
static double
delay_equal_flow(const double *cap_mbps, const double *delay_s, size_t n,
                 double pkt_bits, double t)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double mu = cap_mbps[i] * 1e6 / pkt_bits;
        if (mu > 0 && t > delay_s[i]) {
            double x = mu - 1.0 / (t - delay_s[i]);
            sum += x > 0 ? x : 0;
        }
    }
    return sum;
}

int
paths_split_delay_equal(const double *cap_mbps, const double *delay_s,
                        size_t n, double demand_mbps, double pkt_bits,
                        double *weights, double *t_s)
{
    double total_cap = 0;
    for (size_t i = 0; i < n; i++) {
        total_cap += cap_mbps[i] > 0 ? cap_mbps[i] : 0;
    }
    if (!n) {
        return EINVAL;
    }
    if (demand_mbps >= total_cap || total_cap <= 0) {
        for (size_t i = 0; i < n; i++) {
            weights[i] = total_cap > 0 ? (cap_mbps[i] > 0 ? cap_mbps[i] : 0)
                                         / total_cap : 1.0 / n;
        }
        if (t_s) {
            *t_s = INFINITY;
        }
        return ERANGE;
    }
    /* Work in packets/s: mu_i service rates, lambda the demand. */
    double lambda = demand_mbps * 1e6 / pkt_bits;
    double lo = INFINITY, hi;
    for (size_t i = 0; i < n; i++) {
        if (cap_mbps[i] > 0) {
            double t0 = delay_s[i] + pkt_bits / (cap_mbps[i] * 1e6);
            lo = lo < t0 ? lo : t0;
        }
    }
    hi = lo * 2 + 1e-6;
    while (delay_equal_flow(cap_mbps, delay_s, n, pkt_bits, hi) < lambda) {
        hi = hi * 2;
    }
    for (int it = 0; it < 200 && hi - lo > 1e-15 * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (delay_equal_flow(cap_mbps, delay_s, n, pkt_bits, mid) < lambda) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    double t = 0.5 * (lo + hi), sum = 0;
    for (size_t i = 0; i < n; i++) {
        double mu = cap_mbps[i] * 1e6 / pkt_bits, x = 0;
        if (mu > 0 && t > delay_s[i]) {
            x = mu - 1.0 / (t - delay_s[i]);
        }
        weights[i] = x > 0 ? x : 0;
        sum += weights[i];
    }
    for (size_t i = 0; i < n; i++) {
        weights[i] /= sum;
    }
    if (t_s) {
        *t_s = t;
    }
    return 0;
}
