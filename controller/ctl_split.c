/* ctl_split: the merged stage split back when the dead agent returns.
 *
 * A failover with no spare merged the dead stage's blocks into a
 * neighbour (ctl_merge.c); the placement before it is remembered as
 * "home" (ctl_resume.c). When the dead agent registers again, the next
 * epoch boundary E restores home like after a failover to a spare, and
 * every stage resumes from E's checkpoints. The two ranges the merged
 * stage was made of have no checkpoint of E: they are split out of the
 * merged stage's (ckpt_split.h) before the home placement is taken. The
 * later part keeps the merged stage's head; the earlier part's head was
 * dropped at the merge, so the checkpoint of that part the merged stage
 * was assembled from is kept here for it (the store keeps only the newest
 * epochs per range, and an agent may still send older-generation copies
 * of that range); without it the head starts afresh, which the log says.
 * Any mismatch refuses the split with the reason in the log, and the
 * merged placement stays: the returning agent waits as a spare, as it
 * did before splitting existed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_split.h"
#include "ckptstore.h"
#include "ctl-private.h"
#include "log.h"
#include "topology.h"

void
ctl_split_clear(struct ctl *ctl)
{
    if (ctl->merge.head) {
        free(ctl->merge.head->buf);
        free(ctl->merge.head);
    }
    ctl->merge.head = NULL;
    ctl->merge.split_wait = 0;
    ctl->merge.split_epoch = 0;
    ctl->merge.split_refused_epoch = 0;
    ctl->merge.split_head_epoch = 0;
}

void
ctl_split_keep_head(struct ctl *ctl, uint32_t epoch)
{
    uint32_t f = ctl->merge.first, m = ctl->merge.split;
    if (!epoch || !ctl_merge_active(ctl)
        || (ctl->merge.head && ctl->merge.head->epoch >= epoch)
        || !ckptstore_get(ctl->ckpts, ctl->run_id, f, ctl->merge.last,
                          epoch)) {
        return;     /* kept already, or the merged stage starts fresh */
    }
    const struct ckpt_entry *a = ckptstore_get(ctl->ckpts, ctl->run_id, f,
                                               m, epoch);
    if (!a) {
        return;
    }
    struct ckpt_entry *copy = malloc(sizeof *copy);
    uint8_t *buf = malloc(a->len ? a->len : 1);
    if (!copy || !buf) {
        free(copy);
        free(buf);
        ET_WARN("run: no memory to keep the head of blocks %u-%u: a split "
                "back would start it afresh", f, m);
        return;
    }
    *copy = *a;
    memcpy(buf, a->buf, a->len);
    copy->buf = buf;
    if (ctl->merge.head) {
        free(ctl->merge.head->buf);
        free(ctl->merge.head);
    }
    ctl->merge.head = copy;
    ET_INFO("run: checkpoint of blocks %u-%u after epoch %u (%zu bytes, made "
            "by %s) kept for its head while blocks %u-%u run merged", f, m,
            epoch, a->len, a->producer, f, ctl->merge.last);
}

/* Whether every agent of the home placement is alive. */
static bool
home_alive(const struct ctl *ctl)
{
    if (!ctl->home.valid) {
        return false;
    }
    for (size_t s = 0; s < ctl->home.n; s++) {
        if (!ctl->agents[ctl->home.agents[s]].alive) {
            return false;
        }
    }
    return true;
}

static bool
range_is(const uint32_t r[2], uint32_t first, uint32_t last)
{
    return r[0] == first && r[1] == last;
}

/* Whether the home placement's ranges are the current ones with the
 * merged stage's in its two parts; else 'why' says where they differ. */
static bool
home_is_split(const struct ctl *ctl, char *why, size_t size)
{
    size_t n = ctl->plan.placement.n_stages, k = 0;
    uint32_t f = ctl->merge.first, m = ctl->merge.split;
    uint32_t l = ctl->merge.last;
    if (ctl->home.n != n + 1) {
        snprintf(why, size, "the placement before the failover has %zu "
                 "stages, the merged one %zu", ctl->home.n, n);
        return false;
    }
    for (size_t s = 0; s < n; s++) {
        const struct placement_stage *st = &ctl->plan.placement.stages[s];
        bool merged = st->first_block == f && st->last_block == l;
        bool ok = merged ? range_is(ctl->home.ranges[k], f, m)
                           && range_is(ctl->home.ranges[k + 1], m + 1, l)
                         : range_is(ctl->home.ranges[k], st->first_block,
                                    st->last_block);
        if (!ok && merged) {
            snprintf(why, size, "stages %zu and %zu of the placement before "
                     "the failover have blocks %u-%u and %u-%u, not the "
                     "merged stage's parts %u-%u and %u-%u", k + 1, k + 2,
                     ctl->home.ranges[k][0], ctl->home.ranges[k][1],
                     ctl->home.ranges[k + 1][0], ctl->home.ranges[k + 1][1],
                     f, m, m + 1, l);
            return false;
        }
        if (!ok) {
            snprintf(why, size, "stage %zu of the placement before the "
                     "failover has blocks %u-%u, the current stage %zu "
                     "blocks %u-%u", k + 1, ctl->home.ranges[k][0],
                     ctl->home.ranges[k][1], s + 1, st->first_block,
                     st->last_block);
            return false;
        }
        k += merged ? 2 : 1;
    }
    return true;
}

