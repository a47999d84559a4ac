/* ctl: the controller core. See ctl.h. */
#include "ctl.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "httpapi.h"
#include "linkstate.h"
#include "log.h"
#include "mgmt.h"
#include "sbtopo.h"
#include "southbound.h"
#include "topology.h"

/* Compute figure assumed for an agent that reports none. */
#define DEFAULT_GFLOPS 10.0

enum run_state {
    RUN_WAITING,       /* for agents (or POST /start) */
    RUN_RUNNING,
    RUN_DEGRADED,      /* an agent of the run is gone */
};

static const char *const run_state_names[] = {"waiting", "running",
                                              "degraded"};

/* What the controller knows of one topology agent. */
struct ctl_agent {
    bool registered;            /* sent a Hello at some point */
    bool alive;                 /* connected, heartbeats on time */
    struct mgmt_conn *conn;     /* NULL unless alive */
    char data_addr[128];        /* effective: Hello's, else topology's */
    uint16_t data_port;
    double gflops;
    double memory_bytes;
    uint32_t cores;
    char software[64];
    double registered_at;
    uint32_t registrations;
    /* Latest Metrics. */
    bool have_metrics;
    uint32_t epoch;
    uint64_t step;
    double images_per_s, loss, test_top1, test_top3;
    uint32_t recv_queue, send_queue;
    double compute_s, wait_s;
    uint64_t chunks_received, chunks_duplicate, chunks_gap;
    char last_error[160];
    uint32_t checkpoints;
    bool resend;                /* re-registered during a run */
};

struct ctl {
    struct event_base *base;
    struct ctl_config cfg;
    char *listen, *http_addr;          /* owned copies */
    struct topology *topo;
    struct linkstate *ls;
    struct policy_registry *reg;
    const struct policy_placement *placement;
    const struct policy_routing *routing;
    struct ctl_agent *agents;          /* topo->n_agents */
    struct mgmt *mgmt;
    struct httpapi *http;
    struct southbound *sb;
    struct event *sb_event;            /* southbound event fd */
    struct event *check;               /* deferred start/resend checks */
    struct event *tick;                /* 1 s: re-plan on link change */
    struct sbtopo sbt;                 /* topology in southbound terms */
    bool *switch_up;
    double started_at;

    /* The run. */
    enum run_state state;
    struct plan plan;
    bool have_plan;
    uint64_t run_id;
    uint8_t token[16];
    uint32_t generation;
    uint32_t start_epoch;
    uint32_t boundary_epoch;           /* last epoch boundary seen */
    uint64_t routes_generation;        /* southbound's */
    uint64_t synced_generation;
    bool assignments_pending;          /* waiting for FLOWS_SYNCED */
    struct event *install_wait;        /* ...at most INSTALL_WAIT_MS */
    char last_plan_error[256];
    uint64_t path_replans, placement_replans, assignments_sent;
    uint64_t sb_events;
};

void
ctl_config_default(struct ctl_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->placement = "bottleneck-dp";
    cfg->routing = "ksp-waterfill";
    cfg->heartbeat_ms = 1000;
    cfg->timeout_periods = 3;
    cfg->plan.model = (struct blockcost_config) {1.0, 64, 1, 340, 4, 256};
    cfg->plan.k = 3;
    cfg->plan.loopback_substreams = 1;
    cfg->plan.loopback_mbps = 10000;
    cfg->epochs = 1;
    cfg->micro_batch = 64;
    cfg->seed = 1;
    cfg->optimizer = "adam";
    cfg->lr = 1e-3f;
    cfg->weight_decay = 0;
    cfg->schedule = "onecycle";
    cfg->encoding = EDGETRAIN__DTYPE__DTYPE_F32;
    cfg->port_base = 41000;
    cfg->replan_threshold = 0.2;
    cfg->replace_gain = 0.1;
}

static size_t
n_alive(const struct ctl *ctl)
{
    size_t n = 0;
    for (size_t i = 0; i < ctl->topo->n_agents; i++) {
        n += ctl->agents[i].alive;
    }
    return n;
}

/* ---- assignments ---------------------------------------------------------- */

/* Sub-stream source ports: unique per sending stage and sub-stream, so
 * agents sharing a host (loopback) never collide. */
static uint32_t
substream_port(const struct ctl *ctl, size_t stage, size_t k)
{
    return ctl->cfg.port_base + (uint32_t) (stage * POLICY_MAX_PATHS + k);
}

/* Fills 'peer' for the stream of route 'r' seen from one end; 'other' is
 * the agent at the far end. Strings point into ctl/topology; the arrays
 * are malloc'd (freed by free_peer). */
static void
fill_peer(const struct ctl *ctl, const struct plan_route *rt, size_t other,
          Edgetrain__Peer *peer)
{
    const struct topology *t = ctl->topo;
    edgetrain__peer__init(peer);
    peer->name = t->agents[other].name;
    peer->data_addr = (char *) ctl->agents[other].data_addr;
    peer->encoding = (Edgetrain__DType) ctl->cfg.encoding;
    peer->n_substreams = rt->n_sub;
    peer->substreams = calloc(rt->n_sub, sizeof *peer->substreams);
    for (size_t k = 0; k < rt->n_sub; k++) {
        const struct plan_substream *ss = &rt->sub[k];
        Edgetrain__SubStream *s = calloc(1, sizeof *s);
        edgetrain__sub_stream__init(s);
        s->id = (uint32_t) k;
        s->local_port = substream_port(ctl, rt->from_stage, k);
        s->remote_port = ctl->agents[rt->dst].data_port;
        s->weight = ss->weight;
        /* Hops: the switches between the two agents. */
        size_t n_hops = ss->n_links ? ss->n_links - 1 : 0;
        s->n_hops = n_hops;
        s->hops = calloc(n_hops ? n_hops : 1, sizeof *s->hops);
        for (size_t h = 0; h < n_hops; h++) {
            s->hops[h] = (char *) topology_node_name(t, ss->nodes[h + 1]);
        }
        peer->substreams[k] = s;
    }
}

static void
free_peer(Edgetrain__Peer *peer)
{
    for (size_t k = 0; k < peer->n_substreams; k++) {
        free(peer->substreams[k]->hops);
        free(peer->substreams[k]);
    }
    free(peer->substreams);
}

