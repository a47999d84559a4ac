/* linkstate: link capacity, utilisation and up/down. See linkstate.h. */
#include "linkstate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

static int
port_cmp(const void *a_, const void *b_)
{
    const struct linkstate_port *a = a_, *b = b_;
    if (a->dpid != b->dpid) {
        return a->dpid < b->dpid ? -1 : 1;
    }
    return a->port_no < b->port_no ? -1 : a->port_no > b->port_no;
}

/* The link (and direction out of the port) at dpid:port_no, or -1. */
static int
find_port(const struct linkstate *ls, uint64_t dpid, uint32_t port_no,
          int *dir)
{
    struct linkstate_port key = {dpid, port_no, 0, 0};
    const struct linkstate_port *p = bsearch(&key, ls->ports, ls->n_ports,
                                             sizeof *ls->ports, port_cmp);
    if (!p) {
        return -1;
    }
    *dir = p->dir;
    return p->link;
}

struct linkstate *
linkstate_create(const struct topology *topo)
{
    struct linkstate *ls = calloc(1, sizeof *ls);
    size_t n = topo->n_links;
    ls->topo = topo;
    ls->n_links = n;
    ls->ewma = 0.5;
    ls->links = calloc(n ? n : 1, sizeof *ls->links);
    ls->planned_residual = calloc(2 * n + 1, sizeof *ls->planned_residual);
    ls->planned_up = calloc(n + 1, sizeof *ls->planned_up);
    ls->own_mbps = calloc(2 * n + 1, sizeof *ls->own_mbps);
    ls->ports = calloc(2 * n + 1, sizeof *ls->ports);
    for (size_t i = 0; i < n; i++) {
        const struct topo_link *tl = &topo->links[i];
        ls->links[i].up = true;
        ls->links[i].capacity_mbps = tl->capacity_mbps;
        for (int d = 0; d < 2; d++) {
            int node = d ? tl->b : tl->a;
            if ((size_t) node < topo->n_switches) {
                ls->ports[ls->n_ports++] = (struct linkstate_port) {
                    topo->switches[node].dpid, d ? tl->b_port : tl->a_port,
                    (int) i, d};
            }
        }
    }
    qsort(ls->ports, ls->n_ports, sizeof *ls->ports, port_cmp);
    linkstate_mark_planned(ls);
    return ls;
}

void
linkstate_destroy(struct linkstate *ls)
{
    if (ls) {
        free(ls->links);
        free(ls->planned_residual);
        free(ls->planned_up);
        free(ls->own_mbps);
        free(ls->ports);
        free(ls);
    }
}

/* Feeds one counter sample of one direction. */
static void
feed_dir(struct linkstate *ls, struct linkstate_dir *d, uint64_t bytes,
         double t)
{
    if (d->have_sample && bytes >= d->last_bytes && t > d->last_time_s) {
        double mbps = (double) (bytes - d->last_bytes) * 8e-6
                      / (t - d->last_time_s);
        d->rate_mbps = d->rate_mbps * (1 - ls->ewma) + mbps * ls->ewma;
    } else if (d->have_sample && bytes < d->last_bytes) {
        d->rate_mbps = 0;           /* counter reset: start over */
    }
    if (!d->have_sample || t > d->last_time_s || bytes < d->last_bytes) {
        d->last_bytes = bytes;
        d->last_time_s = t;
        d->have_sample = true;
    }
}

int
linkstate_feed_port(struct linkstate *ls, uint64_t dpid, uint32_t port_no,
                    uint64_t tx_bytes, uint64_t rx_bytes, double time_s)
{
    int dir;
    int l = find_port(ls, dpid, port_no, &dir);
    if (l < 0) {
        return ENOENT;
    }
    struct linkstate_link *link = &ls->links[l];
    feed_dir(ls, &link->dir[dir], tx_bytes, time_s);
    if (ls->topo->links[l].access) {
        feed_dir(ls, &link->dir[!dir], rx_bytes, time_s);
    }
    ls->samples++;
    return 0;
}

int
linkstate_set_port_up(struct linkstate *ls, uint64_t dpid, uint32_t port_no,
                      bool up)
{
    int dir;
    int l = find_port(ls, dpid, port_no, &dir);
    if (l < 0) {
        return ENOENT;
    }
    if (ls->links[l].up == up) {
        return EALREADY;
    }
    ls->links[l].up = up;
    return 0;
}

void
linkstate_set_link_up(struct linkstate *ls, size_t link, bool up)
{
    ls->links[link].up = up;
}

void
linkstate_set_rate(struct linkstate *ls, size_t link, int dir,
                   double rate_mbps)
{
    ls->links[link].dir[dir].rate_mbps = rate_mbps;
}

double
linkstate_utilisation(const struct linkstate *ls, size_t link, int dir)
{
    const struct linkstate_link *l = &ls->links[link];
    double u = l->dir[dir].rate_mbps / l->capacity_mbps;
    return u < 0 ? 0 : u > 1 ? 1 : u;
}

double
linkstate_residual_mbps(const struct linkstate *ls, size_t link, int dir)
{
    const struct linkstate_link *l = &ls->links[link];
    if (!l->up) {
        return 0;
    }
    double rate = l->dir[dir].rate_mbps, own = ls->own_mbps[2 * link + dir];
    double background = rate - (own < rate ? own : rate);
    double r = l->capacity_mbps - background;
    return r > 0 ? r : 0;
}

void
linkstate_clear_own(struct linkstate *ls)
{
    memset(ls->own_mbps, 0, 2 * ls->n_links * sizeof *ls->own_mbps);
}

void
linkstate_own_all(struct linkstate *ls)
{
    for (size_t i = 0; i < ls->n_links; i++) {
        for (int d = 0; d < 2; d++) {
            ls->own_mbps[2 * i + d] = ls->links[i].dir[d].rate_mbps;
        }
    }
}

void
linkstate_own_measured(struct linkstate *ls)
{
    for (size_t i = 0; i < 2 * ls->n_links; i++) {
        double rate = ls->links[i / 2].dir[i % 2].rate_mbps;
        if (ls->own_mbps[i] > 0 && rate > ls->own_mbps[i]) {
            ls->own_mbps[i] = rate;
        }
    }
}

void
linkstate_add_own(struct linkstate *ls, size_t link, int dir, double mbps)
{
    ls->own_mbps[2 * link + dir] += mbps;
}

void
linkstate_mark_planned(struct linkstate *ls)
{
    for (size_t i = 0; i < ls->n_links; i++) {
        ls->planned_up[i] = ls->links[i].up;
        for (int d = 0; d < 2; d++) {
            ls->planned_residual[2 * i + d] = linkstate_residual_mbps(ls, i,
                                                                      d);
        }
    }
}

bool
linkstate_changed(const struct linkstate *ls, double threshold)
{
    for (size_t i = 0; i < ls->n_links; i++) {
        if (ls->planned_up[i] != ls->links[i].up) {
            return true;
        }
        for (int d = 0; d < 2; d++) {
            double diff = fabs(linkstate_residual_mbps(ls, i, d)
                               - ls->planned_residual[2 * i + d]);
            if (diff > threshold * ls->links[i].capacity_mbps) {
                return true;
            }
        }
    }
    return false;
}
