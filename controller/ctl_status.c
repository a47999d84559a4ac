/* ctl_status: the controller's state as documents: GET /status (JSON,
 * docs/controller.md) and GET /metrics (Prometheus text). */
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckptstore.h"
#include "ctl-private.h"
#include "linkstate.h"
#include "mgmt.h"
#include "topology.h"

const char *const ctl_run_state_names[] = {"waiting", "running", "degraded",
                                           "done"};

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
            cJSON_AddBoolToObject(m, "eval_done", ag->have_eval);
            cJSON_AddNumberToObject(m, "eval_epoch", ag->eval_epoch);
            cJSON *subs = cJSON_AddArrayToObject(m, "substreams");
            for (size_t k = 0; k < ag->n_substreams; k++) {
                cJSON *so = cJSON_CreateObject();
                cJSON_AddStringToObject(so, "peer", ag->substreams[k].peer);
                cJSON_AddNumberToObject(so, "id", ag->substreams[k].id);
                cJSON_AddNumberToObject(so, "bytes",
                                        (double) ag->substreams[k].bytes);
                cJSON_AddNumberToObject(so, "chunks",
                                        (double) ag->substreams[k].chunks);
                cJSON_AddItemToArray(subs, so);
            }
            cJSON_AddNumberToObject(m, "recv_queue", ag->recv_queue);
            cJSON_AddNumberToObject(m, "send_queue", ag->send_queue);
            cJSON_AddNumberToObject(m, "compute_s", ag->compute_s);
            cJSON_AddNumberToObject(m, "wait_s", ag->wait_s);
            cJSON_AddNumberToObject(m, "chunks_received",
                                    (double) ag->chunks_received);
            cJSON_AddNumberToObject(m, "chunks_duplicate",
                                    (double) ag->chunks_duplicate);
            /* Holes that stalled delivery for seconds (filled later: the
             * receiver never skips a chunk). */
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
                                    ctl_substream_port(ctl, r, k));
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
    cJSON_AddStringToObject(run, "state", ctl_run_state_names[ctl->state]);
    cJSON_AddStringToObject(run, "run_id", ctl->have_plan ? id : "");
    cJSON_AddNumberToObject(run, "generation", ctl->generation);
    cJSON_AddNumberToObject(run, "expect_agents",
                            (double) ctl->cfg.expect_agents);
    cJSON_AddNumberToObject(run, "alive_agents", (double) ctl_n_alive(ctl));
    cJSON_AddNumberToObject(run, "bottleneck_s", ctl->have_plan
                                                 ? ctl->plan.bottleneck_s : 0);
    cJSON_AddNumberToObject(run, "plan_ms", ctl->plan.plan_ms);
    cJSON_AddNumberToObject(run, "path_replans", (double) ctl->path_replans);
    cJSON_AddNumberToObject(run, "placement_replans",
                            (double) ctl->placement_replans);
    cJSON_AddNumberToObject(run, "epoch_boundary", ctl->boundary_epoch);
    cJSON_AddNumberToObject(run, "start_epoch", ctl->start_epoch);
    if (ctl->adopt.run_id && ctl->adopt.run_id == ctl->run_id) {
        /* Adopted after a controller restart: on which paths. */
        cJSON *ad = cJSON_AddObjectToObject(run, "adopted");
        cJSON_AddStringToObject(ad, "paths", ctl->adopt.kept ? "installed"
                                                             : "routed");
        cJSON_AddNumberToObject(ad, "substreams",
                                (double) ctl->adopt.substreams);
        cJSON_AddNumberToObject(ad, "moved", (double) ctl->adopt.moved);
        cJSON_AddNumberToObject(ad, "extra_flows",
                                (double) ctl->adopt.extra_flows);
        if (!ctl->adopt.kept) {
            cJSON_AddStringToObject(ad, "reason", ctl->adopt.why);
        }
    }
    size_t ck_bytes = 0, ck_n = ckptstore_count(ctl->ckpts, &ck_bytes);
    cJSON *rs = cJSON_AddObjectToObject(run, "resume");
    cJSON_AddNumberToObject(rs, "epoch", ctl->resume_epoch);
    cJSON_AddNumberToObject(rs, "generation", ctl->resume_generation);
    cJSON_AddNumberToObject(rs, "resumes", (double) ctl->resumes);
    cJSON_AddNumberToObject(rs, "checkpoints_held", (double) ck_n);
    cJSON_AddNumberToObject(rs, "checkpoint_bytes", (double) ck_bytes);
    cJSON_AddNumberToObject(rs, "checkpoints_sent", (double) ctl->ckpts_sent);
    cJSON_AddNumberToObject(rs, "checkpoints_local",
                            (double) ctl->ckpts_local);
    cJSON_AddNumberToObject(rs, "checkpoint_bytes_sent",
                            (double) ctl->ckpt_bytes_sent);
    cJSON_AddNumberToObject(rs, "checkpoint_bytes_local",
                            (double) ctl->ckpt_bytes_local);
    cJSON_AddNumberToObject(rs, "checkpoints_reloaded",
                            (double) ctl->ckpts_reloaded);
    cJSON_AddBoolToObject(rs, "home_pending", ctl->home.valid);
    if (ctl->merge.valid) {
        cJSON *mg = cJSON_AddObjectToObject(rs, "merged");
        const int blocks[2] = {(int) ctl->merge.first, (int) ctl->merge.last};
        const int p1[2] = {(int) ctl->merge.first, (int) ctl->merge.split};
        const int p2[2] = {(int) ctl->merge.split + 1, (int) ctl->merge.last};
        cJSON_AddItemToObject(mg, "blocks", cJSON_CreateIntArray(blocks, 2));
        cJSON *parts = cJSON_AddArrayToObject(mg, "parts");
        cJSON_AddItemToArray(parts, cJSON_CreateIntArray(p1, 2));
        cJSON_AddItemToArray(parts, cJSON_CreateIntArray(p2, 2));
        cJSON_AddNumberToObject(mg, "checkpoints_assembled",
                                (double) ctl->merge.assembled);
        cJSON_AddBoolToObject(mg, "active", ctl_merge_active(ctl));
        /* Split back into its parts when the dead agent returned
         * (ctl_split.c): the boundary, and where the earlier part's head
         * came from (its checkpoint of head_epoch, or fresh). */
        if (ctl->merge.split_epoch) {
            cJSON *sb = cJSON_AddObjectToObject(mg, "split_back");
            cJSON_AddNumberToObject(sb, "epoch", ctl->merge.split_epoch);
            cJSON_AddNumberToObject(sb, "head_epoch",
                                    ctl->merge.split_head_epoch);
            cJSON_AddBoolToObject(sb, "fresh_head",
                                  !ctl->merge.split_head_epoch);
        } else {
            cJSON_AddNullToObject(mg, "split_back");
        }
        if (ctl->merge.split_wait) {
            cJSON_AddNumberToObject(mg, "split_waiting",
                                    ctl->merge.split_wait);
        }
        if (ctl->merge.split_refused_epoch) {
            cJSON_AddNumberToObject(mg, "split_refused_epoch",
                                    ctl->merge.split_refused_epoch);
        }
    }
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
        "edgetrain_agents_alive %zu\n", ctl_n_alive(ctl));
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

