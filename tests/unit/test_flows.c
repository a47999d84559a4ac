/* Flow model: topology checks, base connectivity (loop-free, re-routed on
 * link failure), sub-stream flows in both directions, flow_mod encoding. */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "byte-order.h"
#include "flow.h"
#include "flows.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-actions.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-msgs.h"
#include "openvswitch/ofpbuf.h"

/* A diamond with a chord:
 *
 *        s1 ---0--- s2
 *   h1 --|  \       |
 *        1   4      2
 *        |     \    |
 *        s3 ---3--- s4 -- h2
 *
 * Ports: s1: h1=1, l0=2, l1=3, l4=4; s2: l0=1, l2=2; s3: l1=1, l3=2;
 * s4: l2=1, l3=2, l4=3, h2=4. */
static const struct southbound_switch switches[] = {
    {"s1", 1}, {"s2", 2}, {"s3", 3}, {"s4", 4},
};
static struct southbound_host hosts[2];
static const struct southbound_link links[] = {
    {{0, 1}, {2, 1}},
    {{0, 2}, {3, 1}},
    {{1, 3}, {2, 1}},
    {{2, 3}, {2, 2}},
    {{0, 3}, {4, 3}},
};

static struct southbound_topology
diamond(void)
{
    hosts[0] = (struct southbound_host) {"h1", inet_addr("10.0.0.1"), 0, 1};
    hosts[1] = (struct southbound_host) {"h2", inet_addr("10.0.0.2"), 3, 4};
    return (struct southbound_topology) {
        switches, 4, hosts, 2, links, 5,
    };
}

/* Follows the base IPv4 flows towards host 'h' from switch 's'; returns
 * the number of switches crossed, or -1 on a drop or a loop. */
static int
walk_base(const struct southbound_topology *t, const struct flows_set *sets,
          size_t s, size_t h)
{
    struct flows_key key;

    flows_key_base(&key, false, t->hosts[h].ip);
    for (int hops = 1; hops <= (int) t->n_switches; hops++) {
        const struct flows_entry *e = flows_set_find(&sets[s], &key);
        if (!e) {
            return -1;
        }
        if (s == t->hosts[h].sw && e->out_port == t->hosts[h].port) {
            return hops;
        }
        size_t next = SIZE_MAX;
        for (size_t l = 0; l < t->n_links; l++) {
            for (int side = 0; side < 2; side++) {
                if (t->links[l].sw[side] == s
                    && t->links[l].port[side] == e->out_port) {
                    next = t->links[l].sw[!side];
                }
            }
        }
        if (next == SIZE_MAX) {
            return -1;
        }
        s = next;
    }
    return -1;                  /* Loop. */
}

static void
test_topology_checks(void **state)
{
    (void) state;
    struct southbound_topology t = diamond();
    char err[256];

    assert_int_equal(flows_check_topology(&t, err, sizeof err), 0);

    struct southbound_switch sw2[4];
    memcpy(sw2, switches, sizeof sw2);
    sw2[3].dpid = 1;
    t.switches = sw2;
    assert_int_equal(flows_check_topology(&t, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "same datapath id"));

    t = diamond();
    struct southbound_link l2[5];
    memcpy(l2, links, sizeof l2);
    l2[4].port[1] = 4;          /* s4 port 4 is h2's. */
    t.links = l2;
    assert_int_equal(flows_check_topology(&t, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "used twice"));

    memcpy(l2, links, sizeof l2);
    l2[2].sw[1] = 9;
    assert_int_equal(flows_check_topology(&t, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "out of range"));
}

