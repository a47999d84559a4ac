/* Flows: the model of what edgetrain installs in each switch's table 0.
 *
 * A flow is a compact key (priority plus the few fields edgetrain matches
 * on) and one action (output to a port, or drop).  A flows_set is one
 * switch's set, hashed on the key; the controller keeps two per switch,
 * desired and installed, and the difference becomes flow_mods.
 *
 * Layout (docs/openflow.md has the figure):
 *
 *   priority 0      table-miss: drop
 *   priority 100    base IPv4: ip,nw_dst=H          -> port towards host H
 *   priority 100    base ARP:  arp,arp_tpa=H        -> port towards host H
 *   priority 1000   sub-stream, one per direction and switch:
 *                   in_port,ip,nw_src,nw_dst,nw_proto,tp_src,tp_dst -> port
 *
 * Cookies: 0xed6e in the top 16 bits marks edgetrain, the next 8 bits the
 * kind (1 table-miss, 2 base, 3 sub-stream) and the low 40 bits the host
 * index (base) or route id (sub-stream). */
#ifndef ET_FLOWS_H
#define ET_FLOWS_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openvswitch/hmap.h"
#include "openvswitch/ofp-protocol.h"
#include "southbound.h"

struct ofpbuf;
struct match;
struct ofputil_flow_stats;

#define FLOWS_COOKIE_MAGIC   0xed6e000000000000ULL
#define FLOWS_COOKIE_MASK    0xffff000000000000ULL
#define FLOWS_COOKIE_ID_MASK 0x000000ffffffffffULL

enum flows_kind {
    FLOWS_TABLE_MISS = 1,       /* Matches everything. */
    FLOWS_BASE = 2,             /* ip/arp by destination address. */
    FLOWS_SUBSTREAM = 3,        /* Exact 5-tuple plus in_port. */
};

enum flows_priority {
    FLOWS_PRIO_TABLE_MISS = 0,
    FLOWS_PRIO_BASE = 100,
    FLOWS_PRIO_SUBSTREAM = 1000,
};

/* What a flow matches.  Fields not used by 'kind' are zero, so the key can
 * be hashed and compared as bytes.  Addresses and ports in network order. */
struct flows_key {
    uint16_t priority;
    uint8_t kind;               /* enum flows_kind. */
    uint8_t arp;                /* FLOWS_BASE: 1 matches ARP by arp_tpa,
                                 * 0 matches IPv4 by nw_dst. */
    uint8_t ip_proto;           /* FLOWS_SUBSTREAM. */
    uint8_t pad[3];
    uint32_t in_port;           /* FLOWS_SUBSTREAM. */
    uint32_t ip_src;            /* FLOWS_SUBSTREAM. */
    uint32_t ip_dst;            /* FLOWS_BASE, FLOWS_SUBSTREAM. */
    uint16_t tp_src, tp_dst;    /* FLOWS_SUBSTREAM. */
};

/* The drop action: no output. */
#define FLOWS_DROP 0

struct flows_entry {
    struct hmap_node node;      /* In flows_set's 'map', hash of 'key'. */
    struct flows_key key;
    uint64_t cookie;
    uint32_t out_port;          /* OpenFlow port, or FLOWS_DROP. */
};

/* One switch's flows. */
struct flows_set {
    struct hmap map;            /* Contains "struct flows_entry"s. */
};

void flows_set_init(struct flows_set *);
void flows_set_destroy(struct flows_set *);
void flows_set_clear(struct flows_set *);
size_t flows_set_count(const struct flows_set *);
void flows_set_copy(struct flows_set *dst, const struct flows_set *src);
void flows_set_swap(struct flows_set *, struct flows_set *);

/* Adds a flow for 'key' (replacing an existing one's action and cookie)
 * and returns it.  Owned by the set. */
struct flows_entry *flows_set_put(struct flows_set *,
                                  const struct flows_key *key,
                                  uint64_t cookie, uint32_t out_port);
struct flows_entry *flows_set_find(const struct flows_set *,
                                   const struct flows_key *key);
void flows_set_remove(struct flows_set *, struct flows_entry *);

/* True if 'a' and 'b' do the same thing (action and cookie). */
bool flows_entry_same(const struct flows_entry *a,
                      const struct flows_entry *b);

/* Key constructors (they zero what they do not set). */
void flows_key_table_miss(struct flows_key *);
void flows_key_base(struct flows_key *, bool arp, uint32_t ip_dst);
void flows_key_substream(struct flows_key *, uint32_t in_port,
                         uint8_t ip_proto, uint32_t ip_src, uint32_t ip_dst,
                         uint16_t tp_src, uint16_t tp_dst);

uint64_t flows_cookie(enum flows_kind, uint64_t id);

/* Fills 'match' from 'key'. */
void flows_key_to_match(const struct flows_key *key, struct match *match);

/* Reads one flow of a switch's flow statistics reply back into the model:
 * fills 'entry' (key, cookie, out_port; not its hmap node) and returns
 * true if 'fs' is exactly a flow edgetrain installs (table 0, an edgetrain
 * cookie of a known kind, the match and priority that kind's key gives,
 * and no action or one output).  Returns false for anything else (another
 * controller's or a hand-added flow). */
bool flows_entry_from_stats(const struct ofputil_flow_stats *fs,
                            struct flows_entry *entry);

/* Encodes a flow_mod for 'entry' with OFPFC_* 'command' (ADD,
 * MODIFY_STRICT, DELETE_STRICT) in 'protocol'.  Caller owns the result. */
struct ofpbuf *flows_encode_mod(const struct flows_entry *entry,
                                int command, enum ofputil_protocol protocol);

/* Encodes a flow_mod that deletes every flow in every table. */
struct ofpbuf *flows_encode_delete_all(enum ofputil_protocol protocol);

/* Computing the desired flows from the topology. */

/* Checks that 'topo' is consistent: indexes in range, no duplicate dpid,
 * no port used twice on a switch, no host address twice.  On error writes
 * a message naming what and where into 'err' (size 'err_len'). */
int flows_check_topology(const struct southbound_topology *topo,
                         char *err, size_t err_len);

/* Checks that 'route' is a path from its source host's switch to its
 * destination host's switch over 'topo''s links. */
int flows_check_route(const struct southbound_topology *topo,
                      const struct southbound_route *route,
                      char *err, size_t err_len);

/* Shortest path (fewest hops, ties to lower link indexes) between the
 * switches of hosts 'src' and 'dst' over links whose 'link_up' is true.
 * Stores up to 'max' link indexes in 'links' and their number in '*n'.
 * Returns ENETUNREACH if there is none, E2BIG if longer than 'max'. */
int flows_shortest_path(const struct southbound_topology *topo,
                        const bool *link_up, size_t src, size_t dst,
                        size_t *links, size_t max, size_t *n);

/* Computes the desired flows of every switch: 'sets' has topo->n_switches
 * sets, which are cleared first.  'link_up' has one entry per link.
 * Base flows follow, per destination host, a shortest-path tree over the
 * links that are up (loop-free by construction).  Each route in 'routes'
 * whose links are all up adds its exact-match flows in both directions;
 * the others are skipped and counted in '*n_withdrawn' (if nonnull). */
void flows_compute(const struct southbound_topology *topo,
                   const bool *link_up,
                   const struct southbound_route *routes, size_t n_routes,
                   struct flows_set *sets, size_t *n_withdrawn);

#endif /* ET_FLOWS_H */
