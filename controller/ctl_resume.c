/* ctl_resume: checkpoints replicated off the devices, and resuming every
 * stage of a run from one epoch boundary after a re-placement.
 *
 * Agents send a Checkpoint (the stage file, with optimiser state) after
 * every epoch; ctl_resume_keep() holds the newest CTL_RESUME_KEEP epochs of
 * each block range in memory (ckptstore.h). When the placement changes
 * (failover, an epoch boundary, the home placement coming back), every
 * stage restarts from the same boundary E: the controller sends each agent
 * the checkpoint of its range after E (a Checkpoint frame with the file as
 * payload, on the management channel) and then its Assignment with
 * start_epoch E and resume_from naming that checkpoint. The per-epoch data
 * order and the schedule position (the optimiser's step count) are in the
 * data seed and the checkpoint, so the resumed run computes what an
 * undisturbed one would.
 *
 * Block ranges stay as they were: a failover moves a dead agent's stage to
 * a spare agent (plan_adopt with the old ranges), so every range has its
 * checkpoints. With no spare left the dead stage's blocks are merged into
 * a neighbour and its checkpoint is assembled from the parts' (ctl_merge.c);
 * only if that fails does the planner run again, and a range without
 * checkpoints then starts over (see docs/controller.md, "Failover").
 *
 * The placement before the first failover is remembered as "home"; at the
 * first epoch boundary where all of its agents are alive again it is
 * restored, so a returning agent trains again from the next epoch (after
 * a merge, once the merged checkpoint is split back: ctl_split.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_id.h"
#include "ckptdir.h"
#include "ckptstore.h"
#include "ctl-private.h"
#include "edgetrain.pb-c.h"
#include "log.h"
#include "mgmt.h"
#include "topology.h"
#include "wire.h"

void
ctl_resume_init(struct ctl *ctl)
{
    ctl->ckpts = ckptstore_create(CTL_RESUME_KEEP);
    if (ctl->cfg.checkpoint_dir) {
        ckptdir_scan(ctl->cfg.checkpoint_dir, &ctl->ckdir);
    }
}

void
ctl_resume_destroy(struct ctl *ctl)
{
    ctl_split_clear(ctl);
    ckptstore_destroy(ctl->ckpts);
    ctl->ckpts = NULL;
    ckptdir_index_clear(&ctl->ckdir);
}

void
ctl_resume_keep(struct ctl *ctl, const char *name,
                const Edgetrain__Checkpoint *c, const uint8_t *payload,
                size_t len)
{
    char err[256];
    if (ckptstore_put(ctl->ckpts, name, c->run_id, c->first_block,
                      c->last_block, c->epoch, c->crc32, payload, len, err,
                      sizeof err)) {
        ET_WARN("mgmt: checkpoint from '%s' not kept: %s", name, err);
        return;
    }
    int a = topology_find_agent(ctl->topo, name);
    if (a >= 0) {
        ckptstore_set_registration(ctl->ckpts, c->run_id, c->first_block,
                                   c->last_block, c->epoch,
                                   ctl->agents[a].registrations);
    }
}

/* Ranges of the current plan's stages ('out' holds BLOCKCOST_BLOCKS). */
static size_t
plan_ranges(const struct ctl *ctl, uint32_t (*out)[2])
{
    size_t n = ctl->plan.placement.n_stages;
    for (size_t s = 0; s < n; s++) {
        out[s][0] = ctl->plan.placement.stages[s].first_block;
        out[s][1] = ctl->plan.placement.stages[s].last_block;
    }
    return n;
}

bool
ctl_resume_begin(struct ctl *ctl, uint32_t epoch)
{
    double wait = ctl->cfg.heartbeat_ms * (double) ctl->cfg.timeout_periods
                  / 1e3;
    ctl->resume_target = epoch;
    ctl->resume_wait = true;
    ctl->resume_deadline = plan_now() + (wait > 1 ? wait : 1);
    return ctl_resume_poll(ctl);
}

