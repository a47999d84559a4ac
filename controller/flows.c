/* Flows: see flows.h. */
#include <config.h>

#include "flows.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byte-order.h"
#include "flow.h"
#include "hash.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-actions.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofpbuf.h"
#include "openvswitch/util.h"

void
flows_set_init(struct flows_set *set)
{
    hmap_init(&set->map);
}

void
flows_set_clear(struct flows_set *set)
{
    struct flows_entry *e;

    HMAP_FOR_EACH_POP (e, node, &set->map) {
        free(e);
    }
}

void
flows_set_destroy(struct flows_set *set)
{
    if (set) {
        flows_set_clear(set);
        hmap_destroy(&set->map);
    }
}

size_t
flows_set_count(const struct flows_set *set)
{
    return hmap_count(&set->map);
}

static uint32_t
flows_key_hash(const struct flows_key *key)
{
    return hash_bytes(key, sizeof *key, 0);
}

struct flows_entry *
flows_set_find(const struct flows_set *set, const struct flows_key *key)
{
    struct flows_entry *e;

    HMAP_FOR_EACH_WITH_HASH (e, node, flows_key_hash(key), &set->map) {
        if (!memcmp(&e->key, key, sizeof *key)) {
            return e;
        }
    }
    return NULL;
}

struct flows_entry *
flows_set_put(struct flows_set *set, const struct flows_key *key,
              uint64_t cookie, uint32_t out_port)
{
    struct flows_entry *e = flows_set_find(set, key);

    if (!e) {
        e = xmalloc(sizeof *e);
        e->key = *key;
        hmap_insert(&set->map, &e->node, flows_key_hash(key));
    }
    e->cookie = cookie;
    e->out_port = out_port;
    return e;
}

void
flows_set_remove(struct flows_set *set, struct flows_entry *e)
{
    hmap_remove(&set->map, &e->node);
    free(e);
}

void
flows_set_copy(struct flows_set *dst, const struct flows_set *src)
{
    const struct flows_entry *e;

    flows_set_clear(dst);
    hmap_reserve(&dst->map, hmap_count(&src->map));
    HMAP_FOR_EACH (e, node, &src->map) {
        struct flows_entry *c = xmemdup(e, sizeof *e);
        hmap_insert(&dst->map, &c->node, e->node.hash);
    }
}

void
flows_set_swap(struct flows_set *a, struct flows_set *b)
{
    hmap_swap(&a->map, &b->map);
}

bool
flows_entry_same(const struct flows_entry *a, const struct flows_entry *b)
{
    return a->cookie == b->cookie && a->out_port == b->out_port;
}

void
flows_key_table_miss(struct flows_key *key)
{
    memset(key, 0, sizeof *key);
    key->priority = FLOWS_PRIO_TABLE_MISS;
    key->kind = FLOWS_TABLE_MISS;
}

void
flows_key_base(struct flows_key *key, bool arp, uint32_t ip_dst)
{
    memset(key, 0, sizeof *key);
    key->priority = FLOWS_PRIO_BASE;
    key->kind = FLOWS_BASE;
    key->arp = arp;
    key->ip_dst = ip_dst;
}

void
flows_key_substream(struct flows_key *key, uint32_t in_port,
                    uint8_t ip_proto, uint32_t ip_src, uint32_t ip_dst,
                    uint16_t tp_src, uint16_t tp_dst)
{
    memset(key, 0, sizeof *key);
    key->priority = FLOWS_PRIO_SUBSTREAM;
    key->kind = FLOWS_SUBSTREAM;
    key->in_port = in_port;
    key->ip_proto = ip_proto;
    key->ip_src = ip_src;
    key->ip_dst = ip_dst;
    key->tp_src = tp_src;
    key->tp_dst = tp_dst;
}

uint64_t
flows_cookie(enum flows_kind kind, uint64_t id)
{
    return FLOWS_COOKIE_MAGIC | ((uint64_t) kind << 40)
           | (id & FLOWS_COOKIE_ID_MASK);
}

void
flows_key_to_match(const struct flows_key *key, struct match *match)
{
    match_init_catchall(match);
    switch (key->kind) {
    case FLOWS_TABLE_MISS:
        break;
    case FLOWS_BASE:
        /* For ARP, OVS keeps arp_tpa in nw_dst. */
        match_set_dl_type(match, htons(key->arp ? 0x0806 : 0x0800));
        match_set_nw_dst(match, key->ip_dst);
        break;
    case FLOWS_SUBSTREAM:
        match_set_in_port(match, u16_to_ofp(key->in_port));
        match_set_dl_type(match, htons(0x0800));
        match_set_nw_src(match, key->ip_src);
        match_set_nw_dst(match, key->ip_dst);
        match_set_nw_proto(match, key->ip_proto);
        match_set_tp_src(match, key->tp_src);
        match_set_tp_dst(match, key->tp_dst);
        break;
    }
}

