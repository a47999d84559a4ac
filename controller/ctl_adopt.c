/* ctl_adopt: see ctl_adopt.h. */
#include "ctl-private.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkstate.h"
#include "log.h"
#include "southbound.h"
#include "topology.h"

void
ctl_adopt_note_hello(struct ctl_adopt_report *rep,
                     const struct topology *topo,
                     const Edgetrain__Assignment *cur)
{
    memset(rep, 0, sizeof *rep);
    if (!cur || cur->n_downstream > 1) {
        return;
    }
    if (!cur->n_downstream) {
        rep->valid = true;      /* the last stage sends nothing */
        return;
    }
    const Edgetrain__Peer *p = cur->downstream[0];
    if (!p->name || p->n_substreams > POLICY_MAX_PATHS) {
        return;
    }
    snprintf(rep->peer, sizeof rep->peer, "%s", p->name);
    rep->n_sub = p->n_substreams;
    for (size_t k = 0; k < p->n_substreams; k++) {
        const Edgetrain__SubStream *s = p->substreams[k];
        if (s->n_hops > CTL_ADOPT_MAX_HOPS) {
            return;
        }
        rep->sub[k].id = s->id;
        rep->sub[k].local_port = s->local_port;
        rep->sub[k].remote_port = s->remote_port;
        rep->sub[k].weight = s->weight;
        rep->sub[k].n_hops = s->n_hops;
        for (size_t h = 0; h < s->n_hops; h++) {
            rep->sub[k].hops[h] = s->hops[h]
                                  ? topology_find_node(topo, s->hops[h]) : -1;
        }
    }
    rep->valid = true;
}

/* The access link of topology agent 'agent', or -1. */
static int
access_link(const struct topology *t, size_t agent)
{
    int node = topology_agent_node(t, agent);
    for (size_t l = 0; l < t->n_links; l++) {
        if (t->links[l].access
            && (t->links[l].a == node || t->links[l].b == node)) {
            return (int) l;
        }
    }
    return -1;
}

/* The sub-streams of the plan, as the agents reported them: one
 * southbound route each (stream r, sub-stream k at r * POLICY_MAX_PATHS +
 * k), to be traced. Returns 0 or an errno with the reason in 'why'. */
static int
reported_routes(struct ctl *ctl, struct southbound_route *routes,
                char *why, size_t why_size)
{
    const struct topology *t = ctl->topo;
    for (size_t r = 0; r < ctl->plan.n_routes; r++) {
        const struct plan_route *rt = &ctl->plan.routes[r];
        const struct ctl_adopt_report *rep = &ctl->agents[rt->src].reported;
        const char *src = t->agents[rt->src].name;
        const char *dst = t->agents[rt->dst].name;
        uint32_t rport = ctl->agents[rt->dst].data_port;
        double sum = 0;

        if (!rep->valid || strcmp(rep->peer, dst) || !rep->n_sub) {
            snprintf(why, why_size, "%s reported no stream to %s", src, dst);
            return ENOENT;
        }
        for (size_t k = 0; k < rep->n_sub; k++) {
            uint32_t lport = ctl_substream_port(ctl, r, k);
            if (rep->sub[k].id != k || rep->sub[k].local_port != lport
                || rep->sub[k].remote_port != rport) {
                snprintf(why, why_size, "%s reports sub-stream %u to %s on "
                         "ports %u -> %u; this controller pins %zu on %u -> "
                         "%u", src, rep->sub[k].id, dst,
                         rep->sub[k].local_port, rep->sub[k].remote_port, k,
                         lport, rport);
                return EINVAL;
            }
            if (!(rep->sub[k].weight > 0) || rep->sub[k].weight > 1) {
                snprintf(why, why_size, "%s reports weight %g for sub-stream "
                         "%zu to %s", src, rep->sub[k].weight, k, dst);
                return EINVAL;
            }
            sum += rep->sub[k].weight;
            if (sbtopo_route(&ctl->sbt, (r << 8) | k, rt->src, rt->dst,
                             (uint16_t) lport, (uint16_t) rport, NULL, 0,
                             NULL, &routes[r * POLICY_MAX_PATHS + k])
                || access_link(t, rt->src) < 0
                || access_link(t, rt->dst) < 0) {
                snprintf(why, why_size, "%s -> %s cannot be pinned (an agent "
                         "without an IPv4 address on a switch)", src, dst);
                return EINVAL;
            }
        }
        if (fabs(sum - 1) > 1e-3) {
            snprintf(why, why_size, "%s's weights to %s sum to %g", src, dst,
                     sum);
            return EINVAL;
        }
    }
    return 0;
}

