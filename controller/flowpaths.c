/* Flowpaths: see flowpaths.h. */
#include <config.h>

#include "flowpaths.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* The link leaving switch 'sw' on 'port', and the side 'sw' is on; or
 * SIZE_MAX. */
static size_t
link_at(const struct southbound_topology *topo, size_t sw, uint32_t port,
        int *side)
{
    for (size_t l = 0; l < topo->n_links; l++) {
        for (int s = 0; s < 2; s++) {
            if (topo->links[l].sw[s] == sw && topo->links[l].port[s] == port) {
                *side = s;
                return l;
            }
        }
    }
    return SIZE_MAX;
}

int
flowpaths_trace(const struct southbound_topology *topo,
                const struct flows_set *sets, const bool *link_up,
                const struct southbound_route *r, size_t *links, size_t max,
                size_t *n, char *err, size_t err_len)
{
    *n = 0;
    if (r->src_host >= topo->n_hosts || r->dst_host >= topo->n_hosts) {
        snprintf(err, err_len, "route %" PRIu64 ": bad hosts", r->id);
        return EINVAL;
    }
    const struct southbound_host *src = &topo->hosts[r->src_host];
    const struct southbound_host *dst = &topo->hosts[r->dst_host];
    uint64_t cookie = flows_cookie(FLOWS_SUBSTREAM, r->id);
    uint16_t sport = htons(r->src_port), dport = htons(r->dst_port);
    size_t sw = src->sw;
    uint32_t in_port = src->port;

    /* A loop-free path visits each switch once. */
    for (size_t hop = 0; hop < topo->n_switches; hop++) {
        const char *name = topo->switches[sw].name;
        struct flows_key key;
        const struct flows_entry *fwd, *rev;

        flows_key_substream(&key, in_port, r->ip_proto, src->ip, dst->ip,
                            sport, dport);
        fwd = flows_set_find(&sets[sw], &key);
        if (!fwd) {
            snprintf(err, err_len, "route %" PRIu64 ": switch %s has no "
                     "flow for it from port %" PRIu32, r->id, name, in_port);
            return ENOENT;
        }
        if (fwd->cookie != cookie || fwd->out_port == FLOWS_DROP) {
            snprintf(err, err_len, "route %" PRIu64 ": switch %s: its flow "
                     "from port %" PRIu32 " has cookie %#" PRIx64 " and "
                     "output %" PRIu32, r->id, name, in_port, fwd->cookie,
                     fwd->out_port);
            return EINVAL;
        }
        flows_key_substream(&key, fwd->out_port, r->ip_proto, dst->ip,
                            src->ip, dport, sport);
        rev = flows_set_find(&sets[sw], &key);
        if (!rev) {
            snprintf(err, err_len, "route %" PRIu64 ": switch %s has no "
                     "reverse flow from port %" PRIu32, r->id, name,
                     fwd->out_port);
            return ENOENT;
        }
        if (rev->cookie != cookie || rev->out_port != in_port) {
            snprintf(err, err_len, "route %" PRIu64 ": switch %s: reverse "
                     "flow from port %" PRIu32 " outputs on %" PRIu32
                     " (cookie %#" PRIx64 "), not back on %" PRIu32, r->id,
                     name, fwd->out_port, rev->out_port, rev->cookie,
                     in_port);
            return EINVAL;
        }
        if (sw == dst->sw && fwd->out_port == dst->port) {
            return 0;
        }

        int side;
        size_t l = link_at(topo, sw, fwd->out_port, &side);
        if (l == SIZE_MAX) {
            snprintf(err, err_len, "route %" PRIu64 ": switch %s outputs it "
                     "on port %" PRIu32 ", which is neither a link nor the "
                     "destination host's port", r->id, name, fwd->out_port);
            return EINVAL;
        }
        if (link_up && !link_up[l]) {
            snprintf(err, err_len, "route %" PRIu64 ": its path crosses link "
                     "%zu (%s:%" PRIu32 " - %s:%" PRIu32 "), which is down",
                     r->id, l, topo->switches[topo->links[l].sw[0]].name,
                     topo->links[l].port[0],
                     topo->switches[topo->links[l].sw[1]].name,
                     topo->links[l].port[1]);
            return ENETDOWN;
        }
        if (*n >= max) {
            break;
        }
        links[(*n)++] = l;
        sw = topo->links[l].sw[!side];
        in_port = topo->links[l].port[!side];
    }
    snprintf(err, err_len, "route %" PRIu64 ": its flows do not reach the "
             "destination host within %zu hops (a loop)", r->id, *n);
    return ELOOP;
}

size_t
flowpaths_count_extra(const struct southbound_topology *topo,
                      const struct flows_set *sets,
                      const struct southbound_route *routes, size_t n)
{
    struct flows_set *want = xmalloc((topo->n_switches + 1) * sizeof *want);
    bool *up = xmalloc((topo->n_links + 1) * sizeof *up);
    size_t extra = 0;

    for (size_t l = 0; l < topo->n_links; l++) {
        up[l] = true;
    }
    for (size_t s = 0; s < topo->n_switches; s++) {
        flows_set_init(&want[s]);
    }
    flows_compute(topo, up, routes, n, want, NULL);
    for (size_t s = 0; s < topo->n_switches; s++) {
        const struct flows_entry *e;

        HMAP_FOR_EACH (e, node, &sets[s].map) {
            const struct flows_entry *w = flows_set_find(&want[s], &e->key);

            if (e->key.kind == FLOWS_SUBSTREAM
                && (!w || !flows_entry_same(w, e))) {
                extra++;
            }
        }
        flows_set_destroy(&want[s]);
    }
    free(want);
    free(up);
    return extra;
}