bool
ctl_resume_poll(struct ctl *ctl)
{
    if (!ctl->resume_wait || !ctl->have_plan) {
        return false;
    }
    uint32_t ranges[BLOCKCOST_BLOCKS][2];
    size_t n = plan_ranges(ctl, ranges);
    uint32_t target = ctl->resume_target;
    uint32_t e = ckptstore_resume_epoch(ctl->ckpts, ctl->run_id, ranges, n,
                                        target);
    /* The last stage's checkpoint of this boundary is usually still on its
     * way (it follows the Metrics that made the boundary): wait a little
     * for it before falling back to an older boundary. */
    if (target && e != target && plan_now() < ctl->resume_deadline) {
        return false;
    }
    ctl->resume_wait = false;
    ctl->resume_epoch = e;
    ctl->resume_generation = ctl->generation;
    if (e) {
        ctl->start_epoch = e;
        ctl->resumes++;
        ET_INFO("run: generation %u resumes every stage from the "
                "checkpoints of epoch %u%s", ctl->generation, e,
                e < target ? " (newer ones missing)" : "");
        ctl_split_keep_head(ctl, e);
    } else if (target) {
        ET_WARN("run: no checkpoint of every stage up to epoch %u: stages "
                "that change start over at epoch %u", target, target);
        ctl->start_epoch = target;
    }
    return true;
}

/* Sends the kept checkpoint 'x' as a Checkpoint frame with the file as
 * payload. Returns 0 or mgmt_send_payload()'s error. */
static int
send_entry(struct mgmt_conn *conn, const struct ckpt_entry *x)
{
    Edgetrain__Checkpoint c = EDGETRAIN__CHECKPOINT__INIT;
    c.name = (char *) x->producer;
    c.run_id = x->run_id;
    c.first_block = x->first;
    c.last_block = x->last;
    c.epoch = x->epoch;
    c.crc32 = x->crc32;
    return mgmt_send_payload(conn, ET_MSG_CHECKPOINT, &c.base, x->buf,
                             x->len);
}

const char *
ctl_resume_attach(struct ctl *ctl, size_t s, struct mgmt_conn *conn,
                  char *id, size_t size)
{
    if (!ctl->resume_epoch || ctl->generation != ctl->resume_generation) {
        return "";
    }
    const struct placement_stage *st = &ctl->plan.placement.stages[s];
    const struct ckpt_entry *x = ckptstore_get(ctl->ckpts, ctl->run_id,
                                               st->first_block,
                                               st->last_block,
                                               ctl->resume_epoch);
    if (!x) {
        return "";
    }
    int e = send_entry(conn, x);
    if (e) {
        ET_WARN("run: cannot send checkpoint of blocks %u-%u: error %d",
                x->first, x->last, e);
        return "";
    }
    ctl->ckpts_sent++;
    ctl->ckpt_bytes_sent += x->len;
    et_ckpt_id(id, size, x->run_id, x->first, x->last, x->epoch);
    ET_INFO("run: stage %zu resumes from checkpoint %s (%zu bytes, made by "
            "%s)", s, id, x->len, x->producer);
    return id;
}

static struct plan_agent
plan_agent_of(const struct ctl *ctl, size_t a)
{
    const struct ctl_agent *x = &ctl->agents[a];
    return (struct plan_agent) {a, x->gflops, x->memory_bytes};
}

