/* ctl: the controller core. See ctl.h. */
#include "ctl.h"

#include <arpa/inet.h>
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

#include "ckpt_id.h"
#include "model.h"
#include "ctl-private.h"
#include "httpapi.h"
#include "linkstate.h"
#include "log.h"
#include "mgmt.h"
#include "sbtopo.h"
#include "southbound.h"
#include "topology.h"

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
    cfg->failover_s = 30;
}

size_t
ctl_n_alive(const struct ctl *ctl)
{
    size_t n = 0;
    for (size_t i = 0; i < ctl->topo->n_agents; i++) {
        n += ctl->agents[i].alive;
    }
    return n;
}

/* ---- assignments ---------------------------------------------------------- */

uint32_t
ctl_substream_port(const struct ctl *ctl, size_t stage, size_t k)
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
        s->local_port = ctl_substream_port(ctl, rt->from_stage, k);
        s->remote_port = ctl->agents[rt->dst].data_port;
        s->weight = ss->weight;
        s->old_path_up = ss->old_path_up;
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
    char resume_id[ET_CKPT_ID_LEN];
    if (!ctl_resume_attach_local(ctl, s, agent, &a, resume_id,
                                 sizeof resume_id)) {
        a.resume_from = (char *) ctl_resume_attach(ctl, s, ag->conn,
                                                   resume_id,
                                                   sizeof resume_id);
    }
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
        ET_INFO("run %016" PRIx64 " gen %u: stage %zu/%zu blocks %u-%u -> %s"
                " (start epoch %u%s%s)", ctl->run_id, ctl->generation, s,
                pl->placement.n_stages, st->first_block, st->last_block,
                ctl->topo->agents[agent].name, a.start_epoch,
                a.resume_from[0] ? ", resume from " : "", a.resume_from);
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
            /* The id (the flows' cookie) names the sub-stream, not the
             * plan generation: a re-plan, or a restarted controller
             * adopting the run, that keeps a path leaves its flows
             * untouched (counters and duration go on). */
            uint64_t id = (r << 8) | s;
            int e = sbtopo_route(&ctl->sbt, id, rt->src, rt->dst,
                                 (uint16_t) ctl_substream_port(ctl, r, s),
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

/* Tells the link state which load is ours: the plan's demands along its
 * paths. */
static void
set_own_load(struct ctl *ctl)
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
}

/* set_own_load() and a snapshot for change detection. Call after every
 * plan. */
static void
mark_planned(struct ctl *ctl)
{
    set_own_load(ctl);
    linkstate_mark_planned(ctl->ls);
}

/* Before a new placement is planned: all the load measured on the run's
 * own links is the run's (linkstate_own_measured). Until a placement is
 * taken (take_placement marks it) or given up (set_own_load). */
static void
own_load_for_placement(struct ctl *ctl)
{
    linkstate_own_measured(ctl->ls);
}