static void
test_base_loop_free_and_rerouted(void **state)
{
    (void) state;
    struct southbound_topology t = diamond();
    struct flows_set sets[4];
    bool up[5] = {true, true, true, true, true};

    for (int i = 0; i < 4; i++) {
        flows_set_init(&sets[i]);
    }
    flows_compute(&t, up, NULL, 0, sets, NULL);
    for (size_t s = 0; s < 4; s++) {
        /* table-miss + (ip, arp) x 2 hosts. */
        assert_int_equal(flows_set_count(&sets[s]), 5);
        for (size_t h = 0; h < 2; h++) {
            int hops = walk_base(&t, sets, s, h);
            assert_true(hops >= 1 && hops <= 3);
        }
    }
    /* Shortest: s1 -> s4 over the chord (link 4, port 4). */
    assert_int_equal(walk_base(&t, sets, 0, 1), 2);

    /* Chord down: still loop-free, 3 switches. */
    up[4] = false;
    flows_compute(&t, up, NULL, 0, sets, NULL);
    assert_int_equal(walk_base(&t, sets, 0, 1), 3);
    assert_int_equal(walk_base(&t, sets, 3, 0), 3);

    /* s4 cut off except the chord (down): no flows towards h2 on s1. */
    up[2] = up[3] = false;
    flows_compute(&t, up, NULL, 0, sets, NULL);
    assert_int_equal(walk_base(&t, sets, 0, 1), -1);
    assert_int_equal(walk_base(&t, sets, 3, 1), 1);

    for (int i = 0; i < 4; i++) {
        flows_set_destroy(&sets[i]);
    }
}

