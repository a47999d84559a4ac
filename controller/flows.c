/* flows: the desired OpenFlow state computed from topology and plan.
 * See flows.h. Also implements the sb_flow_set helpers of southbound.h. */
#include "flows.h"

#include <stdlib.h>
#include <string.h>

struct sb_flow_set *
sb_flow_set_create(uint64_t generation)
{
    struct sb_flow_set *set = calloc(1, sizeof *set);
    if (!set) {
        abort();
    }
    set->generation = generation;
    return set;
}

void
sb_flow_set_add(struct sb_flow_set *set, const struct sb_flow *flow)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? 2 * set->cap : 64;
        set->flows = realloc(set->flows, set->cap * sizeof *set->flows);
        if (!set->flows) {
            abort();
        }
    }
    set->flows[set->n++] = *flow;
}

#define CMP_FIELD(F) if (a->F != b->F) return a->F < b->F ? -1 : 1

static int
sb_flow_cmp(const void *a_, const void *b_)
{
    const struct sb_flow *a = a_, *b = b_;
    CMP_FIELD(dpid);
    CMP_FIELD(priority);
    CMP_FIELD(eth_type);
    CMP_FIELD(in_port);
    CMP_FIELD(nw_src);
    CMP_FIELD(nw_dst);
    CMP_FIELD(ip_proto);
    CMP_FIELD(tp_src);
    CMP_FIELD(tp_dst);
    CMP_FIELD(out_port);
    return 0;
}

void
sb_flow_set_sort(struct sb_flow_set *set)
{
    if (set->n) {
        qsort(set->flows, set->n, sizeof *set->flows, sb_flow_cmp);
    }
}

void
sb_flow_set_destroy(struct sb_flow_set *set)
{
    if (set) {
        free(set->flows);
        free(set);
    }
}
