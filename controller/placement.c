/* placement: bottleneck DP and the naive policies. See placement.h. */
#include "placement.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
placement_clear(struct placement *pl)
{
    if (pl) {
        free(pl->stages);
        memset(pl, 0, sizeof *pl);
    }
}

static int
check_problem(const struct placement_problem *p)
{
    if (!p->n_blocks || !p->n_agents || !p->batch || !p->blocks
        || !p->agents || !p->rate_mbps || !p->delay_ms) {
        return EINVAL;
    }
    for (size_t a = 0; a < p->n_agents; a++) {
        if (!(p->agents[a].gflops > 0)) {
            return EINVAL;
        }
    }
    return 0;
}

double
placement_compute_s(const struct placement_problem *p, size_t agent,
                    uint32_t first, uint32_t last)
{
    double cost = p->blocks[last - 1].head_train_flops;
    for (uint32_t b = first; b <= last; b++) {
        cost += p->blocks[b - 1].train_cost;
    }
    return cost * p->batch / (p->agents[agent].gflops * 1e9);
}

double
placement_wire_bytes(const struct placement_problem *p, uint32_t block)
{
    double value = p->value_bytes > 0 ? p->value_bytes : 4;
    return p->blocks[block - 1].out_bytes * value / 4;
}

double
placement_transfer_s(const struct placement_problem *p, size_t from,
                     size_t to, uint32_t after_block)
{
    double rate = p->rate_mbps[from * p->n_agents + to];
    if (!(rate > 0)) {
        return INFINITY;
    }
    double bits = placement_wire_bytes(p, after_block) * p->batch * 8;
    return bits / (rate * 1e6) + p->delay_ms[from * p->n_agents + to] / 1e3;
}

static double
stage_input_bytes(const struct placement_problem *p, uint32_t first)
{
    return first == 1 ? p->input_bytes : p->blocks[first - 2].out_bytes;
}

static bool
fits(const struct placement_problem *p, size_t agent, double mem)
{
    return !(p->agents[agent].memory_bytes > 0)
           || mem <= p->agents[agent].memory_bytes;
}

int
placement_evaluate(const struct placement_problem *p, struct placement *pl)
{
    int err = 0;
    pl->bottleneck_s = 0;
    for (size_t s = 0; s < pl->n_stages; s++) {
        struct placement_stage *st = &pl->stages[s];
        st->compute_s = placement_compute_s(p, st->agent, st->first_block,
                                            st->last_block);
        st->transfer_s = s ? placement_transfer_s(p, pl->stages[s - 1].agent,
                                                  st->agent,
                                                  st->first_block - 1)
                           : 0;
        st->memory_bytes = blockcost_stage_memory(
            p->blocks, st->first_block, st->last_block, p->batch,
            stage_input_bytes(p, st->first_block));
        if (!fits(p, st->agent, st->memory_bytes)) {
            err = ENOSPC;
        }
        double t = fmax(st->compute_s, st->transfer_s);
        pl->bottleneck_s = fmax(pl->bottleneck_s, t);
    }
    return err;
}

/* Back-pointer of one DP state. */
struct dp_back {
    int j;        /* previous stage ended after block j (0: none) */
    int a;        /* its agent */
    int s;        /* its stage-count index */
};

/* Compute time of blocks j+1..i on agent 'a', or INFINITY if the stage does
 * not fit its memory. F, P, M: prefix sums of training costs, parameters
 * and saved bytes per image. */
static double
dp_stage_cost(const struct placement_problem *p, const double *F,
              const double *P, const double *M, size_t a, size_t j, size_t i)
{
    double mem = 16.0 * (P[i] - P[j] + p->blocks[i - 1].head_params)
                 + p->batch * (M[i] - M[j]
                               + 2 * stage_input_bytes(p, (uint32_t) j + 1));
    if (!fits(p, a, mem)) {
        return INFINITY;
    }
    return (F[i] - F[j] + p->blocks[i - 1].head_train_flops) * p->batch
           / (p->agents[a].gflops * 1e9);
}

