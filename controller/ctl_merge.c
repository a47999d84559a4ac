/* ctl_merge: failover with no spare agent. The dead agent's blocks go to
 * an adjacent stage (the previous or the next one, whichever gives the
 * lower planned bottleneck), every other stage keeps its blocks and its
 * agent, and the merged stage resumes from a checkpoint the controller
 * assembles from the two parts' checkpoints of the resume boundary
 * (ckpt_merge.h). So no stage starts over: the planner's own ranges over
 * the remaining agents would have no checkpoint at all.
 *
 * The merged range is remembered (ctl->merge) so that its checkpoint can
 * be assembled whenever the parts' copies are in: at once when the new
 * placement is taken, or when the last part's copy of the boundary
 * arrives (it follows the Metrics that made the boundary). When the dead
 * agent comes back, ctl_split.c splits it again. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_merge.h"
#include "ckptstore.h"
#include "ctl-private.h"
#include "log.h"
#include "topology.h"

static struct plan_agent
agent_of(const struct ctl *ctl, size_t a)
{
    const struct ctl_agent *x = &ctl->agents[a];
    return (struct plan_agent) {a, x->gflops, x->memory_bytes};
}

/* The stage of 'pl' that does not fit its agent's memory, or SIZE_MAX. */
static size_t
stage_too_big(const struct plan *pl)
{
    for (size_t s = 0; s < pl->placement.n_stages; s++) {
        const struct placement_stage *st = &pl->placement.stages[s];
        double mem = pl->agents[st->agent].memory_bytes;
        if (mem > 0 && st->memory_bytes > mem) {
            return s;
        }
    }
    return SIZE_MAX;
}

/* Plan with dead stage 'd' merged into its neighbour 'c' (d - 1 or d + 1):
 * the merged stage runs on c's agent. Returns 0 or plan_adopt()'s error. */
static int
merged_plan(struct ctl *ctl, size_t d, size_t c, struct plan *out, char *err,
            size_t err_size)
{
    size_t n = ctl->plan.placement.n_stages, k = 0;
    uint32_t ranges[BLOCKCOST_BLOCKS][2];
    struct plan_agent agents[BLOCKCOST_BLOCKS];
    for (size_t s = 0; s < n; s++) {
        const struct placement_stage *st = &ctl->plan.placement.stages[s];
        if (s == d) {
            continue;
        }
        ranges[k][0] = st->first_block;
        ranges[k][1] = st->last_block;
        if (s == c) {
            const struct placement_stage *ds = &ctl->plan.placement.stages[d];
            ranges[k][0] = c < d ? st->first_block : ds->first_block;
            ranges[k][1] = c < d ? ds->last_block : st->last_block;
        }
        agents[k++] = agent_of(ctl, plan_stage_agent(&ctl->plan, s));
    }
    return plan_adopt(ctl->topo, ctl->ls, agents,
                      (const uint32_t (*)[2]) ranges, k, ctl->routing,
                      &ctl->cfg.plan, out, err, err_size);
}