static void
test_route_flows_both_directions(void **state)
{
    (void) state;
    struct southbound_topology t = diamond();
    struct flows_set sets[4];
    bool up[5] = {true, true, true, true, true};
    size_t path[] = {0, 2};     /* s1 -l0- s2 -l2- s4 */
    struct southbound_route r = {
        .id = 7, .src_host = 0, .dst_host = 1, .ip_proto = 6,
        .src_port = 40001, .dst_port = 5001, .links = path, .n_links = 2,
    };
    char err[256];
    size_t withdrawn;

    assert_int_equal(flows_check_route(&t, &r, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) {
        flows_set_init(&sets[i]);
    }
    flows_compute(&t, up, &r, 1, sets, &withdrawn);
    assert_int_equal(withdrawn, 0);
    assert_int_equal(flows_set_count(&sets[0]), 7);
    assert_int_equal(flows_set_count(&sets[1]), 7);
    assert_int_equal(flows_set_count(&sets[2]), 5);     /* Not on path. */
    assert_int_equal(flows_set_count(&sets[3]), 7);

    struct flows_key key;
    const struct flows_entry *e;
    uint32_t ip1 = hosts[0].ip, ip2 = hosts[1].ip;

    /* Forward at s1: from h1's port to l0. */
    flows_key_substream(&key, 1, 6, ip1, ip2, htons(40001), htons(5001));
    e = flows_set_find(&sets[0], &key);
    assert_non_null(e);
    assert_int_equal(e->out_port, 2);
    assert_true(e->cookie == flows_cookie(FLOWS_SUBSTREAM, 7));
    /* Forward at s2: in on l0 (port 1), out on l2 (port 2). */
    flows_key_substream(&key, 1, 6, ip1, ip2, htons(40001), htons(5001));
    e = flows_set_find(&sets[1], &key);
    assert_non_null(e);
    assert_int_equal(e->out_port, 2);
    /* Reverse at s4: from h2 (port 4) back on l2 (port 1). */
    flows_key_substream(&key, 4, 6, ip2, ip1, htons(5001), htons(40001));
    e = flows_set_find(&sets[3], &key);
    assert_non_null(e);
    assert_int_equal(e->out_port, 1);
    /* Reverse at s1: in on l0, out to h1. */
    flows_key_substream(&key, 2, 6, ip2, ip1, htons(5001), htons(40001));
    e = flows_set_find(&sets[0], &key);
    assert_non_null(e);
    assert_int_equal(e->out_port, 1);

    /* A link of the path down: the route is withdrawn. */
    up[2] = false;
    flows_compute(&t, up, &r, 1, sets, &withdrawn);
    assert_int_equal(withdrawn, 1);
    assert_int_equal(flows_set_count(&sets[0]), 5);

    /* Broken paths are refused with a message. */
    size_t bad[] = {0, 3};
    r.links = bad;
    assert_int_equal(flows_check_route(&t, &r, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "does not touch"));
    size_t short_path[] = {0};
    r.links = short_path;
    r.n_links = 1;
    assert_int_equal(flows_check_route(&t, &r, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "path ends at switch s2"));

    for (int i = 0; i < 4; i++) {
        flows_set_destroy(&sets[i]);
    }
}

static void
test_shortest_path(void **state)
{
    (void) state;
    struct southbound_topology t = diamond();
    bool up[5] = {true, true, true, true, true};
    size_t path[8], n;

    assert_int_equal(flows_shortest_path(&t, up, 0, 1, path, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(path[0], 4);
    up[4] = false;
    assert_int_equal(flows_shortest_path(&t, up, 0, 1, path, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(path[0], 0);       /* Tie: lower link index first. */
    assert_int_equal(path[1], 2);
    assert_int_equal(flows_shortest_path(&t, up, 0, 1, path, 1, &n), E2BIG);
    up[2] = up[3] = false;
    assert_int_equal(flows_shortest_path(&t, up, 0, 1, path, 8, &n),
                     ENETUNREACH);
}

/* The encoded flow_mod decodes back to the same match, priority, cookie
 * and action. */
static void
test_encode_roundtrip(void **state)
{
    (void) state;
    struct flows_entry e;
    memset(&e, 0, sizeof e);
    flows_key_substream(&e.key, 3, 6, inet_addr("10.0.0.1"),
                        inet_addr("10.0.0.2"), htons(40001), htons(5001));
    e.cookie = flows_cookie(FLOWS_SUBSTREAM, 42);
    e.out_port = 5;

    struct ofpbuf *msg = flows_encode_mod(&e, OFPFC_ADD, OFPUTIL_P_OF13_OXM);
    struct ofputil_flow_mod fm;
    struct ofpbuf ofpacts;

    ofpbuf_init(&ofpacts, 64);
    assert_int_equal(ofputil_decode_flow_mod(&fm, msg->data, OFPUTIL_P_OF13_OXM,
                                             NULL, NULL, &ofpacts, OFPP_MAX,
                                             255), 0);
    assert_int_equal(fm.priority, FLOWS_PRIO_SUBSTREAM);
    assert_int_equal(fm.command, OFPFC_ADD);
    assert_true(ntohll(fm.new_cookie) == 0xed6e03000000002aULL);

    struct match m, want;
    minimatch_expand(&fm.match, &m);
    flows_key_to_match(&e.key, &want);
    char *got_s = match_to_string(&m, NULL, OFP_DEFAULT_PRIORITY);
    char *want_s = match_to_string(&want, NULL, OFP_DEFAULT_PRIORITY);
    assert_string_equal(got_s, want_s);
    free(got_s);
    free(want_s);
    assert_int_equal(m.flow.tp_src, htons(40001));
    assert_int_equal(ofp_to_u16(m.flow.in_port.ofp_port), 3);

    const struct ofpact_output *out = ofpact_get_OUTPUT(fm.ofpacts);
    assert_int_equal(fm.ofpacts->type, OFPACT_OUTPUT);
    assert_int_equal(ofp_to_u16(out->port), 5);

    minimatch_destroy(&fm.match);
    ofpbuf_uninit(&ofpacts);
    ofpbuf_delete(msg);
}

/* Puts 'e' through a flow statistics reply on the wire and reads it back
 * with flows_entry_from_stats(). */
static bool
stats_roundtrip(const struct flows_entry *e, int priority, uint8_t table,
                bool extra_field, int n_outputs, struct flows_entry *out)
{
    struct ofputil_flow_stats_request fsr = {
        .out_port = OFPP_ANY, .out_group = OFPG_ANY, .table_id = 0xff,
    };
    match_init_catchall(&fsr.match);
    struct ofpbuf *req = ofputil_encode_flow_stats_request(
        &fsr, OFPUTIL_P_OF13_OXM);
    struct ovs_list replies;
    ofpmp_init(&replies, req->data);

    struct ofputil_flow_stats st;
    struct ofpbuf ofpacts;
    memset(&st, 0, sizeof st);
    ofpbuf_init(&ofpacts, 64);
    for (int i = 0; i < n_outputs; i++) {
        ofpact_put_OUTPUT(&ofpacts)->port = u16_to_ofp(e->out_port + i);
    }
    flows_key_to_match(&e->key, &st.match);
    if (extra_field) {
        match_set_nw_ttl(&st.match, 4);
    }
    st.priority = priority;
    st.table_id = table;
    st.cookie = htonll(e->cookie);
    st.idle_age = st.hard_age = -1;
    st.ofpacts = ofpacts.data;
    st.ofpacts_len = ofpacts.size;
    ofputil_append_flow_stats_reply(&st, &replies, NULL);

    struct ofpbuf *reply = CONTAINER_OF(ovs_list_front(&replies),
                                        struct ofpbuf, list_node);
    struct ofpbuf b = ofpbuf_const_initializer(reply->data, reply->size);
    struct ofputil_flow_stats got;
    struct ofpbuf acts;
    ofpbuf_init(&acts, 64);
    assert_int_equal(ofputil_decode_flow_stats_reply(&got, &b, false, &acts),
                     0);
    bool ours = flows_entry_from_stats(&got, out);
    ofpbuf_uninit(&acts);
    ofpbuf_uninit(&ofpacts);
    ofpbuf_list_delete(&replies);
    ofpbuf_delete(req);
    return ours;
}

static void
test_entry_from_stats(void **state)
{
    (void) state;
    struct flows_entry e, got;
    memset(&e, 0, sizeof e);
    flows_key_substream(&e.key, 3, 6, inet_addr("10.0.0.1"),
                        inet_addr("10.0.0.2"), htons(40001), htons(5001));
    e.cookie = flows_cookie(FLOWS_SUBSTREAM, 0x102);
    e.out_port = 5;

    /* Ours: read back exactly. */
    assert_true(stats_roundtrip(&e, FLOWS_PRIO_SUBSTREAM, 0, false, 1, &got));
    assert_memory_equal(&got.key, &e.key, sizeof e.key);
    assert_true(got.cookie == e.cookie);
    assert_int_equal(got.out_port, 5);

    /* Not ours: another priority, table or cookie, an extra match field,
     * two outputs. */
    assert_false(stats_roundtrip(&e, 999, 0, false, 1, &got));
    assert_false(stats_roundtrip(&e, FLOWS_PRIO_SUBSTREAM, 1, false, 1, &got));
    assert_false(stats_roundtrip(&e, FLOWS_PRIO_SUBSTREAM, 0, true, 1, &got));
    assert_false(stats_roundtrip(&e, FLOWS_PRIO_SUBSTREAM, 0, false, 2, &got));
    e.cookie = 0x1;
    assert_false(stats_roundtrip(&e, FLOWS_PRIO_SUBSTREAM, 0, false, 1, &got));

    /* Base ARP flow and the table-miss (no action: drop). */
    flows_key_base(&e.key, true, inet_addr("10.0.0.9"));
    e.cookie = flows_cookie(FLOWS_BASE, 1);
    assert_true(stats_roundtrip(&e, FLOWS_PRIO_BASE, 0, false, 1, &got));
    assert_int_equal(got.key.arp, 1);
    assert_true(got.key.ip_dst == inet_addr("10.0.0.9"));
    flows_key_table_miss(&e.key);
    e.cookie = flows_cookie(FLOWS_TABLE_MISS, 0);
    assert_true(stats_roundtrip(&e, FLOWS_PRIO_TABLE_MISS, 0, false, 0,
                                &got));
    assert_int_equal(got.out_port, FLOWS_DROP);
    /* A sub-stream cookie on the table-miss's match is not ours. */
    e.cookie = flows_cookie(FLOWS_SUBSTREAM, 0);
    assert_false(stats_roundtrip(&e, FLOWS_PRIO_TABLE_MISS, 0, false, 0,
                                 &got));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology_checks),
        cmocka_unit_test(test_base_loop_free_and_rerouted),
        cmocka_unit_test(test_route_flows_both_directions),
        cmocka_unit_test(test_shortest_path),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_entry_from_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