int
ctl_resume_failover_plan(struct ctl *ctl, struct plan *np)
{
    size_t n = ctl->plan.placement.n_stages;
    uint32_t ranges[BLOCKCOST_BLOCKS][2];
    struct plan_agent agents[BLOCKCOST_BLOCKS];
    bool *used = calloc(ctl->topo->n_agents, sizeof *used);
    plan_ranges(ctl, ranges);
    for (size_t s = 0; s < n; s++) {
        size_t a = plan_stage_agent(&ctl->plan, s);
        if (ctl->agents[a].alive) {
            used[a] = true;
        }
    }
    int e = 0;
    for (size_t s = 0; s < n && !e; s++) {
        size_t a = plan_stage_agent(&ctl->plan, s);
        if (!ctl->agents[a].alive) {
            /* The fastest spare takes the dead agent's stage. */
            size_t best = SIZE_MAX;
            for (size_t i = 0; i < ctl->topo->n_agents; i++) {
                if (ctl->agents[i].alive && !used[i]
                    && (best == SIZE_MAX
                        || ctl->agents[i].gflops > ctl->agents[best].gflops)) {
                    best = i;
                }
            }
            if (best == SIZE_MAX) {
                e = ENOENT;
                break;
            }
            used[best] = true;
            a = best;
        }
        agents[s] = plan_agent_of(ctl, a);
    }
    free(used);
    if (e) {
        return e;
    }
    char err[256];
    e = plan_adopt(ctl->topo, ctl->ls, agents, (const uint32_t (*)[2]) ranges,
                   n, ctl->routing, &ctl->cfg.plan, np, err, sizeof err);
    if (e) {
        ET_WARN("run: failover keeping the stages' blocks: %s", err);
    }
    return e;
}

void
ctl_resume_home_save(struct ctl *ctl)
{
    if (ctl->home.valid || !ctl->have_plan) {
        return;
    }
    ctl->home.n = plan_ranges(ctl, ctl->home.ranges);
    for (size_t s = 0; s < ctl->home.n; s++) {
        ctl->home.agents[s] = plan_stage_agent(&ctl->plan, s);
    }
    ctl->home.valid = true;
}

bool
ctl_resume_home_plan(struct ctl *ctl, struct plan *np)
{
    if (!ctl->home.valid || !ctl->have_plan) {
        return false;
    }
    bool alive = true, same = ctl->plan.placement.n_stages == ctl->home.n;
    struct plan_agent agents[BLOCKCOST_BLOCKS];
    for (size_t s = 0; s < ctl->home.n; s++) {
        size_t a = ctl->home.agents[s];
        alive &= ctl->agents[a].alive;
        agents[s] = plan_agent_of(ctl, a);
        same = same && plan_stage_agent(&ctl->plan, s) == a
               && ctl->plan.placement.stages[s].first_block
                  == ctl->home.ranges[s][0]
               && ctl->plan.placement.stages[s].last_block
                  == ctl->home.ranges[s][1];
    }
    if (same) {
        ctl->home.valid = false;        /* back home already */
        return false;
    }
    if (!alive) {
        return false;
    }
    char err[256];
    int e = plan_adopt(ctl->topo, ctl->ls, agents,
                       (const uint32_t (*)[2]) ctl->home.ranges, ctl->home.n,
                       ctl->routing, &ctl->cfg.plan, np, err, sizeof err);
    if (e) {
        ET_WARN("run: cannot restore the placement before the failover: %s",
                err);
        return false;
    }
    ctl->home.valid = false;
    return true;
}

/* ---- Copies on disk, and agents' own copies. ---------------------------- */

void
ctl_resume_save(struct ctl *ctl, const char *name,
                const Edgetrain__Checkpoint *c, const uint8_t *payload,
                size_t len)
{
    if (!ctl->cfg.checkpoint_dir) {
        return;
    }
    char err[1100];
    if (ckptdir_write(ctl->cfg.checkpoint_dir, name, c->run_id,
                      c->first_block, c->last_block, c->epoch, payload, len,
                      CTL_RESUME_KEEP, err, sizeof err)) {
        ET_WARN("mgmt: checkpoint of '%s' not saved: %s", name, err);
    } else {
        ET_INFO("mgmt: checkpoint of '%s' (blocks %u-%u, epoch %u) saved in "
                "%s", name, c->first_block, c->last_block, c->epoch,
                ctl->cfg.checkpoint_dir);
    }
}