/* Sends stage 's' its Assignment. */
static int
send_assignment(struct ctl *ctl, size_t s)
{
    const struct plan *pl = &ctl->plan;
    size_t agent = plan_stage_agent(pl, s);
    struct ctl_agent *ag = &ctl->agents[agent];
    if (!ag->conn) {
        return ENOTCONN;
    }
    const struct placement_stage *st = &pl->placement.stages[s];
    Edgetrain__Assignment a = EDGETRAIN__ASSIGNMENT__INIT;
    Edgetrain__ModelConfig m = EDGETRAIN__MODEL_CONFIG__INIT;
    const struct ctl_config *cfg = &ctl->cfg;
    m.alpha = (float) cfg->plan.model.alpha;
    m.input_size = cfg->plan.model.input_size;
    m.in_channels = cfg->plan.model.in_channels;
    m.classes = cfg->plan.model.classes;
    m.batch = cfg->plan.model.batch;
    m.micro_batch = cfg->micro_batch;
    m.epochs = cfg->epochs;
    m.seed = cfg->seed;
    m.optimizer = (char *) cfg->optimizer;
    m.lr = cfg->lr;
    m.weight_decay = cfg->weight_decay;
    m.schedule = (char *) cfg->schedule;
    m.head_pool = cfg->plan.model.head_pool;
    m.steps_per_epoch = cfg->steps_per_epoch;
    a.run_id = ctl->run_id;
    a.generation = ctl->generation;
    a.first_block = st->first_block;
    a.last_block = st->last_block;
    a.stage_index = (uint32_t) s;
    a.stage_count = (uint32_t) pl->placement.n_stages;
    a.model = &m;
    a.token.data = ctl->token;
    a.token.len = sizeof ctl->token;
    a.data_spec = s == 0 && cfg->data_spec ? (char *) cfg->data_spec : "";
    a.start_epoch = ctl->start_epoch;
    Edgetrain__Peer up, down, *ups[1], *downs[1];
    if (s > 0) {
        fill_peer(ctl, &pl->routes[s - 1], plan_stage_agent(pl, s - 1), &up);
        ups[0] = &up;
        a.n_upstream = 1;
        a.upstream = ups;
    }
    if (s + 1 < pl->placement.n_stages) {
        fill_peer(ctl, &pl->routes[s], plan_stage_agent(pl, s + 1), &down);
        downs[0] = &down;
        a.n_downstream = 1;
        a.downstream = downs;
    }
    int e = mgmt_send(ag->conn, ET_MSG_ASSIGNMENT, &a.base);
    if (a.n_upstream) {
        free_peer(&up);
    }
    if (a.n_downstream) {
        free_peer(&down);
    }
    if (!e) {
        ctl->assignments_sent++;
        ET_INFO("run %016" PRIx64 " gen %u: stage %zu/%zu blocks %u-%u -> %s",
                ctl->run_id, ctl->generation, s, pl->placement.n_stages,
                st->first_block, st->last_block,
                ctl->topo->agents[agent].name);
    }
    return e;
}

static void
send_all_assignments(struct ctl *ctl)
{
    for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
        int e = send_assignment(ctl, s);
        if (e) {
            ET_WARN("run: cannot send stage %zu to %s: %s", s,
                    ctl->topo->agents[plan_stage_agent(&ctl->plan, s)].name,
                    strerror(e));
        }
    }
}

/* ---- southbound ----------------------------------------------------------- */

/* Hands the pinned sub-stream routes of the plan to the OpenFlow thread.
 * Returns true if it took them (a FLOWS_SYNCED event will follow). */
static bool
install_routes(struct ctl *ctl)
{
    if (!ctl->sb || !ctl->have_plan) {
        return false;
    }
    const struct plan *pl = &ctl->plan;
    size_t n = 0, n_links = 0;
    for (size_t r = 0; r < pl->n_routes; r++) {
        for (size_t s = 0; s < pl->routes[r].n_sub; s++) {
            n++;
            n_links += pl->routes[r].sub[s].n_links;
        }
    }
    struct southbound_route *routes = calloc(n ? n : 1, sizeof *routes);
    size_t *links = calloc(n_links ? n_links : 1, sizeof *links);
    size_t used = 0, k = 0;
    for (size_t r = 0; r < pl->n_routes; r++) {
        const struct plan_route *rt = &pl->routes[r];
        for (size_t s = 0; s < rt->n_sub; s++) {
            const struct plan_substream *ss = &rt->sub[s];
            uint64_t id = ((uint64_t) ctl->generation << 16) | (r << 8) | s;
            int e = sbtopo_route(&ctl->sbt, id, rt->src, rt->dst,
                                 (uint16_t) substream_port(ctl, r, s),
                                 ctl->agents[rt->dst].data_port, ss->links,
                                 ss->n_links, &links[used], &routes[k]);
            if (e) {
                ET_WARN("openflow: sub-stream %zu of %s -> %s cannot be "
                        "pinned (an agent without an IPv4 address on a "
                        "switch)", s, ctl->topo->agents[rt->src].name,
                        ctl->topo->agents[rt->dst].name);
                continue;
            }
            used += routes[k].n_links;
            k++;
        }
    }
    uint64_t gen = 0;
    int e = southbound_set_routes(ctl->sb, routes, k, &gen);
    if (e) {
        ET_ERROR("openflow: routes rejected: %s", strerror(e));
    } else {
        ctl->routes_generation = gen;
        ET_INFO("openflow: %zu pinned sub-streams handed over (generation "
                "%" PRIu64 ")", k, gen);
    }
    free(routes);
    free(links);
    return !e;
}

/* Flows first, then the agents: with switches, the Assignments go out when
 * the southbound reports the new routes installed on every connected
 * switch (make-before-break for re-plans), or after INSTALL_WAIT_MS if it
 * does not (a switch missing). */
#define INSTALL_WAIT_MS 2000

static void
deploy(struct ctl *ctl)
{
    if (install_routes(ctl)) {
        ctl->assignments_pending = true;
        struct timeval tv = {INSTALL_WAIT_MS / 1000,
                             (INSTALL_WAIT_MS % 1000) * 1000};
        evtimer_add(ctl->install_wait, &tv);
        return;
    }
    send_all_assignments(ctl);
}

static void
install_wait_cb(evutil_socket_t fd, short what, void *ctl_)
{
    struct ctl *ctl = ctl_;
    if (ctl->assignments_pending) {
        ctl->assignments_pending = false;
        ET_WARN("openflow: routes of generation %" PRIu64 " not confirmed "
                "after %d ms; sending the assignments anyway",
                ctl->routes_generation, INSTALL_WAIT_MS);
        send_all_assignments(ctl);
    }
}

/* Tells the link state which load is ours (the plan's demands along its
 * paths) and snapshots it for change detection. Call after every plan. */
static void
mark_planned(struct ctl *ctl)
{
    linkstate_clear_own(ctl->ls);
    const struct topology *t = ctl->topo;
    for (size_t r = 0; ctl->have_plan && r < ctl->plan.n_routes; r++) {
        const struct plan_route *rt = &ctl->plan.routes[r];
        for (size_t k = 0; k < rt->n_sub; k++) {
            const struct plan_substream *ss = &rt->sub[k];
            for (size_t i = 0; i < ss->n_links; i++) {
                int l = ss->links[i];
                int dir = t->links[l].a == ss->nodes[i] ? 0 : 1;
                linkstate_add_own(ctl->ls, (size_t) l, dir,
                                  ss->weight * rt->demand_mbps);
            }
        }
    }
    linkstate_mark_planned(ctl->ls);
}