int
ctl_merge_failover_plan(struct ctl *ctl, struct plan *np)
{
    size_t n = ctl->plan.placement.n_stages, d = SIZE_MAX, dead = 0;
    for (size_t s = 0; s < n; s++) {
        if (!ctl->agents[plan_stage_agent(&ctl->plan, s)].alive) {
            d = s;
            dead++;
        }
    }
    if (n < 2 || dead != 1) {
        if (dead > 1) {
            ET_WARN("run: failover without a spare: %zu stages lost at once; "
                    "merging takes one dead stage only, so the planner "
                    "re-places the run and its new ranges start over", dead);
        }
        return ENOENT;
    }
    const struct placement_stage *ds = &ctl->plan.placement.stages[d];
    const char *dname = ctl->topo->agents[plan_stage_agent(&ctl->plan, d)].name;
    struct plan cand[2];
    memset(cand, 0, sizeof cand);
    bool ok[2] = {false, false};
    char why[2][300] = {"", ""};
    for (int i = 0; i < 2; i++) {
        if ((i == 0 && d == 0) || (i == 1 && d + 1 == n)) {
            snprintf(why[i], sizeof why[i], "no %s stage",
                     i ? "next" : "previous");
            continue;
        }
        size_t c = i ? d + 1 : d - 1;
        char err[256];
        if (merged_plan(ctl, d, c, &cand[i], err, sizeof err)) {
            snprintf(why[i], sizeof why[i], "%s", err);
            continue;
        }
        size_t big = stage_too_big(&cand[i]);
        if (big != SIZE_MAX) {
            const struct placement_stage *st = &cand[i].placement.stages[big];
            snprintf(why[i], sizeof why[i], "blocks %u-%u need %.0f MB, "
                     "agent '%s' has %.0f MB", st->first_block,
                     st->last_block, st->memory_bytes / 1048576,
                     ctl->topo->agents[plan_stage_agent(&cand[i], big)].name,
                     cand[i].agents[st->agent].memory_bytes / 1048576);
            continue;
        }
        ok[i] = true;
    }
    int best = ok[0] && ok[1]
               ? (cand[1].bottleneck_s < cand[0].bottleneck_s ? 1 : 0)
               : ok[1] ? 1 : ok[0] ? 0 : -1;
    if (best < 0) {
        ET_WARN("run: failover without a spare: blocks %u-%u of dead agent "
                "'%s' cannot merge into a neighbour (previous: %s; next: "
                "%s); the planner re-places the run and its new ranges "
                "start over",
                ds->first_block, ds->last_block, dname, why[0], why[1]);
        plan_clear(&cand[0]);
        plan_clear(&cand[1]);
        return ENOSPC;
    }
    size_t c = best ? d + 1 : d - 1;
    const struct placement_stage *cs = &ctl->plan.placement.stages[c];
    ctl_split_clear(ctl);
    ctl->merge.valid = true;
    ctl->merge.first = c < d ? cs->first_block : ds->first_block;
    ctl->merge.split = c < d ? cs->last_block : ds->last_block;
    ctl->merge.last = c < d ? ds->last_block : cs->last_block;
    ctl->merge.assembled = 0;
    ctl->merge.failed_epoch = 0;
    char other[64] = "none";
    if (ok[!best]) {
        snprintf(other, sizeof other, "%.3f s/step",
                 cand[!best].bottleneck_s);
    }
    ET_INFO("run: failover without a spare: blocks %u-%u of dead agent '%s' "
            "merged into stage %zu (blocks %u-%u on '%s'): blocks %u-%u, "
            "%.3f s/step (merging into the %s neighbour: %s)",
            ds->first_block, ds->last_block, dname, c + 1, cs->first_block,
            cs->last_block,
            ctl->topo->agents[plan_stage_agent(&ctl->plan, c)].name,
            ctl->merge.first, ctl->merge.last, cand[best].bottleneck_s,
            best ? "previous" : "next", other);
    *np = cand[best];
    plan_clear(&cand[!best]);
    return 0;
}

bool
ctl_merge_active(const struct ctl *ctl)
{
    if (!ctl->merge.valid || !ctl->have_plan) {
        return false;
    }
    for (size_t s = 0; s < ctl->plan.placement.n_stages; s++) {
        const struct placement_stage *st = &ctl->plan.placement.stages[s];
        if (st->first_block == ctl->merge.first
            && st->last_block == ctl->merge.last) {
            return true;
        }
    }
    return false;
}

/* Assembles and keeps the merged range's checkpoint of 'epoch' if both
 * parts' copies are in. */
static void
assemble_epoch(struct ctl *ctl, uint32_t epoch)
{
    const struct ckpt_entry *a, *b;
    uint32_t f = ctl->merge.first, m = ctl->merge.split, l = ctl->merge.last;
    if (!(a = ckptstore_get(ctl->ckpts, ctl->run_id, f, m, epoch))
        || !(b = ckptstore_get(ctl->ckpts, ctl->run_id, m + 1, l, epoch))
        || epoch == ctl->merge.failed_epoch) {
        return;
    }
    uint8_t *buf;
    size_t len;
    uint32_t crc;
    char err[320], producer[64];
    snprintf(producer, sizeof producer, "%.31s+%.31s", a->producer,
             b->producer);
    int e = ckpt_merge(a, b, &buf, &len, &crc, err, sizeof err);
    if (!e) {
        e = ckptstore_put(ctl->ckpts, producer, ctl->run_id, f, l, epoch, crc,
                          buf, len, err, sizeof err);
        free(buf);
    }
    if (e) {
        ctl->merge.failed_epoch = epoch;     /* logged once */
        ET_ERROR("run: no checkpoint of merged blocks %u-%u after epoch %u: "
                 "%s; the merged stage starts fresh", f, l, epoch, err);
        return;
    }
    ctl->merge.assembled++;
    ET_INFO("run: checkpoint of merged blocks %u-%u after epoch %u assembled "
            "from blocks %u-%u (%s) and %u-%u (%s): %zu bytes", f, l, epoch,
            f, m, a->producer, m + 1, l, b->producer, len);
}

void
ctl_merge_assemble(struct ctl *ctl)
{
    if (!ctl_merge_active(ctl)) {
        return;
    }
    /* The boundaries a resume may pick: the newest CTL_RESUME_KEEP. */
    uint32_t top = ctl->resume_wait && ctl->resume_target > ctl->boundary_epoch
                   ? ctl->resume_target : ctl->boundary_epoch;
    for (uint32_t e = top; e >= 1 && e + CTL_RESUME_KEEP > top; e--) {
        if (ckptstore_get(ctl->ckpts, ctl->run_id, ctl->merge.first,
                          ctl->merge.last, e)) {
            break;      /* held (or the merged stage's own): older unneeded */
        }
        assemble_epoch(ctl, e);
    }
}