void
ctl_resume_reload(struct ctl *ctl)
{
    if (!ctl->ckdir.dir) {
        return;
    }
    size_t n = ckptdir_load(&ctl->ckdir, ctl->ckpts, ctl->run_id,
                            CTL_RESUME_KEEP);
    ctl->ckpts_reloaded += n;
    size_t bytes = 0, held = ckptstore_count(ctl->ckpts, &bytes);
    ET_INFO("run %016" PRIx64 ": %zu checkpoints reloaded from %s (%zu held, "
            "%zu bytes)", ctl->run_id, n, ctl->ckdir.dir, held, bytes);
    ckptdir_index_clear(&ctl->ckdir);       /* read once */
}

bool
ctl_resume_attach_local(struct ctl *ctl, size_t s, size_t agent,
                        Edgetrain__Assignment *a, char *id, size_t size)
{
    if (!ctl->resume_epoch || ctl->generation != ctl->resume_generation
        || !ctl->agents[agent].resume_local) {
        return false;
    }
    const struct placement_stage *st = &ctl->plan.placement.stages[s];
    const struct ckpt_entry *x = ckptstore_get(ctl->ckpts, ctl->run_id,
                                               st->first_block,
                                               st->last_block,
                                               ctl->resume_epoch);
    const char *name = ctl->topo->agents[agent].name;
    /* Made by this very registration: it has not restarted since, so its
     * state directory still holds the file (a copy reloaded from disk has
     * registration 0 and always goes as payload). */
    if (!x || !x->registration
        || x->registration != ctl->agents[agent].registrations
        || strcmp(x->producer, name)) {
        return false;
    }
    et_ckpt_id(id, size, x->run_id, x->first, x->last, x->epoch);
    a->resume_from = id;
    a->resume_local = true;
    a->resume_crc32 = x->crc32;
    ctl->ckpts_local++;
    ctl->ckpt_bytes_local += x->len;
    ET_INFO("run: stage %zu resumes from checkpoint %s (%zu bytes, %s's own "
            "copy: payload not sent)", s, id, x->len, name);
    return true;
}

void
ctl_resume_request(struct ctl *ctl, size_t agent, struct mgmt_conn *conn,
                   const Edgetrain__Checkpoint *req)
{
    const char *name = ctl->topo->agents[agent].name;
    char id[ET_CKPT_ID_LEN], msg[300];
    et_ckpt_id(id, sizeof id, req->run_id, req->first_block, req->last_block,
               req->epoch);
    const struct ckpt_entry *x = NULL;
    if (req->run_id != ctl->run_id || !ctl->have_plan) {
        snprintf(msg, sizeof msg, "checkpoint-request for %s: not the "
                 "current run (%016" PRIx64 ")", id, ctl->run_id);
    } else if (!(x = ckptstore_get(ctl->ckpts, req->run_id, req->first_block,
                                   req->last_block, req->epoch))) {
        snprintf(msg, sizeof msg, "checkpoint-request for %s: the controller "
                 "holds no such checkpoint", id);
    }
    if (!x) {
        ET_WARN("mgmt: agent '%s': %s", name, msg);
        Edgetrain__Error e = EDGETRAIN__ERROR__INIT;
        e.code = ENOENT;
        e.message = msg;
        mgmt_send(conn, ET_MSG_ERROR, &e.base);
        return;
    }
    int e = send_entry(conn, x);
    if (e) {
        ET_WARN("mgmt: cannot send checkpoint %s to '%s': error %d", id, name,
                e);
        return;
    }
    ctl->ckpts_sent++;
    ctl->ckpt_bytes_sent += x->len;
    ET_INFO("run: checkpoint %s sent to '%s' on its request (%zu bytes, made "
            "by %s; its own copy was missing or did not match)", id, name,
            x->len, x->producer);
}