/* Keeps the placement, re-routes on the current link state. */
static void
replan_paths(struct ctl *ctl, const char *why)
{
    char err[256];
    int e = plan_reroute(ctl->topo, ctl->ls, ctl->routing, &ctl->cfg.plan,
                         &ctl->plan, err, sizeof err);
    mark_planned(ctl);
    if (e) {
        ET_ERROR("run: re-routing (%s) failed: %s", why, err);
        snprintf(ctl->last_plan_error, sizeof ctl->last_plan_error, "%s",
                 err);
        return;
    }
    ctl->generation++;
    ctl->path_replans++;
    ET_INFO("run: paths re-planned (%s) in %.2f ms, generation %u", why,
            ctl->plan.plan_ms, ctl->generation);
    deploy(ctl);
}

static void
sb_event_cb(evutil_socket_t fd, short what, void *ctl_)
{
    struct ctl *ctl = ctl_;
    struct southbound_event ev;
    bool link_changed = false;
    while (southbound_next_event(ctl->sb, &ev)) {
        ctl->sb_events++;
        switch (ev.type) {
        case SOUTHBOUND_SWITCH_UP:
        case SOUTHBOUND_SWITCH_DOWN:
            if (ev.sw < ctl->topo->n_switches) {
                ctl->switch_up[ev.sw] = ev.type == SOUTHBOUND_SWITCH_UP;
            }
            ET_INFO("openflow: switch %016" PRIx64 " %s", ev.dpid,
                    ev.type == SOUTHBOUND_SWITCH_UP ? "up" : "down");
            break;
        case SOUTHBOUND_PORT_STATS:
            linkstate_feed_port(ctl->ls, ev.dpid, ev.port, ev.tx_bytes,
                                ev.rx_bytes, ev.time_msec / 1e3);
            break;
        case SOUTHBOUND_PORT_STATUS:
            if (!linkstate_set_port_up(ctl->ls, ev.dpid, ev.port, ev.up)) {
                ET_INFO("openflow: link at %016" PRIx64 ":%u %s", ev.dpid,
                        ev.port, ev.up ? "up" : "down");
                link_changed = true;
            }
            break;
        case SOUTHBOUND_FLOWS_SYNCED:
            ctl->synced_generation = ev.generation;
            if (ctl->assignments_pending
                && ev.generation >= ctl->routes_generation) {
                ctl->assignments_pending = false;
                evtimer_del(ctl->install_wait);
                ET_INFO("openflow: flows of generation %" PRIu64 " installed "
                        "on every connected switch", ev.generation);
                send_all_assignments(ctl);
            }
            break;
        case SOUTHBOUND_ERROR:
            ET_WARN("openflow: switch %016" PRIx64 " rejected flows", ev.dpid);
            break;
        }
    }
    if (link_changed && ctl->have_plan) {
        replan_paths(ctl, "link up/down");
    }
}

/* ---- the run ----------------------------------------------------------- */

/* Agents taking part: alive ones, in topology order. */
static size_t
collect_agents(const struct ctl *ctl, struct plan_agent *out, size_t *source)
{
    size_t n = 0;
    *source = 0;
    int want = ctl->cfg.source ? topology_find_agent(ctl->topo,
                                                     ctl->cfg.source) : -1;
    for (size_t i = 0; i < ctl->topo->n_agents; i++) {
        const struct ctl_agent *ag = &ctl->agents[i];
        if (!ag->alive) {
            continue;
        }
        if ((int) i == want) {
            *source = n;
        }
        out[n++] = (struct plan_agent) {i, ag->gflops, ag->memory_bytes};
    }
    return n;
}

int
ctl_start_run(struct ctl *ctl, char *err, size_t err_size)
{
    if (ctl->state != RUN_WAITING) {
        snprintf(err, err_size, "a run is already going");
        return EALREADY;
    }
    struct plan_agent *agents = calloc(ctl->topo->n_agents,
                                       sizeof *agents);
    size_t source;
    size_t n = collect_agents(ctl, agents, &source);
    if (ctl->cfg.source && (topology_find_agent(ctl->topo, ctl->cfg.source) < 0
                            || !ctl->agents[topology_find_agent(
                                   ctl->topo, ctl->cfg.source)].alive)) {
        snprintf(err, err_size, "source agent '%s' is not registered",
                 ctl->cfg.source);
        free(agents);
        return ENOENT;
    }
    int e = n ? plan_compute(ctl->topo, ctl->ls, agents, n, source,
                             ctl->placement, ctl->routing, &ctl->cfg.plan,
                             &ctl->plan, err, err_size)
              : ENOENT;
    if (!n) {
        snprintf(err, err_size, "no agent registered");
    }
    free(agents);
    if (e) {
        snprintf(ctl->last_plan_error, sizeof ctl->last_plan_error, "%s", err);
        ET_ERROR("run: planning failed: %s", err);
        return e;
    }
    ctl->have_plan = true;
    mark_planned(ctl);
    ctl->last_plan_error[0] = '\0';
    ctl->state = RUN_RUNNING;
    if (RAND_bytes((unsigned char *) &ctl->run_id, sizeof ctl->run_id) != 1
        || RAND_bytes(ctl->token, sizeof ctl->token) != 1) {
        ctl->run_id = (uint64_t) rand() << 32 | (uint64_t) rand();
    }
    ctl->generation = 1;
    ctl->start_epoch = 0;
    ctl->boundary_epoch = 0;
    ET_INFO("run %016" PRIx64 ": %zu stages over %zu agents, bottleneck "
            "%.3f s/step, planned in %.2f ms (%s, %s)", ctl->run_id,
            ctl->plan.placement.n_stages, n, ctl->plan.bottleneck_s,
            ctl->plan.plan_ms, ctl->placement->name, ctl->routing->name);
    deploy(ctl);
    return 0;
}

/* An agent of the run re-registered: it gets its stage again. */
static void
resend_to(struct ctl *ctl, size_t agent)
{
    if (!ctl->have_plan || ctl->assignments_pending) {
        return;                 /* the pending deploy sends it */
    }
    for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
        if (plan_stage_agent(&ctl->plan, s) == agent) {
            send_assignment(ctl, s);
        }
    }
}

/* Deferred: start when enough agents are in; resend assignments to agents
 * of the run that came back. */