/* Sub-stream 'k' of stream 'r' on the traced 'route' (southbound links) in
 * the plan's terms: agent, access link, switch links, access link, agent.
 * Checks it against what the sending agent reported. Returns 0 or an errno
 * with the reason in 'why'. */
static int
substream_of_route(struct ctl *ctl, size_t r, size_t k,
                   const struct southbound_route *route,
                   const size_t *tlink_of_link, struct plan_substream *ss,
                   char *why, size_t why_size)
{
    const struct topology *t = ctl->topo;
    const struct southbound_topology *sb = &ctl->sbt.sb;
    const struct plan_route *rt = &ctl->plan.routes[r];
    const struct ctl_adopt_report *rep = &ctl->agents[rt->src].reported;
    const char *src = t->agents[rt->src].name, *dst = t->agents[rt->dst].name;
    int acc_src = access_link(t, rt->src), acc_dst = access_link(t, rt->dst);
    size_t n = route->n_links;

    memset(ss, 0, sizeof *ss);
    ss->weight = rep->sub[k].weight;
    ss->n_links = n + 2;
    ss->links = calloc(n + 2, sizeof *ss->links);
    ss->nodes = calloc(n + 3, sizeof *ss->nodes);
    if (!ss->links || !ss->nodes) {
        abort();                /* out of memory, as xmalloc would */
    }
    ss->links[0] = acc_src;
    ss->nodes[0] = topology_agent_node(t, rt->src);
    size_t sw = sb->hosts[route->src_host].sw;
    ss->nodes[1] = (int) sw;
    for (size_t i = 0; i < n; i++) {
        const struct southbound_link *l = &sb->links[route->links[i]];
        sw = l->sw[0] == sw ? l->sw[1] : l->sw[0];
        ss->links[i + 1] = (int) tlink_of_link[route->links[i]];
        ss->nodes[i + 2] = (int) sw;
    }
    ss->links[n + 1] = acc_dst;
    ss->nodes[n + 2] = topology_agent_node(t, rt->dst);

    /* The sender must be on the path it reported (its Assignment and the
     * flows are of the same generation), its access links up. */
    bool same = rep->sub[k].n_hops == n + 1;
    for (size_t h = 0; same && h <= n; h++) {
        same = rep->sub[k].hops[h] == ss->nodes[h + 1];
    }
    if (!same) {
        snprintf(why, why_size, "%s -> %s sub-stream %zu: the switches' "
                 "flows take another path than the one %s reports", src,
                 dst, k, src);
        return EINVAL;
    }
    if (!ctl->ls->links[acc_src].up || !ctl->ls->links[acc_dst].up) {
        snprintf(why, why_size, "%s -> %s: an agent's access link is down",
                 src, dst);
        return ENETDOWN;
    }
    return 0;
}

/* Traces every sub-stream of the plan into 'subs' (POLICY_MAX_PATHS per
 * stream). Returns 0 or an errno with the reason in 'why'. */