bool
flows_entry_from_stats(const struct ofputil_flow_stats *fs,
                       struct flows_entry *entry)
{
    uint64_t cookie = ntohll(fs->cookie);
    const struct flow *f = &fs->match.flow;
    struct flows_key *key = &entry->key;

    memset(entry, 0, sizeof *entry);
    if (fs->table_id != 0
        || (cookie & FLOWS_COOKIE_MASK) != FLOWS_COOKIE_MAGIC) {
        return false;
    }
    switch ((cookie >> 40) & 0xff) {
    case FLOWS_TABLE_MISS:
        flows_key_table_miss(key);
        break;
    case FLOWS_BASE:
        flows_key_base(key, f->dl_type == htons(0x0806), f->nw_dst);
        break;
    case FLOWS_SUBSTREAM:
        flows_key_substream(key, ofp_to_u16(f->in_port.ofp_port),
                            f->nw_proto, f->nw_src, f->nw_dst, f->tp_src,
                            f->tp_dst);
        break;
    default:
        return false;
    }

    /* Exactly what flows_key_to_match() makes of the key, at the key's
     * priority: anything else (a wider match, an extra field) is not
     * ours, even with our cookie. */
    struct match want;
    flows_key_to_match(key, &want);
    struct match got = fs->match;
    if (got.wc.masks.packet_type == OVS_BE32_MAX
        && got.flow.packet_type == htonl(PT_ETH)) {
        got.wc.masks.packet_type = 0;   /* OXM decoding adds it for dl_type. */
    }
    match_zero_wildcarded_fields(&got);
    if (fs->priority != key->priority || !match_equal(&want, &got)) {
        return false;
    }

    /* No action (drop) or one output to a real port. */
    const struct ofpact *a;
    size_t n = 0;
    entry->out_port = FLOWS_DROP;
    OFPACT_FOR_EACH (a, fs->ofpacts, fs->ofpacts_len) {
        if (a->type != OFPACT_OUTPUT || n++) {
            return false;
        }
        uint16_t port = ofp_to_u16(ofpact_get_OUTPUT(a)->port);
        if (port == FLOWS_DROP || port >= ofp_to_u16(OFPP_MAX)) {
            return false;
        }
        entry->out_port = port;
    }
    entry->cookie = cookie;
    return true;
}

/* Encodes one flow_mod.  'entry' may be a stack copy: only its key, cookie
 * and out_port are read. */
struct ofpbuf *
flows_encode_mod(const struct flows_entry *entry, int command,
                 enum ofputil_protocol protocol)
{
    uint64_t ofpacts_stub[64 / 8];
    struct ofpbuf ofpacts;
    struct ofputil_flow_mod fm;
    struct match match;
    struct ofpbuf *msg;

    ofpbuf_use_stub(&ofpacts, ofpacts_stub, sizeof ofpacts_stub);
    if (entry->out_port != FLOWS_DROP && command != OFPFC_DELETE_STRICT) {
        ofpact_put_OUTPUT(&ofpacts)->port = u16_to_ofp(entry->out_port);
    }

    flows_key_to_match(&entry->key, &match);
    memset(&fm, 0, sizeof fm);
    minimatch_init(&fm.match, &match);
    fm.priority = entry->key.priority;
    fm.command = command;
    fm.table_id = 0;
    fm.buffer_id = UINT32_MAX;
    fm.out_port = OFPP_ANY;
    fm.out_group = OFPG_ANY;
    if (command == OFPFC_ADD) {
        fm.new_cookie = htonll(entry->cookie);
    } else if (command == OFPFC_MODIFY_STRICT) {
        fm.new_cookie = htonll(entry->cookie);
        fm.modify_cookie = true;
    } else {
        fm.new_cookie = OVS_BE64_MAX;
    }
    fm.ofpacts = ofpacts.data;
    fm.ofpacts_len = ofpacts.size;

    msg = ofputil_encode_flow_mod(&fm, protocol);
    minimatch_destroy(&fm.match);
    ofpbuf_uninit(&ofpacts);
    return msg;
}