static void
check_cb(evutil_socket_t fd, short what, void *ctl_)
{
    struct ctl *ctl = ctl_;
    if (ctl->state == RUN_WAITING && ctl->cfg.expect_agents
        && n_alive(ctl) >= ctl->cfg.expect_agents) {
        char err[256];
        ctl_start_run(ctl, err, sizeof err);
        return;
    }
    for (size_t i = 0; i < ctl->topo->n_agents; i++) {
        if (ctl->agents[i].resend && ctl->agents[i].alive) {
            ctl->agents[i].resend = false;
            resend_to(ctl, i);
        }
    }
    if (ctl->state == RUN_DEGRADED) {
        bool all = true;
        for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
            all &= ctl->agents[plan_stage_agent(&ctl->plan, s)].alive;
        }
        if (all) {
            ctl->state = RUN_RUNNING;
            ET_INFO("run: every stage agent is back");
        }
    }
}

/* Placement is reconsidered only here, when every stage has moved past
 * 'epoch'. */
static void
epoch_boundary(struct ctl *ctl, uint32_t epoch)
{
    ctl->boundary_epoch = epoch;
    struct plan_agent *agents = calloc(ctl->topo->n_agents, sizeof *agents);
    size_t source;
    size_t n = collect_agents(ctl, agents, &source);
    /* Keep the source: it holds the data. */
    size_t cur_src = plan_stage_agent(&ctl->plan, 0);
    for (size_t i = 0; i < n; i++) {
        if (agents[i].topo == cur_src) {
            source = i;
        }
    }
    struct plan np = {0};
    char err[256];
    int e = plan_compute(ctl->topo, ctl->ls, agents, n, source,
                         ctl->placement, ctl->routing, &ctl->cfg.plan, &np,
                         err, sizeof err);
    free(agents);
    if (!e && np.bottleneck_s < ctl->plan.bottleneck_s
                                * (1 - ctl->cfg.replace_gain)) {
        ET_INFO("run: epoch %u boundary: new placement %.3f s/step beats "
                "%.3f s/step", epoch, np.bottleneck_s, ctl->plan.bottleneck_s);
        plan_clear(&ctl->plan);
        ctl->plan = np;
        ctl->generation++;
        ctl->placement_replans++;
        ctl->start_epoch = epoch;
        mark_planned(ctl);
        deploy(ctl);
        return;
    }
    plan_clear(&np);
}

static void
tick_cb(evutil_socket_t fd, short what, void *ctl_)
{
    struct ctl *ctl = ctl_;
    if (ctl->have_plan && ctl->topo->n_switches
        && linkstate_changed(ctl->ls, ctl->cfg.replan_threshold)) {
        replan_paths(ctl, "link load changed");
    }
}

/* ---- management callbacks ----------------------------------------------- */

static int
on_hello(void *ctl_, struct mgmt_conn *conn, const Edgetrain__Hello *h,
         char *reason, size_t reason_size)
{
    struct ctl *ctl = ctl_;
    int i = topology_find_agent(ctl->topo, h->name);
    if (i < 0) {
        snprintf(reason, reason_size, "unknown agent '%s' (not in topology "
                 "'%s')", h->name, ctl->topo->name);
        return ENOENT;
    }
    const struct topo_agent *ta = &ctl->topo->agents[i];
    struct ctl_agent *ag = &ctl->agents[i];
    if (ag->conn) {
        struct mgmt_conn *old = ag->conn;
        mgmt_close(old, 0, "replaced by a new connection of the same agent");
    }
    const char *addr = h->data_addr && h->data_addr[0] ? h->data_addr
                                                       : ta->data_addr;
    uint32_t ip;
    uint16_t port;
    if (topology_parse_hostport(addr, &ip, &port)) {
        snprintf(reason, reason_size, "agent '%s': bad data_addr '%s' (want "
                 "host:port)", h->name, addr);
        return EINVAL;
    }
    /* An agent listening on every address announces 0.0.0.0: its peers
     * reach it at the topology's host, on the announced port. */
    char combined[128];
    if (!strncmp(addr, "0.0.0.0:", 8)) {
        const char *colon = strrchr(ta->data_addr, ':');
        snprintf(combined, sizeof combined, "%.*s:%u",
                 (int) (colon - ta->data_addr), ta->data_addr, port);
        addr = combined;
    }
    if (strcmp(addr, ta->data_addr)) {
        ET_WARN("mgmt: agent '%s' listens on %s, topology says %s (flows "
                "use the topology's address)", h->name, addr, ta->data_addr);
    }
    snprintf(ag->data_addr, sizeof ag->data_addr, "%s", addr);
    ag->data_port = port;
    ag->gflops = h->gflops > 0 ? h->gflops
                 : ta->gflops > 0 ? ta->gflops : DEFAULT_GFLOPS;
    ag->memory_bytes = h->memory_bytes ? (double) h->memory_bytes
                                       : (double) ta->memory_bytes;
    ag->cores = h->cores;
    snprintf(ag->software, sizeof ag->software, "%s",
             h->software_version ? h->software_version : "");
    ag->registered = true;
    ag->alive = true;
    ag->conn = conn;
    ag->registered_at = plan_now();
    ag->registrations++;
    mgmt_conn_set_data(conn, ag);
    if (h->current && h->current->run_id) {
        ET_INFO("mgmt: agent '%s' was running run %016" PRIx64 " generation "
                "%u (last epoch %u)", h->name, h->current->run_id,
                h->current->generation, h->last_epoch);
    }
    /* Welcome goes out when this returns; a start or a re-sent Assignment
     * follows from check_cb, after it. */
    ag->resend = ctl->state != RUN_WAITING;
    event_active(ctl->check, 0, 0);
    return 0;
}

static struct ctl_agent *
conn_agent(const struct ctl *ctl, struct mgmt_conn *conn, size_t *idx)
{
    struct ctl_agent *ag = mgmt_conn_get_data(conn);
    if (ag) {
        *idx = (size_t) (ag - ctl->agents);
    }
    return ag;
}

static void
store_checkpoint(struct ctl *ctl, struct ctl_agent *ag, const char *name,
                 const Edgetrain__Checkpoint *c, const uint8_t *payload,
                 size_t len)
{
    uint32_t crc = (uint32_t) crc32(0, payload, (uInt) len);
    if (crc != c->crc32) {
        ET_WARN("mgmt: checkpoint from '%s' has crc32 %08x, header says "
                "%08x: dropped", name, crc, c->crc32);
        return;
    }
    ag->checkpoints++;
    if (!ctl->cfg.checkpoint_dir) {
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s-%016" PRIx64 "-b%u-%u-e%u.ckpt",
             ctl->cfg.checkpoint_dir, name, c->run_id, c->first_block,
             c->last_block, c->epoch);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(payload, 1, len, f) != len) {
        ET_WARN("mgmt: cannot write %s: %s", path, strerror(errno));
    } else {
        ET_INFO("mgmt: checkpoint of '%s' saved to %s", name, path);
    }
    if (f) {
        fclose(f);
    }
}