/* Logs a refused split of boundary 'epoch' once. */
static void
refuse(struct ctl *ctl, uint32_t epoch, const char *why)
{
    if (ctl->merge.split_refused_epoch == epoch) {
        return;
    }
    ctl->merge.split_refused_epoch = epoch;
    ET_ERROR("run: cannot split merged blocks %u-%u back into %u-%u and "
             "%u-%u after epoch %u: %s; the merged placement stays (the "
             "returning agent waits as a spare)", ctl->merge.first,
             ctl->merge.last, ctl->merge.first, ctl->merge.split,
             ctl->merge.split + 1, ctl->merge.last, epoch, why);
}

/* Splits the merged checkpoint 'x' of boundary 'epoch' into the store and
 * fills 'np' with the home placement. */
static bool
split_now(struct ctl *ctl, const struct ckpt_entry *x, uint32_t epoch,
          struct plan *np)
{
    uint32_t f = ctl->merge.first, m = ctl->merge.split;
    uint32_t l = ctl->merge.last;
    const struct ckpt_entry *head = ctl->merge.head;
    struct ckpt_split_part parts[2];
    char err[400], producer[64];
    snprintf(producer, sizeof producer, "%.50s/split", x->producer);
    double t0 = plan_now();
    int e = ckpt_split(x, m, head, ctl->cfg.seed, parts, err, sizeof err);
    double ms = (plan_now() - t0) * 1e3;
    for (size_t i = 0; i < 2 && !e; i++) {
        e = ckptstore_put(ctl->ckpts, producer, ctl->run_id, parts[i].first,
                          parts[i].last, epoch, parts[i].crc, parts[i].buf,
                          parts[i].len, err, sizeof err);
    }
    size_t len[2] = {parts[0].len, parts[1].len};
    ckpt_split_free(parts);
    if (e) {
        refuse(ctl, epoch, err);
        return false;
    }
    char how[160];
    if (head) {
        snprintf(how, sizeof how, "its head from its checkpoint of epoch %u "
                 "before the merge", head->epoch);
    } else {
        snprintf(how, sizeof how, "its head freshly initialised: no "
                 "checkpoint of blocks %u-%u from before the merge held", f,
                 m);
    }
    ET_INFO("run: checkpoint of merged blocks %u-%u after epoch %u split "
            "into blocks %u-%u (%zu bytes, %s) and %u-%u (%zu bytes, the "
            "merged stage's head) in %.1f ms", f, l, epoch, f, m, len[0], how,
            m + 1, l, len[1], ms);
    if (!ctl_resume_home_plan(ctl, np)) {
        return false;           /* the planner's reason is logged */
    }
    ctl->merge.split_epoch = epoch;
    ctl->merge.split_head_epoch = head ? head->epoch : 0;
    return true;
}

bool
ctl_split_ready(struct ctl *ctl, struct plan *np)
{
    uint32_t epoch = ctl->merge.split_wait;
    if (!epoch) {
        return false;
    }
    /* The wait ends with the boundary it was for: a later boundary, a
     * failover or a stage agent lost since decide anew. */
    if (!ctl_merge_active(ctl) || epoch != ctl->boundary_epoch
        || ctl->resume_wait || ctl->state != RUN_RUNNING
        || !home_alive(ctl)) {
        ctl->merge.split_wait = 0;
        return false;
    }
    const struct ckpt_entry *x = ckptstore_get(ctl->ckpts, ctl->run_id,
                                               ctl->merge.first,
                                               ctl->merge.last, epoch);
    if (!x) {
        return false;
    }
    ctl->merge.split_wait = 0;
    return split_now(ctl, x, epoch, np);
}

bool
ctl_split_home_plan(struct ctl *ctl, uint32_t epoch, struct plan *np)
{
    if (!ctl_merge_active(ctl)) {
        return ctl_resume_home_plan(ctl, np);
    }
    if (!home_alive(ctl)) {
        return false;
    }
    char why[200];
    if (!home_is_split(ctl, why, sizeof why)) {
        refuse(ctl, epoch, why);
        return false;
    }
    ctl->merge.split_wait = epoch;
    if (!ckptstore_get(ctl->ckpts, ctl->run_id, ctl->merge.first,
                       ctl->merge.last, epoch)) {
        ET_INFO("run: epoch %u boundary, agents back: the placement before "
                "the failover waits for the checkpoint of merged blocks "
                "%u-%u after epoch %u to split it", epoch, ctl->merge.first,
                ctl->merge.last, epoch);
        return false;
    }
    return ctl_split_ready(ctl, np);
}