struct ofpbuf *
flows_encode_delete_all(enum ofputil_protocol protocol)
{
    struct ofputil_flow_mod fm;
    struct match match;
    struct ofpbuf *msg;

    match_init_catchall(&match);
    memset(&fm, 0, sizeof fm);
    minimatch_init(&fm.match, &match);
    fm.priority = 0;
    fm.command = OFPFC_DELETE;
    fm.table_id = OFPTT_ALL;
    fm.buffer_id = UINT32_MAX;
    fm.out_port = OFPP_ANY;
    fm.out_group = OFPG_ANY;
    fm.new_cookie = OVS_BE64_MAX;
    msg = ofputil_encode_flow_mod(&fm, protocol);
    minimatch_destroy(&fm.match);
    return msg;
}

/* Topology checks. */

static bool
port_taken(const struct southbound_topology *topo, size_t sw, uint32_t port,
           size_t n_hosts, size_t n_links)
{
    for (size_t i = 0; i < n_hosts; i++) {
        if (topo->hosts[i].sw == sw && topo->hosts[i].port == port) {
            return true;
        }
    }
    for (size_t i = 0; i < n_links; i++) {
        for (int side = 0; side < 2; side++) {
            if (topo->links[i].sw[side] == sw
                && topo->links[i].port[side] == port) {
                return true;
            }
        }
    }
    return false;
}

static bool
port_valid(uint32_t port)
{
    /* Physical ports only: 1 to OFPP_MAX (0xff00) in OpenFlow 1.3. */
    return port >= 1 && port < 0xff00;
}

int
flows_check_topology(const struct southbound_topology *topo,
                     char *err, size_t err_len)
{
    for (size_t i = 0; i < topo->n_switches; i++) {
        for (size_t j = 0; j < i; j++) {
            if (topo->switches[i].dpid == topo->switches[j].dpid) {
                snprintf(err, err_len, "switches %s and %s have the same "
                         "datapath id %#"PRIx64, topo->switches[j].name,
                         topo->switches[i].name, topo->switches[i].dpid);
                return EINVAL;
            }
        }
    }
    for (size_t i = 0; i < topo->n_hosts; i++) {
        const struct southbound_host *h = &topo->hosts[i];

        if (h->sw >= topo->n_switches) {
            snprintf(err, err_len, "host %s: switch index %zu out of range",
                     h->name, h->sw);
            return EINVAL;
        }
        if (!port_valid(h->port)) {
            snprintf(err, err_len, "host %s: bad port %"PRIu32, h->name,
                     h->port);
            return EINVAL;
        }
        if (port_taken(topo, h->sw, h->port, i, 0)) {
            snprintf(err, err_len, "host %s: port %"PRIu32" of switch %s is "
                     "used twice", h->name, h->port,
                     topo->switches[h->sw].name);
            return EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (topo->hosts[j].ip == h->ip) {
                snprintf(err, err_len, "hosts %s and %s have the same "
                         "address", topo->hosts[j].name, h->name);
                return EINVAL;
            }
        }
    }
    for (size_t i = 0; i < topo->n_links; i++) {
        const struct southbound_link *l = &topo->links[i];

        for (int side = 0; side < 2; side++) {
            if (l->sw[side] >= topo->n_switches) {
                snprintf(err, err_len, "link %zu: switch index %zu out of "
                         "range", i, l->sw[side]);
                return EINVAL;
            }
            if (!port_valid(l->port[side])) {
                snprintf(err, err_len, "link %zu: bad port %"PRIu32, i,
                         l->port[side]);
                return EINVAL;
            }
            if (port_taken(topo, l->sw[side], l->port[side], topo->n_hosts,
                           i)) {
                snprintf(err, err_len, "link %zu: port %"PRIu32" of switch "
                         "%s is used twice", i, l->port[side],
                         topo->switches[l->sw[side]].name);
                return EINVAL;
            }
        }
        if (l->sw[0] == l->sw[1]) {
            snprintf(err, err_len, "link %zu: both ends on switch %s", i,
                     topo->switches[l->sw[0]].name);
            return EINVAL;
        }
    }
    return 0;
}

/* Returns the side (0 or 1) of link 'l' that is on switch 'sw', or -1. */
static int
link_side(const struct southbound_link *l, size_t sw)
{
    return l->sw[0] == sw ? 0 : l->sw[1] == sw ? 1 : -1;
}