static void
on_frame(void *ctl_, struct mgmt_conn *conn, int type,
         const ProtobufCMessage *msg, const uint8_t *payload, size_t len)
{
    struct ctl *ctl = ctl_;
    size_t idx = 0;
    struct ctl_agent *ag = conn_agent(ctl, conn, &idx);
    if (!ag) {
        return;
    }
    const char *name = ctl->topo->agents[idx].name;
    if (type == ET_MSG_METRICS) {
        const Edgetrain__Metrics *m = (const Edgetrain__Metrics *) msg;
        ag->have_metrics = true;
        ag->epoch = m->epoch;
        ag->step = m->step;
        ag->images_per_s = m->images_per_s;
        ag->loss = m->loss;
        if (m->eval_done) {
            ag->test_top1 = m->test_top1;
            ag->test_top3 = m->test_top3;
        }
        ag->recv_queue = m->recv_queue;
        ag->send_queue = m->send_queue;
        ag->compute_s = m->compute_s;
        ag->wait_s = m->wait_s;
        ag->chunks_received = m->chunks_received;
        ag->chunks_duplicate = m->chunks_duplicate;
        ag->chunks_gap = m->chunks_gap;
        /* Epoch boundary: every stage of this run reports a later epoch. */
        if (ctl->have_plan && m->run_id == ctl->run_id) {
            uint32_t min_epoch = UINT32_MAX;
            bool all = true;
            for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
                const struct ctl_agent *x =
                    &ctl->agents[plan_stage_agent(&ctl->plan, s)];
                all &= x->have_metrics;
                if (x->have_metrics && x->epoch < min_epoch) {
                    min_epoch = x->epoch;
                }
            }
            if (all && min_epoch > ctl->boundary_epoch) {
                epoch_boundary(ctl, min_epoch);
            }
        }
    } else if (type == ET_MSG_CHECKPOINT) {
        store_checkpoint(ctl, ag, name, (const Edgetrain__Checkpoint *) msg,
                         payload, len);
    } else if (type == ET_MSG_ERROR) {
        const Edgetrain__Error *e = (const Edgetrain__Error *) msg;
        snprintf(ag->last_error, sizeof ag->last_error, "%u: %s", e->code,
                 e->message ? e->message : "");
    }
}

static void
on_closed(void *ctl_, struct mgmt_conn *conn, const char *reason)
{
    struct ctl *ctl = ctl_;
    size_t idx = 0;
    struct ctl_agent *ag = conn_agent(ctl, conn, &idx);
    if (!ag || ag->conn != conn) {
        return;        /* an older connection that was replaced */
    }
    ag->conn = NULL;
    ag->alive = false;
    ET_WARN("agent '%s' is dead: %s", ctl->topo->agents[idx].name, reason);
    if (ctl->have_plan && ctl->state == RUN_RUNNING) {
        for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
            if (plan_stage_agent(&ctl->plan, s) == idx) {
                ctl->state = RUN_DEGRADED;
                ET_WARN("run: stage %zu lost its agent; waiting for it to "
                        "come back", s);
            }
        }
    }
}

/* ---- status ------------------------------------------------------------- */