static int
trace_all(struct ctl *ctl, struct plan_substream *subs, char *why,
          size_t why_size)
{
    const struct topology *t = ctl->topo;
    const struct sbtopo *sbt = &ctl->sbt;
    size_t nl = sbt->sb.n_links, nr = ctl->plan.n_routes;
    size_t max = nr * POLICY_MAX_PATHS;
    struct southbound_route *routes = calloc(max + 1, sizeof *routes);
    struct southbound_route *traced = calloc(max + 1, sizeof *traced);
    size_t *links = calloc(max * nl + 1, sizeof *links);
    bool *link_up = calloc(nl + 1, sizeof *link_up);
    size_t *tlink_of_link = calloc(nl + 1, sizeof *tlink_of_link);
    char err[200];
    int e = 0;

    for (size_t l = 0; l < t->n_links; l++) {
        size_t sl = sbt->link_of_tlink[l];
        if (sl != SIZE_MAX) {
            tlink_of_link[sl] = l;
            link_up[sl] = ctl->ls->links[l].up;
        }
    }
    for (size_t i = 0; i < t->n_switches && !e; i++) {
        if (!ctl->switch_up[i]) {
            snprintf(why, why_size, "switch %s is not connected",
                     t->switches[i].name);
            e = ENOENT;
        }
    }
    if (!e) {
        e = reported_routes(ctl, routes, why, why_size);
    }
    /* One array of the routes to trace, in plan order. */
    size_t n = 0;
    for (size_t r = 0; !e && r < nr; r++) {
        for (size_t k = 0; k < ctl->agents[ctl->plan.routes[r].src]
                               .reported.n_sub; k++) {
            traced[n++] = routes[r * POLICY_MAX_PATHS + k];
        }
    }
    if (!e) {
        e = southbound_trace_found(ctl->sb, traced, n, links, link_up,
                                   &ctl->adopt.extra_flows, err, sizeof err);
        if (e) {
            snprintf(why, why_size, "%s", err);
        }
    }
    n = 0;
    for (size_t r = 0; !e && r < nr; r++) {
        for (size_t k = 0; !e && k < ctl->agents[ctl->plan.routes[r].src]
                                         .reported.n_sub; k++) {
            e = substream_of_route(ctl, r, k, &traced[n++], tlink_of_link,
                                   &subs[r * POLICY_MAX_PATHS + k], why,
                                   why_size);
        }
    }
    free(routes);
    free(traced);
    free(links);
    free(link_up);
    free(tlink_of_link);
    return e;
}

static bool
same_path(const struct plan_substream *a, const struct plan_substream *b)
{
    return a->n_links == b->n_links
           && !memcmp(a->links, b->links, a->n_links * sizeof *a->links);
}

bool
ctl_adopt_keep_installed(struct ctl *ctl)
{
    struct ctl_adopt_state *st = &ctl->adopt;
    memset(st, 0, sizeof *st);
    st->run_id = ctl->run_id;
    if (!ctl->sb || !ctl->topo->n_switches) {
        snprintf(st->why, sizeof st->why, "no OpenFlow switches");
        return false;
    }
    size_t nr = ctl->plan.n_routes;
    struct plan_substream *subs = calloc(nr * POLICY_MAX_PATHS + 1,
                                         sizeof *subs);
    int e = trace_all(ctl, subs, st->why, sizeof st->why);
    if (!e) {
        for (size_t r = 0; r < nr; r++) {
            struct plan_route *rt = &ctl->plan.routes[r];
            size_t n = ctl->agents[rt->src].reported.n_sub;
            for (size_t k = 0; k < n; k++) {
                struct plan_substream *ss = &subs[r * POLICY_MAX_PATHS + k];
                st->moved += k >= rt->n_sub || !same_path(ss, &rt->sub[k]);
            }
            for (size_t k = 0; k < rt->n_sub; k++) {
                free(rt->sub[k].links);
                free(rt->sub[k].nodes);
            }
            rt->n_sub = n;
            for (size_t k = 0; k < n; k++) {
                struct plan_substream *a = &subs[r * POLICY_MAX_PATHS + k];
                rt->sub[k] = *a;
                a->links = NULL;        /* now the plan's */
                a->nodes = NULL;
                st->substreams++;
            }
        }
        char err[200];
        e = plan_evaluate(ctl->topo, ctl->ls, &ctl->cfg.plan, &ctl->plan,
                          err, sizeof err);
        if (e) {
            /* Cannot happen for traced paths; route afresh again. */
            snprintf(st->why, sizeof st->why, "%s", err);
            plan_reroute(ctl->topo, ctl->ls, ctl->routing, &ctl->cfg.plan,
                         &ctl->plan, err, sizeof err);
        }
    }
    for (size_t i = 0; i < nr * POLICY_MAX_PATHS; i++) {
        free(subs[i].links);
        free(subs[i].nodes);
    }
    free(subs);
    if (e) {
        st->substreams = st->moved = st->extra_flows = 0;
        ET_WARN("run %016" PRIx64 ": not keeping the installed paths (%s): "
                "routing the adopted run afresh", ctl->run_id, st->why);
        return false;
    }
    st->kept = true;
    ET_INFO("run %016" PRIx64 ": keeping the installed paths: %zu "
            "sub-streams traced through the switches' flows with the "
            "agents' weights (%zu not where a fresh routing would put "
            "them)", ctl->run_id, st->substreams, st->moved);
    if (st->extra_flows) {
        ET_INFO("run %016" PRIx64 ": %zu sub-stream flows on the switches "
                "belong to no adopted path (removed)", ctl->run_id,
                st->extra_flows);
    }
    return true;
}