int
flows_check_route(const struct southbound_topology *topo,
                  const struct southbound_route *r, char *err,
                  size_t err_len)
{
    if (r->src_host >= topo->n_hosts || r->dst_host >= topo->n_hosts
        || r->src_host == r->dst_host) {
        snprintf(err, err_len, "route %"PRIu64": bad hosts %zu -> %zu",
                 r->id, r->src_host, r->dst_host);
        return EINVAL;
    }
    if (r->ip_proto != IPPROTO_TCP && r->ip_proto != IPPROTO_UDP) {
        snprintf(err, err_len, "route %"PRIu64": protocol %u is neither "
                 "TCP nor UDP", r->id, r->ip_proto);
        return EINVAL;
    }
    size_t sw = topo->hosts[r->src_host].sw;
    for (size_t i = 0; i < r->n_links; i++) {
        int side;

        if (r->links[i] >= topo->n_links) {
            snprintf(err, err_len, "route %"PRIu64": hop %zu: link index "
                     "%zu out of range", r->id, i, r->links[i]);
            return EINVAL;
        }
        side = link_side(&topo->links[r->links[i]], sw);
        if (side < 0) {
            snprintf(err, err_len, "route %"PRIu64": hop %zu: link %zu does "
                     "not touch switch %s", r->id, i, r->links[i],
                     topo->switches[sw].name);
            return EINVAL;
        }
        sw = topo->links[r->links[i]].sw[!side];
    }
    if (sw != topo->hosts[r->dst_host].sw) {
        snprintf(err, err_len, "route %"PRIu64": path ends at switch %s, "
                 "host %s is on %s", r->id, topo->switches[sw].name,
                 topo->hosts[r->dst_host].name,
                 topo->switches[topo->hosts[r->dst_host].sw].name);
        return EINVAL;
    }
    return 0;
}

/* Links at each switch, in link index order: the links of switch s are
 * links[first[s] .. first[s + 1] - 1]. */
struct flows_adjacency {
    size_t *first;              /* n_switches + 1. */
    size_t *links;              /* 2 * n_links. */
};

static void
flows_adjacency_init(struct flows_adjacency *adj,
                     const struct southbound_topology *topo)
{
    size_t ns = topo->n_switches;

    adj->first = xcalloc(ns + 2, sizeof *adj->first);
    adj->links = xmalloc((2 * topo->n_links + 1) * sizeof *adj->links);
    for (size_t l = 0; l < topo->n_links; l++) {
        adj->first[topo->links[l].sw[0] + 2]++;
        adj->first[topo->links[l].sw[1] + 2]++;
    }
    for (size_t s = 2; s < ns + 2; s++) {
        adj->first[s] += adj->first[s - 1];
    }
    /* first[s + 1] is the next free slot of switch s while filling. */
    for (size_t l = 0; l < topo->n_links; l++) {
        adj->links[adj->first[topo->links[l].sw[0] + 1]++] = l;
        adj->links[adj->first[topo->links[l].sw[1] + 1]++] = l;
    }
}

static void
flows_adjacency_destroy(struct flows_adjacency *adj)
{
    free(adj->first);
    free(adj->links);
}

/* Breadth-first search from switch 'root' over links that are up.  For
 * every reached switch s != root, 'via[s]' is the link that leads one hop
 * closer to 'root'; SIZE_MAX for root and unreached switches.  Links are
 * scanned in index order, so ties go to lower indexes. */
static void
bfs_tree(const struct southbound_topology *topo,
         const struct flows_adjacency *adj, const bool *link_up,
         size_t root, size_t *via, size_t *queue, bool *seen)
{
    size_t head = 0, tail = 0;

    for (size_t i = 0; i < topo->n_switches; i++) {
        via[i] = SIZE_MAX;
        seen[i] = false;
    }
    seen[root] = true;
    queue[tail++] = root;
    while (head < tail) {
        size_t s = queue[head++];

        for (size_t i = adj->first[s]; i < adj->first[s + 1]; i++) {
            size_t l = adj->links[i];

            if (!link_up[l]) {
                continue;
            }
            size_t t = topo->links[l].sw[!link_side(&topo->links[l], s)];
            if (!seen[t]) {
                seen[t] = true;
                via[t] = l;
                queue[tail++] = t;
            }
        }
    }
}