static cJSON *
json_agents(const struct ctl *ctl)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < ctl->topo->n_agents; i++) {
        const struct topo_agent *ta = &ctl->topo->agents[i];
        const struct ctl_agent *ag = &ctl->agents[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ta->name);
        cJSON_AddBoolToObject(o, "registered", ag->registered);
        cJSON_AddBoolToObject(o, "alive", ag->alive);
        cJSON_AddStringToObject(o, "data", ag->data_addr[0] ? ag->data_addr
                                                            : ta->data_addr);
        if (ta->sw >= 0) {
            cJSON_AddStringToObject(o, "switch",
                                    ctl->topo->switches[ta->sw].name);
            cJSON_AddNumberToObject(o, "port", ta->port);
        }
        cJSON_AddNumberToObject(o, "gflops", ag->registered ? ag->gflops
                                                            : ta->gflops);
        cJSON_AddNumberToObject(o, "memory_mb",
                                (ag->registered ? ag->memory_bytes
                                 : (double) ta->memory_bytes) / 1048576.0);
        cJSON_AddNumberToObject(o, "registrations", ag->registrations);
        if (ag->software[0]) {
            cJSON_AddStringToObject(o, "software", ag->software);
        }
        if (ag->have_metrics) {
            cJSON *m = cJSON_AddObjectToObject(o, "metrics");
            cJSON_AddNumberToObject(m, "epoch", ag->epoch);
            cJSON_AddNumberToObject(m, "step", (double) ag->step);
            cJSON_AddNumberToObject(m, "images_per_s", ag->images_per_s);
            cJSON_AddNumberToObject(m, "loss", ag->loss);
            cJSON_AddNumberToObject(m, "test_top1", ag->test_top1);
            cJSON_AddNumberToObject(m, "test_top3", ag->test_top3);
            cJSON_AddNumberToObject(m, "recv_queue", ag->recv_queue);
            cJSON_AddNumberToObject(m, "send_queue", ag->send_queue);
            cJSON_AddNumberToObject(m, "compute_s", ag->compute_s);
            cJSON_AddNumberToObject(m, "wait_s", ag->wait_s);
            cJSON_AddNumberToObject(m, "chunks_received",
                                    (double) ag->chunks_received);
            cJSON_AddNumberToObject(m, "chunks_gap", (double) ag->chunks_gap);
        }
        if (ag->last_error[0]) {
            cJSON_AddStringToObject(o, "last_error", ag->last_error);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *
json_links(const struct ctl *ctl)
{
    const struct topology *t = ctl->topo;
    cJSON *arr = cJSON_CreateArray();
    for (size_t l = 0; l < t->n_links; l++) {
        const struct topo_link *tl = &t->links[l];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "a", topology_node_name(t, tl->a));
        cJSON_AddStringToObject(o, "b", topology_node_name(t, tl->b));
        cJSON_AddNumberToObject(o, "a_port", tl->a_port);
        cJSON_AddNumberToObject(o, "b_port", tl->b_port);
        cJSON_AddBoolToObject(o, "access", tl->access);
        cJSON_AddBoolToObject(o, "up", ctl->ls->links[l].up);
        cJSON_AddNumberToObject(o, "capacity_mbps", tl->capacity_mbps);
        cJSON_AddNumberToObject(o, "delay_ms", tl->delay_ms);
        cJSON_AddNumberToObject(o, "loss_pct", tl->loss_pct);
        cJSON_AddNumberToObject(o, "rate_ab_mbps",
                                ctl->ls->links[l].dir[0].rate_mbps);
        cJSON_AddNumberToObject(o, "rate_ba_mbps",
                                ctl->ls->links[l].dir[1].rate_mbps);
        cJSON_AddNumberToObject(o, "util_ab", linkstate_utilisation(ctl->ls,
                                                                    l, 0));
        cJSON_AddNumberToObject(o, "util_ba", linkstate_utilisation(ctl->ls,
                                                                    l, 1));
        cJSON_AddNumberToObject(o, "residual_ab_mbps",
                                linkstate_residual_mbps(ctl->ls, l, 0));
        cJSON_AddNumberToObject(o, "residual_ba_mbps",
                                linkstate_residual_mbps(ctl->ls, l, 1));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static void
json_plan(const struct ctl *ctl, cJSON *root)
{
    cJSON *placement = cJSON_AddArrayToObject(root, "placement");
    cJSON *paths = cJSON_AddArrayToObject(root, "paths");
    if (!ctl->have_plan) {
        return;
    }
    const struct plan *pl = &ctl->plan;
    const struct topology *t = ctl->topo;
    for (size_t s = 0; s < pl->placement.n_stages; s++) {
        const struct placement_stage *st = &pl->placement.stages[s];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "stage", (double) s);
        cJSON_AddStringToObject(o, "agent",
                                t->agents[plan_stage_agent(pl, s)].name);
        cJSON *blocks = cJSON_AddArrayToObject(o, "blocks");
        for (uint32_t b = st->first_block; b <= st->last_block; b++) {
            cJSON_AddItemToArray(blocks, cJSON_CreateNumber(b));
        }
        cJSON_AddNumberToObject(o, "first_block", st->first_block);
        cJSON_AddNumberToObject(o, "last_block", st->last_block);
        cJSON_AddNumberToObject(o, "compute_s", st->compute_s);
        cJSON_AddNumberToObject(o, "transfer_s", st->transfer_s);
        cJSON_AddNumberToObject(o, "memory_mb", st->memory_bytes / 1048576.0);
        cJSON_AddItemToArray(placement, o);
    }
    for (size_t r = 0; r < pl->n_routes; r++) {
        const struct plan_route *rt = &pl->routes[r];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "from", t->agents[rt->src].name);
        cJSON_AddStringToObject(o, "to", t->agents[rt->dst].name);
        cJSON_AddNumberToObject(o, "from_stage", (double) rt->from_stage);
        cJSON_AddNumberToObject(o, "demand_mbps", rt->demand_mbps);
        cJSON_AddNumberToObject(o, "rate_mbps", rt->rate_mbps);
        cJSON *subs = cJSON_AddArrayToObject(o, "substreams");
        for (size_t k = 0; k < rt->n_sub; k++) {
            const struct plan_substream *ss = &rt->sub[k];
            cJSON *so = cJSON_CreateObject();
            cJSON_AddNumberToObject(so, "id", (double) k);
            cJSON_AddNumberToObject(so, "weight", ss->weight);
            cJSON_AddNumberToObject(so, "local_port",
                                    substream_port(ctl, r, k));
            cJSON_AddNumberToObject(so, "remote_port",
                                    ctl->agents[rt->dst].data_port);
            cJSON *hops = cJSON_AddArrayToObject(so, "hops");
            for (size_t h = 1; h < ss->n_links; h++) {
                cJSON_AddItemToArray(hops, cJSON_CreateString(
                                         topology_node_name(t, ss->nodes[h])));
            }
            cJSON_AddNumberToObject(so, "delay_ms", ss->delay_ms);
            cJSON_AddNumberToObject(so, "bottleneck_mbps",
                                    isfinite(ss->bottleneck_mbps)
                                    ? ss->bottleneck_mbps : -1);
            cJSON_AddItemToArray(subs, so);
        }
        cJSON_AddItemToArray(paths, o);
    }
}

char *
ctl_status_json(const struct ctl *ctl)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *c = cJSON_AddObjectToObject(root, "controller");
    cJSON_AddStringToObject(c, "version", EDGETRAIN_VERSION);
    cJSON_AddNumberToObject(c, "uptime_s", plan_now() - ctl->started_at);
    cJSON_AddStringToObject(c, "topology", ctl->topo->name);
    cJSON_AddStringToObject(c, "placement_policy", ctl->placement->name);
    cJSON_AddStringToObject(c, "routing_policy", ctl->routing->name);
    cJSON_AddBoolToObject(c, "openflow", ctl->sb != NULL);
    cJSON *run = cJSON_AddObjectToObject(root, "run");
    char id[24];
    snprintf(id, sizeof id, "%016" PRIx64, ctl->run_id);
    cJSON_AddStringToObject(run, "state", run_state_names[ctl->state]);
    cJSON_AddStringToObject(run, "run_id", ctl->have_plan ? id : "");
    cJSON_AddNumberToObject(run, "generation", ctl->generation);
    cJSON_AddNumberToObject(run, "expect_agents",
                            (double) ctl->cfg.expect_agents);
    cJSON_AddNumberToObject(run, "alive_agents", (double) n_alive(ctl));
    cJSON_AddNumberToObject(run, "bottleneck_s", ctl->have_plan
                                                 ? ctl->plan.bottleneck_s : 0);
    cJSON_AddNumberToObject(run, "plan_ms", ctl->plan.plan_ms);
    cJSON_AddNumberToObject(run, "path_replans", (double) ctl->path_replans);
    cJSON_AddNumberToObject(run, "placement_replans",
                            (double) ctl->placement_replans);
    cJSON_AddNumberToObject(run, "epoch_boundary", ctl->boundary_epoch);
    if (ctl->last_plan_error[0]) {
        cJSON_AddStringToObject(run, "last_error", ctl->last_plan_error);
    }
    cJSON *sw = cJSON_AddArrayToObject(root, "switches");
    for (size_t i = 0; i < ctl->topo->n_switches; i++) {
        cJSON *o = cJSON_CreateObject();
        char dpid[24];
        snprintf(dpid, sizeof dpid, "%016" PRIx64, ctl->topo->switches[i].dpid);
        cJSON_AddStringToObject(o, "name", ctl->topo->switches[i].name);
        cJSON_AddStringToObject(o, "dpid", dpid);
        cJSON_AddBoolToObject(o, "connected", ctl->switch_up[i]);
        cJSON_AddItemToArray(sw, o);
    }
    cJSON_AddItemToObject(root, "agents", json_agents(ctl));
    cJSON_AddItemToObject(root, "links", json_links(ctl));
    json_plan(ctl, root);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

void
ctl_metrics_text(const struct ctl *ctl, struct evbuffer *out)
{
    const struct topology *t = ctl->topo;
    const struct mgmt_stats *ms = mgmt_get_stats(ctl->mgmt);
    evbuffer_add_printf(out,
        "# HELP edgetrain_agents_alive Agents connected with heartbeats on time.\n"
        "# TYPE edgetrain_agents_alive gauge\n"
        "edgetrain_agents_alive %zu\n", n_alive(ctl));
    evbuffer_add_printf(out,
        "# HELP edgetrain_agent_up 1 if the agent is alive.\n"
        "# TYPE edgetrain_agent_up gauge\n");
    for (size_t i = 0; i < t->n_agents; i++) {
        evbuffer_add_printf(out, "edgetrain_agent_up{agent=\"%s\"} %d\n",
                            t->agents[i].name, ctl->agents[i].alive);
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } gauges[] = {
        {"edgetrain_agent_images_per_second", "Training throughput.",
         offsetof(struct ctl_agent, images_per_s)},
        {"edgetrain_agent_loss", "Latest training loss of the stage head.",
         offsetof(struct ctl_agent, loss)},
        {"edgetrain_agent_test_top1", "Latest test top-1 accuracy.",
         offsetof(struct ctl_agent, test_top1)},
    };
    for (size_t g = 0; g < sizeof gauges / sizeof *gauges; g++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n",
                            gauges[g].name, gauges[g].help, gauges[g].name);
        for (size_t i = 0; i < t->n_agents; i++) {
            if (ctl->agents[i].have_metrics) {
                double v = *(const double *) ((const char *) &ctl->agents[i]
                                              + gauges[g].off);
                evbuffer_add_printf(out, "%s{agent=\"%s\"} %g\n",
                                    gauges[g].name, t->agents[i].name, v);
            }
        }
    }
    evbuffer_add_printf(out, "# HELP edgetrain_agent_epoch Epoch the agent "
                        "reports.\n# TYPE edgetrain_agent_epoch gauge\n");
    for (size_t i = 0; i < t->n_agents; i++) {
        if (ctl->agents[i].have_metrics) {
            evbuffer_add_printf(out, "edgetrain_agent_epoch{agent=\"%s\"} %u\n",
                                t->agents[i].name, ctl->agents[i].epoch);
        }
    }
    evbuffer_add_printf(out,
        "# HELP edgetrain_link_up 1 if the link is up.\n"
        "# TYPE edgetrain_link_up gauge\n");
    for (size_t l = 0; l < t->n_links; l++) {
        evbuffer_add_printf(out, "edgetrain_link_up{a=\"%s\",b=\"%s\"} %d\n",
                            topology_node_name(t, t->links[l].a),
                            topology_node_name(t, t->links[l].b),
                            ctl->ls->links[l].up);
    }
    evbuffer_add_printf(out,
        "# HELP edgetrain_link_utilisation Measured rate over capacity.\n"
        "# TYPE edgetrain_link_utilisation gauge\n");
    for (size_t l = 0; l < t->n_links; l++) {
        for (int d = 0; d < 2; d++) {
            const char *from = topology_node_name(t, d ? t->links[l].b
                                                       : t->links[l].a);
            const char *to = topology_node_name(t, d ? t->links[l].a
                                                     : t->links[l].b);
            evbuffer_add_printf(out, "edgetrain_link_utilisation{from=\"%s\","
                                "to=\"%s\"} %g\n", from, to,
                                linkstate_utilisation(ctl->ls, l, d));
        }
    }
    evbuffer_add_printf(out,
        "# HELP edgetrain_substream_weight Share of a stream's chunks.\n"
        "# TYPE edgetrain_substream_weight gauge\n");
    if (ctl->have_plan) {
        for (size_t r = 0; r < ctl->plan.n_routes; r++) {
            const struct plan_route *rt = &ctl->plan.routes[r];
            for (size_t k = 0; k < rt->n_sub; k++) {
                evbuffer_add_printf(out, "edgetrain_substream_weight{from=\""
                                    "%s\",to=\"%s\",id=\"%zu\"} %g\n",
                                    t->agents[rt->src].name,
                                    t->agents[rt->dst].name, k,
                                    rt->sub[k].weight);
            }
        }
    }
    evbuffer_add_printf(out,
        "# HELP edgetrain_plan_bottleneck_seconds Planned step time.\n"
        "# TYPE edgetrain_plan_bottleneck_seconds gauge\n"
        "edgetrain_plan_bottleneck_seconds %g\n"
        "# HELP edgetrain_plan_duration_ms Time the last (re)plan took.\n"
        "# TYPE edgetrain_plan_duration_ms gauge\n"
        "edgetrain_plan_duration_ms %g\n"
        "# HELP edgetrain_replans_total Re-plans since start.\n"
        "# TYPE edgetrain_replans_total counter\n"
        "edgetrain_replans_total{kind=\"paths\"} %" PRIu64 "\n"
        "edgetrain_replans_total{kind=\"placement\"} %" PRIu64 "\n"
        "# HELP edgetrain_run_generation Generation of the run's plan.\n"
        "# TYPE edgetrain_run_generation gauge\n"
        "edgetrain_run_generation %u\n",
        ctl->have_plan ? ctl->plan.bottleneck_s : 0, ctl->plan.plan_ms,
        ctl->path_replans, ctl->placement_replans, ctl->generation);
    evbuffer_add_printf(out,
        "# HELP edgetrain_mgmt_connections_total Management connections.\n"
        "# TYPE edgetrain_mgmt_connections_total counter\n"
        "edgetrain_mgmt_connections_total %" PRIu64 "\n"
        "# HELP edgetrain_mgmt_frames_total Management frames.\n"
        "# TYPE edgetrain_mgmt_frames_total counter\n"
        "edgetrain_mgmt_frames_total{dir=\"in\"} %" PRIu64 "\n"
        "edgetrain_mgmt_frames_total{dir=\"out\"} %" PRIu64 "\n"
        "# HELP edgetrain_mgmt_bad_frames_total Connections closed for bad "
        "input.\n"
        "# TYPE edgetrain_mgmt_bad_frames_total counter\n"
        "edgetrain_mgmt_bad_frames_total %" PRIu64 "\n"
        "# HELP edgetrain_mgmt_timeouts_total Agents declared dead.\n"
        "# TYPE edgetrain_mgmt_timeouts_total counter\n"
        "edgetrain_mgmt_timeouts_total %" PRIu64 "\n",
        ms->connections, ms->frames_in, ms->frames_out, ms->bad_frames,
        ms->timeouts);
}