/* Keeps the placement, re-routes on the current link state. */
static void
replan_paths(struct ctl *ctl, const char *why)
{
    /* Which sub-streams' current paths are whole: those moved for load
     * lose nothing in flight (TCP carries it over the new path), and their
     * senders are told not to resend (SubStream.old_path_up). */
    size_t nr = ctl->plan.n_routes;
    bool (*whole)[POLICY_MAX_PATHS] = calloc(nr ? nr : 1, sizeof *whole);
    for (size_t r = 0; r < nr; r++) {
        const struct plan_route *rt = &ctl->plan.routes[r];
        for (size_t k = 0; k < rt->n_sub; k++) {
            bool up = true;
            for (size_t l = 0; l < rt->sub[k].n_links; l++) {
                up &= ctl->ls->links[rt->sub[k].links[l]].up;
            }
            whole[r][k] = up;
        }
    }
    char err[256];
    int e = plan_reroute(ctl->topo, ctl->ls, ctl->routing, &ctl->cfg.plan,
                         &ctl->plan, err, sizeof err);
    for (size_t r = 0; !e && r < ctl->plan.n_routes; r++) {
        struct plan_route *rt = &ctl->plan.routes[r];
        for (size_t k = 0; k < rt->n_sub; k++) {
            rt->sub[k].old_path_up = r < nr && whole[r][k];
        }
    }
    free(whole);
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
            if (ev.type == SOUTHBOUND_SWITCH_UP) {
                event_active(ctl->check, 0, 0);   /* a run may wait for it */
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
    if (ctl->state != RUN_WAITING && ctl->state != RUN_DONE) {
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
        ctl->have_plan = false;         /* plan_compute cleared it */
        ctl->state = RUN_WAITING;
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
    ctl->resume_wait = false;
    ctl->resume_epoch = 0;
    ctl->home.valid = false;
    ctl->merge.valid = false;
    for (size_t i = 0; i < ctl->topo->n_agents; i++) {
        ctl->agents[i].have_eval = false;    /* a new run's accuracies */
        ctl->agents[i].n_substreams = 0;
    }
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

/* How long a run that has its agents waits for the topology's switches.
 * Switches that came up before the controller back off their reconnection
 * (Open vSwitch: up to 8 s); a run started without them would install its
 * flows nowhere and its streams would find no route. A run adopted after a
 * controller restart waits too: routed while some switches are still
 * away, its paths can differ from the ones installed, and the switches'
 * flows would be replaced when they come back (a data-plane change the
 * restart must not cause). */
#define CTL_SWITCH_WAIT_S 15.0

static size_t
switches_missing(const struct ctl *ctl)
{
    if (!ctl->sb) {
        return 0;               /* no OpenFlow: nothing to wait for */
    }
    size_t n = 0;
    for (size_t i = 0; i < ctl->topo->n_switches; i++) {
        n += !ctl->switch_up[i];
    }
    return n;
}

/* True while 'what' (a run about to start or be adopted) should wait for
 * switches still to connect; after CTL_SWITCH_WAIT_S it goes ahead with a
 * warning. SWITCH_UP and the 1 s tick look again. */
static bool
switch_wait(struct ctl *ctl, const char *what)
{
    size_t missing = switches_missing(ctl);
    if (missing && plan_now() - ctl->started_at < CTL_SWITCH_WAIT_S) {
        if (!ctl->switch_wait_logged) {
            ET_INFO("run: %s; waiting for %zu of %zu switches to connect "
                    "(at most %.0f s)", what, missing, ctl->topo->n_switches,
                    CTL_SWITCH_WAIT_S);
            ctl->switch_wait_logged = true;
        }
        return true;
    }
    if (missing) {
        ET_WARN("run: %s with %zu of %zu switches not connected", what,
                missing, ctl->topo->n_switches);
    }
    return false;
}

/* After a controller restart: if the alive agents report every stage of
 * one run (Hello.current), continue that run instead of starting a new
 * one: same run id, token and placement, next generation, on the paths
 * installed on the switches (ctl_adopt.c; routed afresh if they are
 * incomplete or inconsistent).
 * Returns true if it adopted one, or waits for switches to adopt it. */
static bool
try_adopt(struct ctl *ctl)
{
    const struct topology *t = ctl->topo;
    for (size_t i = 0; i < t->n_agents; i++) {
        const struct ctl_agent *lead = &ctl->agents[i];
        if (!lead->alive || !lead->current.valid) {
            continue;
        }
        uint32_t count = lead->current.count;
        size_t *by_stage = calloc(count, sizeof *by_stage);
        size_t found = 0;
        for (size_t j = 0; j < t->n_agents; j++) {
            const struct ctl_agent *x = &ctl->agents[j];
            if (x->alive && x->current.valid
                && x->current.run_id == lead->current.run_id
                && x->current.count == count
                && !by_stage[x->current.stage]) {
                by_stage[x->current.stage] = j + 1;
                found++;
            }
        }
        if (found != count) {
            free(by_stage);
            continue;       /* not all stages back (yet) */
        }
        if (switch_wait(ctl, "the agents of a running run are back")) {
            free(by_stage);
            return true;    /* they train on meanwhile, flows untouched */
        }
        struct plan_agent *agents = calloc(count, sizeof *agents);
        uint32_t (*ranges)[2] = calloc(count, sizeof *ranges);
        uint32_t gen = 0, epoch = UINT32_MAX;
        for (uint32_t s = 0; s < count; s++) {
            size_t a = by_stage[s] - 1;
            const struct ctl_agent *x = &ctl->agents[a];
            agents[s] = (struct plan_agent) {a, x->gflops, x->memory_bytes};
            ranges[s][0] = x->current.first;
            ranges[s][1] = x->current.last;
            gen = x->current.generation > gen ? x->current.generation : gen;
            epoch = x->current.last_epoch < epoch ? x->current.last_epoch
                                                  : epoch;
        }
        char err[256];
        linkstate_own_all(ctl->ls);     /* the run's streams kept flowing */
        int e = plan_adopt(t, ctl->ls, agents, ranges, count, ctl->routing,
                           &ctl->cfg.plan, &ctl->plan, err, sizeof err);
        free(agents);
        free(ranges);
        free(by_stage);
        for (size_t j = 0; j < t->n_agents; j++) {
            if (ctl->agents[j].current.run_id == lead->current.run_id) {
                ctl->agents[j].current.valid = false;   /* tried once */
            }
        }
        if (e) {
            ET_WARN("run: cannot adopt run %016" PRIx64 ": %s",
                    lead->current.run_id, err);
            plan_clear(&ctl->plan);
            linkstate_clear_own(ctl->ls);
            continue;
        }
        ctl->have_plan = true;
        ctl->state = RUN_RUNNING;
        ctl->run_id = lead->current.run_id;
        memcpy(ctl->token, lead->current.token, sizeof ctl->token);
        ctl->generation = gen + 1;
        ctl->start_epoch = epoch;
        ctl->boundary_epoch = epoch;
        for (size_t j = 0; j < t->n_agents; j++) {
            ctl->agents[j].resend = false;
        }
        ctl_adopt_keep_installed(ctl);  /* else the fresh routes stay */
        mark_planned(ctl);
        ctl_resume_reload(ctl);
        ET_INFO("run %016" PRIx64 ": adopted from the agents (%u stages, "
                "generation %u, from epoch %u)", ctl->run_id, count,
                ctl->generation, epoch);
        deploy(ctl);
        return true;
    }
    return false;
}

/* Every stage agent is back before the failover. One that restarted lost
 * its stage while the others went on: every stage resumes from the last
 * boundary's checkpoints, on the same placement. */
static void
resume_same_placement(struct ctl *ctl)
{
    if (!ctl->boundary_epoch) {
        return;         /* no checkpoint yet: the plain re-send suffices */
    }
    /* Agents that only lost the management connection report the
     * generation they still run (Hello.current): nothing to resume. */
    bool lost = false;
    for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
        const struct ctl_agent *x =
            &ctl->agents[plan_stage_agent(&ctl->plan, s)];
        lost |= x->registered_at >= ctl->degraded_since
                && !(x->current.valid && x->current.run_id == ctl->run_id
                     && x->current.generation == ctl->generation
                     && x->current.stage == s);
    }
    if (!lost) {
        return;
    }
    ctl->generation++;
    ctl->start_epoch = ctl->boundary_epoch;
    if (ctl_resume_begin(ctl, ctl->boundary_epoch)) {
        deploy(ctl);
    }
}

/* Deferred: start when enough agents (and the switches) are in; resend
 * assignments to agents of the run that came back. */
static void
check_cb(evutil_socket_t fd, short what, void *ctl_)
{
    struct ctl *ctl = ctl_;
    if (ctl->state == RUN_WAITING && try_adopt(ctl)) {
        return;
    }
    if (ctl->state == RUN_WAITING && ctl->cfg.expect_agents
        && ctl_n_alive(ctl) >= ctl->cfg.expect_agents) {
        if (switch_wait(ctl, "agents are in")) {
            return;
        }
        char err[256];
        ctl_start_run(ctl, err, sizeof err);
        return;
    }
    if (ctl->redeploy && ctl->have_plan) {
        ctl->redeploy = false;
        ctl->generation++;
        for (size_t i = 0; i < ctl->topo->n_agents; i++) {
            ctl->agents[i].resend = false;
        }
        deploy(ctl);
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
            resume_same_placement(ctl);
        }
    }
}

static void take_placement(struct ctl *, struct plan *, uint32_t,
                           const char *);

/* Re-places the run on the agents alive now (the source stays where it is
 * while it is alive: it holds the data). Unless 'force', the new placement
 * is taken only if it beats the current bottleneck by replace_gain.
 * Returns true if new Assignments went out. */
static bool
replace_placement(struct ctl *ctl, uint32_t start_epoch, bool force,
                  const char *why)
{
    own_load_for_placement(ctl);
    struct plan_agent *agents = calloc(ctl->topo->n_agents, sizeof *agents);
    size_t source;
    size_t n = collect_agents(ctl, agents, &source);
    size_t cur_src = plan_stage_agent(&ctl->plan, 0);
    for (size_t i = 0; i < n; i++) {
        if (agents[i].topo == cur_src) {
            source = i;
        }
    }
    struct plan_options opt = ctl->cfg.plan;
    if (opt.stages > n) {
        opt.stages = 0;           /* fewer agents than asked: automatic */
    }
    struct plan np = {0};
    char err[256];
    int e;
    if (!force && ctl_merge_active(ctl)) {
        /* A merged stage keeps its blocks: the planner's ranges would
         * have no checkpoint and start over (ctl_merge.c). */
        free(agents);
        set_own_load(ctl);
        return false;
    }
    if (force && !ctl_resume_failover_plan(ctl, &np)) {
        e = 0;                  /* same blocks on a spare: see ctl_resume.c */
    } else if (force && !ctl_merge_failover_plan(ctl, &np)) {
        e = 0;                  /* no spare: merged into a neighbour */
    } else {
        e = n ? plan_compute(ctl->topo, ctl->ls, agents, n, source,
                             ctl->placement, ctl->routing, &opt, &np, err,
                             sizeof err)
              : ENOENT;
    }
    free(agents);
    if (e) {
        if (force) {
            ET_WARN("run: %s: no new placement: %s", why,
                    n ? err : "no agent alive");
        }
        plan_clear(&np);
        set_own_load(ctl);
        return false;
    }
    /* The same stages on the same agents is no new placement, whatever
     * its bottleneck: taking it would only resume every stage from the
     * boundary (chunks trained again) for routes, which link changes
     * re-plan on their own (an adopted run keeps the paths it found
     * installed, so a fresh routing can look 10% better). */
    if (!force && (plan_same_placement(&np, &ctl->plan)
                   || !(np.bottleneck_s < ctl->plan.bottleneck_s
                                          * (1 - ctl->cfg.replace_gain)))) {
        plan_clear(&np);
        set_own_load(ctl);
        return false;
    }
    if (force) {
        ctl_resume_home_save(ctl);
    }
    take_placement(ctl, &np, start_epoch, why);
    return true;
}

/* Makes 'np' (moved) the run's plan from boundary 'start_epoch' on: every
 * stage resumes from that boundary's checkpoints, sent once they are all
 * in (ctl_resume.c). */
static void
take_placement(struct ctl *ctl, struct plan *np, uint32_t start_epoch,
               const char *why)
{
    ET_INFO("run: %s: new placement, %zu stages, %.3f s/step (was %.3f)",
            why, np->placement.n_stages, np->bottleneck_s,
            ctl->plan.bottleneck_s);
    plan_clear(&ctl->plan);
    ctl->plan = *np;
    ctl->generation++;
    ctl->placement_replans++;
    ctl->start_epoch = start_epoch;
    ctl->state = RUN_RUNNING;
    mark_planned(ctl);
    ctl_merge_assemble(ctl);
    if (ctl_resume_begin(ctl, start_epoch)) {
        deploy(ctl);
    }
}

/* Placement is reconsidered here, when every stage has moved past
 * 'epoch' (and on failover, see tick_cb). */
static void
epoch_boundary(struct ctl *ctl, uint32_t epoch)
{
    char why[64];
    ctl->boundary_epoch = epoch;
    if (ctl->resume_wait) {
        return;                 /* a new placement is about to go out */
    }
    if (ctl->cfg.epochs && epoch >= ctl->cfg.epochs) {
        /* The last boundary ends the run: a placement taken here would
         * resume every stage at an epoch past the end, where no agent
         * trains or evaluates any more, and the run would never be done. */
        return;
    }
    struct plan home = {0};
    /* After a merge the home placement comes back once the merged stage's
     * checkpoint of this boundary is split into its parts' (ctl_split.c;
     * if it is not in yet, split_back() takes it when it arrives). */
    own_load_for_placement(ctl);
    if (ctl_split_home_plan(ctl, epoch, &home)) {
        snprintf(why, sizeof why, "epoch %u boundary, agents back", epoch);
        take_placement(ctl, &home, epoch, why);
        return;
    }
    snprintf(why, sizeof why, "epoch %u boundary", epoch);
    replace_placement(ctl, epoch, false, why);
}

static void
tick_cb(evutil_socket_t fd, short what, void *ctl_)
{
    struct ctl *ctl = ctl_;
    /* A stage agent gone for --failover-s: the pipeline is stalled, no
     * epoch boundary will come; re-place on the agents still alive, from
     * the last boundary. */
    if (ctl->state == RUN_DEGRADED && ctl->cfg.failover_s > 0
        && plan_now() - ctl->degraded_since >= ctl->cfg.failover_s) {
        ctl->degraded_since = plan_now();      /* retry period on failure */
        replace_placement(ctl, ctl->boundary_epoch, true, "failover");
    }
    if (ctl->resume_wait && ctl_resume_poll(ctl)) {
        deploy(ctl);
    }
    /* Load changes wait while a new placement waits for its checkpoints
     * (its routes are fresh; they would go out without the resume), and
     * while a switch is away: its port counters stopped, so its links
     * would look idle, and its flows cannot be changed anyway. */
    if (ctl->have_plan && !ctl->resume_wait && ctl->topo->n_switches
        && !switches_missing(ctl)
        && linkstate_changed(ctl->ls, ctl->cfg.replan_threshold)) {
        replan_paths(ctl, "link load changed");
    }
    if (ctl->state == RUN_WAITING && ctl->switch_wait_logged) {
        event_active(ctl->check, 0, 0);       /* the switch wait may be over */
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
    if (ag->registered && strcmp(ag->data_addr, addr) && ctl->have_plan) {
        /* Its peers and the pinned flows use the old address. */
        ET_INFO("mgmt: agent '%s' moved from %s to %s: re-deploying the run",
                h->name, ag->data_addr, addr);
        ctl->redeploy = true;
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
    ag->resume_local = h->resume_local;
    mgmt_conn_set_data(conn, ag);
    ag->current.valid = false;
    const Edgetrain__Assignment *cur = h->current;
    if (cur && cur->run_id) {
        ET_INFO("mgmt: agent '%s' was running run %016" PRIx64 " generation "
                "%u, stage %u/%u, blocks %u-%u (last epoch %u)", h->name,
                cur->run_id, cur->generation, cur->stage_index,
                cur->stage_count, cur->first_block, cur->last_block,
                h->last_epoch);
        if (cur->stage_index < cur->stage_count
            && cur->stage_count <= BLOCKCOST_BLOCKS
            && cur->token.len == sizeof ag->current.token) {
            ag->current.valid = true;
            ag->current.run_id = cur->run_id;
            ag->current.generation = cur->generation;
            ag->current.stage = cur->stage_index;
            ag->current.count = cur->stage_count;
            ag->current.first = cur->first_block;
            ag->current.last = cur->last_block;
            ag->current.last_epoch = h->last_epoch;
            memcpy(ag->current.token, cur->token.data,
                   sizeof ag->current.token);
        }
    }
    ctl_adopt_note_hello(&ag->reported, ctl->topo, cur);
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

/* The home placement of a boundary that waited for the merged stage's
 * checkpoint to split (ctl_split.c): taken from that boundary. */
static void
split_back(struct ctl *ctl)
{
    struct plan home = {0};
    own_load_for_placement(ctl);
    if (ctl_split_ready(ctl, &home)) {
        char why[64];
        snprintf(why, sizeof why, "epoch %u boundary, agents back",
                 ctl->boundary_epoch);
        take_placement(ctl, &home, ctl->boundary_epoch, why);
    } else {
        set_own_load(ctl);
    }
}

static void
store_checkpoint(struct ctl *ctl, struct ctl_agent *ag, const char *name,
                 const Edgetrain__Checkpoint *c, const uint8_t *payload,
                 size_t len)
{
    uint32_t crc = mn_checkpoint_crc(payload, len);
    if (crc != c->crc32) {
        ET_WARN("mgmt: checkpoint from '%s' has crc32 %08x, header says "
                "%08x: dropped", name, crc, c->crc32);
        return;
    }
    ag->checkpoints++;
    ctl_resume_keep(ctl, name, c, payload, len);
    ctl_merge_assemble(ctl);
    split_back(ctl);
    if (ctl->resume_wait && ctl_resume_poll(ctl)) {
        deploy(ctl);
    }
    ctl_resume_save(ctl, name, c, payload, len);
}

/* A run is done when every stage's agent reported a test accuracy for an
 * epoch at or past the last one. With --exit-when-done the controller then
 * leaves its loop a few seconds later, so followers of /status (the
 * emulator, the demo) can read the final state first. */
static void
exit_loop_cb(evutil_socket_t fd, short what, void *base)
{
    event_base_loopexit(base, NULL);
}

static void
check_done(struct ctl *ctl)
{
    if (ctl->state != RUN_RUNNING || !ctl->have_plan || !ctl->cfg.epochs) {
        return;
    }
    for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
        const struct ctl_agent *x =
            &ctl->agents[plan_stage_agent(&ctl->plan, s)];
        if (!x->have_eval || x->eval_epoch < ctl->cfg.epochs) {
            return;
        }
    }
    ctl->state = RUN_DONE;
    ET_INFO("run %016" PRIx64 " done: %u epochs, every stage evaluated",
            ctl->run_id, ctl->cfg.epochs);
    for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
        size_t a = plan_stage_agent(&ctl->plan, s);
        ET_INFO("run: stage %zu on %s: test top-1 %.4f top-3 %.4f", s + 1,
                ctl->topo->agents[a].name, ctl->agents[a].test_top1,
                ctl->agents[a].test_top3);
    }
    if (ctl->cfg.exit_when_done) {
        struct timeval tv = {3, 0};
        event_base_once(ctl->base, -1, EV_TIMEOUT, exit_loop_cb, ctl->base,
                        &tv);
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
            ag->have_eval = true;
            ag->eval_epoch = m->epoch;
        }
        ag->n_substreams = 0;
        for (size_t i = 0; i < m->n_substreams
                           && i < CTL_MAX_SUBSTREAMS; i++) {
            const Edgetrain__SubStreamStats *ss = m->substreams[i];
            snprintf(ag->substreams[i].peer, sizeof ag->substreams[i].peer,
                     "%s", ss->peer ? ss->peer : "");
            ag->substreams[i].id = ss->id;
            ag->substreams[i].bytes = ss->bytes;
            ag->substreams[i].chunks = ss->chunks;
            ag->n_substreams = i + 1;
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
            if (all && min_epoch > ctl->boundary_epoch
                && ctl->state == RUN_RUNNING) {
                epoch_boundary(ctl, min_epoch);
            }
            check_done(ctl);
        }
    } else if (type == ET_MSG_CHECKPOINT) {
        store_checkpoint(ctl, ag, name, (const Edgetrain__Checkpoint *) msg,
                         payload, len);
    } else if (type == ET_MSG_CHECKPOINT_REQUEST) {
        ctl_resume_request(ctl, idx, conn,
                           (const Edgetrain__Checkpoint *) msg);
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
                ctl->degraded_since = plan_now();
                ET_WARN("run: stage %zu lost its agent; waiting for it to "
                        "come back", s);
            }
        }
    }
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
    if (!e && !(cfg->http && !strcmp(cfg->http, "off"))) {
        ctl->http_addr = strdup(cfg->http ? cfg->http : "127.0.0.1:7080");
        struct httpapi_handlers h = {http_status, http_metrics, http_start};
        e = httpapi_create(base, ctl->http_addr, &h, ctl, &ctl->http);
        if (e) {
            snprintf(err, err_size, "http: cannot listen on %s: %s",
                     ctl->http_addr, strerror(e));
        } else {
            /* POST /start needs the key's token when there is a key. */
            httpapi_set_key(ctl->http, key, key_len);
        }
    }
    free(key);
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
    ctl_resume_init(ctl);
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
    ctl_resume_destroy(ctl);
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