int
flows_shortest_path(const struct southbound_topology *topo,
                    const bool *link_up, size_t src, size_t dst,
                    size_t *links, size_t max, size_t *n)
{
    size_t ns = topo->n_switches;
    size_t *via = xmalloc(2 * ns * sizeof *via);
    bool *seen = xmalloc(ns * sizeof *seen);
    size_t s = topo->hosts[src].sw;
    size_t d = topo->hosts[dst].sw;
    struct flows_adjacency adj;
    int error = 0;

    /* A tree towards 'd' read from 's' gives the path in order. */
    flows_adjacency_init(&adj, topo);
    bfs_tree(topo, &adj, link_up, d, via, via + ns, seen);
    *n = 0;
    if (!seen[s]) {
        error = ENETUNREACH;
    }
    while (!error && s != d) {
        size_t l = via[s];

        if (*n >= max) {
            error = E2BIG;
            break;
        }
        links[(*n)++] = l;
        s = topo->links[l].sw[!link_side(&topo->links[l], s)];
    }
    flows_adjacency_destroy(&adj);
    free(via);
    free(seen);
    return error;
}

static void
put_route_flows(const struct southbound_topology *topo,
                const struct southbound_route *r, struct flows_set *sets)
{
    const struct southbound_host *src = &topo->hosts[r->src_host];
    const struct southbound_host *dst = &topo->hosts[r->dst_host];
    uint64_t cookie = flows_cookie(FLOWS_SUBSTREAM, r->id);
    uint16_t sport = htons(r->src_port), dport = htons(r->dst_port);
    size_t sw = src->sw;
    uint32_t in_port = src->port;

    for (size_t i = 0; i <= r->n_links; i++) {
        const struct southbound_link *l = NULL;
        uint32_t out_port;
        size_t next = sw;
        struct flows_key key;

        if (i < r->n_links) {
            l = &topo->links[r->links[i]];
            int side = link_side(l, sw);
            out_port = l->port[side];
            next = l->sw[!side];
        } else {
            out_port = dst->port;
        }

        flows_key_substream(&key, in_port, r->ip_proto, src->ip, dst->ip,
                            sport, dport);
        flows_set_put(&sets[sw], &key, cookie, out_port);
        flows_key_substream(&key, out_port, r->ip_proto, dst->ip, src->ip,
                            dport, sport);
        flows_set_put(&sets[sw], &key, cookie, in_port);

        if (l) {
            in_port = l->port[link_side(l, next)];
            sw = next;
        }
    }
}

void
flows_compute(const struct southbound_topology *topo, const bool *link_up,
              const struct southbound_route *routes, size_t n_routes,
              struct flows_set *sets, size_t *n_withdrawn)
{
    size_t ns = topo->n_switches;
    size_t *via = xmalloc(2 * ns * sizeof *via);
    bool *seen = xmalloc(ns * sizeof *seen);
    size_t withdrawn = 0;
    struct flows_adjacency adj;

    flows_adjacency_init(&adj, topo);
    for (size_t s = 0; s < ns; s++) {
        struct flows_key key;

        flows_set_clear(&sets[s]);
        flows_key_table_miss(&key);
        flows_set_put(&sets[s], &key, flows_cookie(FLOWS_TABLE_MISS, 0),
                      FLOWS_DROP);
    }

    /* Base connectivity: one tree per destination switch, reused by every
     * host on it. */
    size_t tree_root = SIZE_MAX;
    for (size_t h = 0; h < topo->n_hosts; h++) {
        const struct southbound_host *host = &topo->hosts[h];
        uint64_t cookie = flows_cookie(FLOWS_BASE, h);

        if (tree_root != host->sw) {
            bfs_tree(topo, &adj, link_up, host->sw, via, via + ns, seen);
            tree_root = host->sw;
        }
        for (size_t s = 0; s < ns; s++) {
            uint32_t out_port;
            struct flows_key key;

            if (s == host->sw) {
                out_port = host->port;
            } else if (seen[s]) {
                const struct southbound_link *l = &topo->links[via[s]];
                out_port = l->port[link_side(l, s)];
            } else {
                continue;
            }
            flows_key_base(&key, false, host->ip);
            flows_set_put(&sets[s], &key, cookie, out_port);
            flows_key_base(&key, true, host->ip);
            flows_set_put(&sets[s], &key, cookie, out_port);
        }
    }

    for (size_t i = 0; i < n_routes; i++) {
        const struct southbound_route *r = &routes[i];
        bool usable = true;

        for (size_t j = 0; j < r->n_links; j++) {
            usable = usable && link_up[r->links[j]];
        }
        if (usable) {
            put_route_flows(topo, r, sets);
        } else {
            withdrawn++;
        }
    }
    if (n_withdrawn) {
        *n_withdrawn = withdrawn;
    }
    flows_adjacency_destroy(&adj);
    free(via);
    free(seen);
}