/* ---- lifecycle ------------------------------------------------------------ */

static char *
http_status(void *ctl)
{
    return ctl_status_json(ctl);
}

static void
http_metrics(void *ctl, struct evbuffer *out)
{
    ctl_metrics_text(ctl, out);
}

static int
http_start(void *ctl, char *err, size_t err_size)
{
    return ctl_start_run(ctl, err, err_size);
}

static int
read_key(const char *path, uint8_t **key, size_t *len, char *err,
         size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "--key-file %s: %s", path, strerror(errno));
        return errno;
    }
    *key = malloc(4096);
    *len = fread(*key, 1, 4096, f);
    fclose(f);
    while (*len && ((*key)[*len - 1] == '\n' || (*key)[*len - 1] == '\r')) {
        (*len)--;
    }
    if (!*len) {
        snprintf(err, err_size, "--key-file %s: empty", path);
        free(*key);
        *key = NULL;
        return EINVAL;
    }
    return 0;
}

/* Starts the OpenFlow thread on the southbound view of the topology.
 * Returns 0 or an errno. */
static int
start_southbound(struct ctl *ctl, char *err, size_t err_size)
{
    sbtopo_init(&ctl->sbt, ctl->topo);
    struct southbound_options opt = {ctl->cfg.openflow, NULL, 0, 1000};
    int e = southbound_create(&ctl->sbt.sb, &opt, &ctl->sb);
    if (e) {
        snprintf(err, err_size, "openflow: cannot start on %s: %s",
                 ctl->cfg.openflow, strerror(e));
        return e;
    }
    ctl->sb_event = event_new(ctl->base, southbound_event_fd(ctl->sb),
                              EV_READ | EV_PERSIST, sb_event_cb, ctl);
    event_add(ctl->sb_event, NULL);
    ET_INFO("openflow: listening on %s", ctl->cfg.openflow);
    return 0;
}