int
placement_bottleneck_dp(const struct placement_problem *p,
                        struct placement *out)
{
    placement_clear(out);
    int err = check_problem(p);
    if (err) {
        return err;
    }
    const size_t B = p->n_blocks, A = p->n_agents;
    const bool counted = p->stages > 0;
    const size_t S = counted ? p->stages : 1;
    if (counted && (S > A || S > B)) {
        return ENOSPC;
    }
    /* Prefix sums of training costs, parameters and saved bytes. */
    double *F = xcalloc(B + 1, sizeof *F);
    double *P = xcalloc(B + 1, sizeof *P);
    double *M = xcalloc(B + 1, sizeof *M);
    for (size_t b = 1; b <= B; b++) {
        F[b] = F[b - 1] + p->blocks[b - 1].train_cost;
        P[b] = P[b - 1] + p->blocks[b - 1].params;
        M[b] = M[b - 1] + p->blocks[b - 1].saved_bytes;
    }
#define IDX(i, a, s) (((size_t) (i) * A + (a)) * S + (s))
    size_t n_states = (B + 1) * A * S;
    double *best = xcalloc(n_states, sizeof *best);
    struct dp_back *back = xcalloc(n_states, sizeof *back);
    for (size_t k = 0; k < n_states; k++) {
        best[k] = INFINITY;
    }
    for (size_t i = 1; i <= B; i++) {
        best[IDX(i, 0, 0)] = dp_stage_cost(p, F, P, M, 0, 0, i);
        back[IDX(i, 0, 0)] = (struct dp_back) {0, 0, 0};
    }
    for (size_t i = 2; i <= B; i++) {
        for (size_t a = 1; a < A; a++) {
            for (size_t j = 1; j < i; j++) {
                double c = dp_stage_cost(p, F, P, M, a, j, i);
                if (c == INFINITY) {
                    continue;
                }
                for (size_t a2 = 0; a2 < a; a2++) {
                    double t = placement_transfer_s(p, a2, a, (uint32_t) j);
                    double ct = fmax(c, t);
                    for (size_t s = 0; s < S; s++) {
                        size_t ns = counted ? s + 1 : 0;
                        if (ns >= S) {
                            break;
                        }
                        double prev = best[IDX(j, a2, s)];
                        if (prev == INFINITY) {
                            continue;
                        }
                        double v = fmax(prev, ct);
                        if (v < best[IDX(i, a, ns)]) {
                            best[IDX(i, a, ns)] = v;
                            back[IDX(i, a, ns)] = (struct dp_back) {
                                (int) j, (int) a2, (int) s};
                        }
                    }
                }
            }
        }
    }
    size_t best_a = 0;
    double best_v = INFINITY;
    for (size_t a = 0; a < A; a++) {
        if (best[IDX(B, a, S - 1)] < best_v) {
            best_v = best[IDX(B, a, S - 1)];
            best_a = a;
        }
    }
    if (best_v == INFINITY) {
        err = ENOSPC;
    } else {
        /* Walk the back-pointers twice: count, then fill from the end. */
        size_t n = 0;
        int i = (int) B, a = (int) best_a, s = (int) S - 1;
        while (i > 0) {
            struct dp_back bk = back[IDX(i, a, s)];
            n++;
            i = bk.j, a = bk.a, s = bk.s;
        }
        out->stages = xcalloc(n, sizeof *out->stages);
        out->n_stages = n;
        i = (int) B, a = (int) best_a, s = (int) S - 1;
        while (i > 0) {
            struct dp_back bk = back[IDX(i, a, s)];
            struct placement_stage *st = &out->stages[--n];
            st->agent = (size_t) a;
            st->first_block = (uint32_t) bk.j + 1;
            st->last_block = (uint32_t) i;
            i = bk.j, a = bk.a, s = bk.s;
        }
        placement_evaluate(p, out);
    }
#undef IDX
    free(F);
    free(P);
    free(M);
    free(best);
    free(back);
    return err;
}

/* N stages of equal block count (the first B mod N one block longer) on
 * agents[order[0..N-1]]. */
static int
place_equal_on(const struct placement_problem *p, const size_t *order,
               size_t n, struct placement *out)
{
    out->stages = xcalloc(n, sizeof *out->stages);
    out->n_stages = n;
    uint32_t next = 1;
    for (size_t s = 0; s < n; s++) {
        uint32_t len = (uint32_t) (p->n_blocks / n + (s < p->n_blocks % n));
        out->stages[s].agent = order[s];
        out->stages[s].first_block = next;
        out->stages[s].last_block = next + len - 1;
        next += len;
    }
    return placement_evaluate(p, out);
}

int
placement_single(const struct placement_problem *p, struct placement *out)
{
    placement_clear(out);
    int err = check_problem(p);
    if (err) {
        return err;
    }
    size_t zero = 0;
    return place_equal_on(p, &zero, 1, out);
}

static size_t
equal_stage_count(const struct placement_problem *p)
{
    size_t n = p->stages ? p->stages
               : (p->n_agents < p->n_blocks ? p->n_agents : p->n_blocks);
    return n;
}

int
placement_equal(const struct placement_problem *p, struct placement *out)
{
    placement_clear(out);
    int err = check_problem(p);
    if (err) {
        return err;
    }
    size_t n = equal_stage_count(p);
    if (n > p->n_agents || n > p->n_blocks) {
        return ENOSPC;
    }
    size_t *order = xcalloc(n, sizeof *order);
    for (size_t s = 0; s < n; s++) {
        order[s] = s;
    }
    err = place_equal_on(p, order, n, out);
    free(order);
    return err;
}

int
placement_round_robin(const struct placement_problem *p,
                      struct placement *out)
{
    placement_clear(out);
    int err = check_problem(p);
    if (err) {
        return err;
    }
    size_t n = equal_stage_count(p);
    if (n > p->n_agents || n > p->n_blocks) {
        return ENOSPC;
    }
    /* Source first, then the others by their topology index. */
    size_t *order = xcalloc(p->n_agents, sizeof *order);
    order[0] = 0;
    size_t k = 1;
    for (;;) {
        size_t pick = SIZE_MAX;
        for (size_t a = 1; a < p->n_agents; a++) {
            bool used = false;
            for (size_t q = 1; q < k; q++) {
                used |= order[q] == a;
            }
            if (!used && (pick == SIZE_MAX
                          || p->agents[a].id < p->agents[pick].id)) {
                pick = a;
            }
        }
        if (pick == SIZE_MAX) {
            break;
        }
        order[k++] = pick;
    }
    err = place_equal_on(p, order, n, out);
    free(order);
    return err;
}

void
placement_chain_order(size_t n, const double *rate_mbps, const double *gflops,
                      size_t source, size_t *order)
{
    bool *used = xcalloc(n, sizeof *used);
    size_t cur = source;
    order[0] = source;
    used[source] = true;
    for (size_t k = 1; k < n; k++) {
        size_t pick = SIZE_MAX;
        for (size_t a = 0; a < n; a++) {
            if (used[a]) {
                continue;
            }
            if (pick == SIZE_MAX) {
                pick = a;
                continue;
            }
            double r = rate_mbps[cur * n + a], rp = rate_mbps[cur * n + pick];
            if (r > rp || (r == rp && gflops[a] > gflops[pick])) {
                pick = a;
            }
        }
        order[k] = pick;
        used[pick] = true;
        cur = pick;
    }
    free(used);
}
