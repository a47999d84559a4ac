/* topogen: random connected topologies. See topogen.h. */
#include "topogen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkstate.h"
#include "topology.h"

/* splitmix64: small, good enough, deterministic everywhere. */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
rnd_unit(uint64_t *s)
{
    return (rnd(s) >> 11) * (1.0 / 9007199254740992.0);
}

static char *
fmt(const char *f, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, f, i);
    return strdup(buf);
}

int
topogen_random(size_t n_switches, size_t n_links, size_t n_agents,
               uint64_t seed, struct topology **topop)
{
    *topop = NULL;
    if (!n_switches || n_links + 1 < n_switches || n_agents > n_switches
        || n_links > n_switches * (n_switches - 1) / 2) {
        return EINVAL;
    }
    uint64_t s = seed;
    struct topology *t = calloc(1, sizeof *t);
    t->name = strdup("random");
    t->n_switches = n_switches;
    t->switches = calloc(n_switches, sizeof *t->switches);
    uint32_t *next_port = calloc(n_switches, sizeof *next_port);
    for (size_t i = 0; i < n_switches; i++) {
        t->switches[i].name = fmt("s%zu", i);
        t->switches[i].dpid = i + 1;
        next_port[i] = 1;
    }
    t->links = calloc(n_links + n_agents, sizeof *t->links);
    /* Pair set: open addressing on (min, max). */
    size_t cap = 1;
    while (cap < 4 * (n_links + 1)) {
        cap <<= 1;
    }
    uint64_t *pairs = calloc(cap, sizeof *pairs);
    static const double caps[3] = {100, 1000, 10000};
    size_t made = 0;
    while (made < n_links) {
        size_t a, b;
        if (made + 1 < n_switches) {
            b = made + 1;                       /* spanning tree first */
            a = rnd(&s) % b;
        } else {
            a = rnd(&s) % n_switches;
            b = rnd(&s) % n_switches;
            if (a == b) {
                continue;
            }
        }
        uint64_t key = ((uint64_t) (a < b ? a : b) << 32 | (a < b ? b : a)) + 1;
        size_t h = (key * 0x9e3779b97f4a7c15ull) & (cap - 1);
        while (pairs[h] && pairs[h] != key) {
            h = (h + 1) & (cap - 1);
        }
        if (pairs[h]) {
            continue;
        }
        pairs[h] = key;
        struct topo_link *l = &t->links[n_agents + made++];
        l->a = (int) a;
        l->b = (int) b;
        l->a_port = next_port[a]++;
        l->b_port = next_port[b]++;
        l->capacity_mbps = caps[rnd(&s) % 3];
        l->delay_ms = 0.1 + 4.9 * rnd_unit(&s);
    }
    /* Agents on distinct switches (partial Fisher-Yates). */
    size_t *perm = calloc(n_switches, sizeof *perm);
    for (size_t i = 0; i < n_switches; i++) {
        perm[i] = i;
    }
    t->n_agents = n_agents;
    t->agents = calloc(n_agents ? n_agents : 1, sizeof *t->agents);
    for (size_t i = 0; i < n_agents; i++) {
        size_t j = i + rnd(&s) % (n_switches - i);
        size_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
        struct topo_agent *ag = &t->agents[i];
        char buf[64];
        ag->name = fmt("a%zu", i);
        ag->ip = 0x0a000000u | (uint32_t) (i + 1);
        ag->data_port = 7100;
        snprintf(buf, sizeof buf, "10.%u.%u.%u:7100",
                 (ag->ip >> 16) & 255, (ag->ip >> 8) & 255, ag->ip & 255);
        ag->data_addr = strdup(buf);
        ag->sw = (int) perm[i];
        ag->port = next_port[perm[i]]++;
        ag->gflops = 5 + 25 * rnd_unit(&s);
        ag->memory_bytes = (1 + rnd(&s) % 4) << 30;
        struct topo_link *l = &t->links[i];
        l->a = (int) (n_switches + i);
        l->b = ag->sw;
        l->b_port = ag->port;
        l->capacity_mbps = 1000;
        l->delay_ms = 0.05;
        l->access = true;
    }
    t->n_links = n_links + n_agents;
    free(perm);
    free(pairs);
    free(next_port);
    *topop = t;
    return 0;
}

void
topogen_random_load(struct linkstate *ls, double max, uint64_t seed)
{
    uint64_t s = seed ^ 0x5eed;
    for (size_t l = 0; l < ls->n_links; l++) {
        for (int d = 0; d < 2; d++) {
            linkstate_set_rate(ls, l, d, ls->links[l].capacity_mbps * max
                                             * rnd_unit(&s));
        }
    }
}