int
ctl_create(struct event_base *base, const struct ctl_config *cfg,
           struct ctl **ctlp, char *err, size_t err_size)
{
    *ctlp = NULL;
    struct ctl *ctl = calloc(1, sizeof *ctl);
    ctl->base = base;
    ctl->cfg = *cfg;
    ctl->started_at = plan_now();
    int e = topology_load(cfg->topology_path, &ctl->topo, err, err_size);
    if (e) {
        free(ctl);
        return e;
    }
    const struct topology *t = ctl->topo;
    ctl->ls = linkstate_create(t);
    ctl->agents = calloc(t->n_agents, sizeof *ctl->agents);
    ctl->switch_up = calloc(t->n_switches + 1, sizeof *ctl->switch_up);
    ctl->reg = policy_registry_create();
    for (size_t i = 0; i < cfg->n_plugins && !e; i++) {
        e = policy_load_plugin(ctl->reg, cfg->plugins[i], err, err_size);
    }
    if (!e) {
        ctl->placement = policy_find_placement(ctl->reg, cfg->placement);
        ctl->routing = policy_find_routing(ctl->reg, cfg->routing);
        if (!ctl->placement || !ctl->routing) {
            char names[512];
            policy_list(ctl->reg, !ctl->routing, names, sizeof names);
            snprintf(err, err_size, "unknown %s policy '%s' (known: %s)",
                     ctl->placement ? "routing" : "placement",
                     ctl->placement ? cfg->routing : cfg->placement, names);
            e = EINVAL;
        }
    }
    if (!e && cfg->source && topology_find_agent(t, cfg->source) < 0) {
        snprintf(err, err_size, "--source %s: no such agent in the topology",
                 cfg->source);
        e = EINVAL;
    }
    if (!e && cfg->checkpoint_dir) {
        mkdir(cfg->checkpoint_dir, 0755);
    }
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (!e && cfg->key_file) {
        e = read_key(cfg->key_file, &key, &key_len, err, err_size);
    }
    if (!e) {
        ctl->listen = strdup(cfg->listen ? cfg->listen
                             : t->mgmt_addr ? t->mgmt_addr : "127.0.0.1:7000");
        char id[96];
        snprintf(id, sizeof id, "edgetrain-controller %s/%s", EDGETRAIN_VERSION,
                 t->name);
        struct mgmt_config mc = {ctl->listen, cfg->heartbeat_ms,
                                 cfg->timeout_periods, key, key_len, id};
        struct mgmt_callbacks cb = {on_hello, on_frame, on_closed};
        e = mgmt_create(base, &mc, &cb, ctl, &ctl->mgmt);
        if (e) {
            snprintf(err, err_size, "management: cannot listen on %s: %s",
                     ctl->listen, strerror(e));
        }
    }
    free(key);
    if (!e && !(cfg->http && !strcmp(cfg->http, "off"))) {
        ctl->http_addr = strdup(cfg->http ? cfg->http : "127.0.0.1:7080");
        struct httpapi_handlers h = {http_status, http_metrics, http_start};
        e = httpapi_create(base, ctl->http_addr, &h, ctl, &ctl->http);
        if (e) {
            snprintf(err, err_size, "http: cannot listen on %s: %s",
                     ctl->http_addr, strerror(e));
        }
    }
    if (!e && t->n_switches && cfg->openflow) {
        e = start_southbound(ctl, err, err_size);
    } else if (!e && t->n_switches) {
        ET_WARN("topology has %zu switches but no --openflow: flows are not "
                "installed", t->n_switches);
    }
    if (e) {
        ctl_destroy(ctl);
        return e;
    }
    ctl->check = event_new(base, -1, 0, check_cb, ctl);
    ctl->install_wait = evtimer_new(base, install_wait_cb, ctl);
    ctl->tick = event_new(base, -1, EV_PERSIST, tick_cb, ctl);
    struct timeval one = {1, 0};
    event_add(ctl->tick, &one);
    ET_INFO("controller: topology '%s' (%zu switches, %zu agents, %zu links),"
            " placement %s, routing %s%s", t->name, t->n_switches, t->n_agents,
            t->n_links, ctl->placement->name, ctl->routing->name,
            t->n_switches ? "" : " (loopback: no OpenFlow)");
    *ctlp = ctl;
    return 0;
}

void
ctl_destroy(struct ctl *ctl)
{
    if (!ctl) {
        return;
    }
    if (ctl->sb_event) {
        event_free(ctl->sb_event);
    }
    southbound_destroy(ctl->sb);
    sbtopo_destroy(&ctl->sbt);
    mgmt_destroy(ctl->mgmt);
    httpapi_destroy(ctl->http);
    if (ctl->check) {
        event_free(ctl->check);
    }
    if (ctl->install_wait) {
        event_free(ctl->install_wait);
    }
    if (ctl->tick) {
        event_free(ctl->tick);
    }
    plan_clear(&ctl->plan);
    policy_registry_destroy(ctl->reg);
    linkstate_destroy(ctl->ls);
    topology_destroy(ctl->topo);
    free(ctl->agents);
    free(ctl->switch_up);
    free(ctl->listen);
    free(ctl->http_addr);
    free(ctl);
}

uint16_t
ctl_mgmt_port(const struct ctl *ctl)
{
    return mgmt_port(ctl->mgmt);
}

uint16_t
ctl_http_port(const struct ctl *ctl)
{
    return ctl->http ? httpapi_port(ctl->http) : 0;
}
