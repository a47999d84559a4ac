/* Southbound against a scripted switch: the test plays an OpenFlow 1.3
 * switch over a real unix-socket vconn and records every flow_mod with the
 * bundle it came in.  Checks: handshake, flow dump and the flows added in
 * one bundle; a reconnection that finds the right flows changes nothing,
 * keeps found sub-stream flows until routes are set, and replaces all on
 * a stray flow;
 * make-before-break order (add, then modify, then delete, separate
 * bundles) when a route moves, withdrawal on port down, events, and an
 * unknown datapath being ignored. */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "byte-order.h"
#include "flow.h"
#include "flows.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-actions.h"
#include "openvswitch/ofp-bundle.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-msgs.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/ofp-switch.h"
#include "openvswitch/ofp-util.h"
#include "openvswitch/ofpbuf.h"
#include "openvswitch/vconn.h"
#include "southbound.h"
#include "timeval.h"

/* One recorded flow_mod. */
struct mod {
    int bundle;                 /* Committed bundle number (1-based). */
    int command;                /* OFPFC_*. */
    int priority;
    uint32_t in_port;
    uint16_t tp_src;            /* Host order. */
    uint32_t out_port;          /* 0 if no output action. */
};

struct fake_switch {
    struct vconn *vconn;
    uint64_t dpid;
    struct mod pending[64];     /* In the open bundle. */
    int n_pending;
    struct mod mods[256];       /* Committed. */
    int n_mods;
    int n_bundles;
    bool hold;                  /* Keep barrier replies back... */
    struct ofpbuf *held[8];     /* ...here, until fake_release(). */
    int n_held;
    struct flows_entry table[32];       /* What a flow dump reports... */
    int n_table;
    bool stray;                 /* ...plus one flow of another controller. */
    uint32_t down_port;         /* Reported down in the port description. */
    int n_dumps;
};

static void
fake_send(struct fake_switch *fs, struct ofpbuf *msg)
{
    assert_int_equal(vconn_send_block(fs->vconn, msg), 0);
}

static void
record_flow_mod(struct fake_switch *fs, const struct ofp_header *oh)
{
    struct ofputil_flow_mod fm;
    struct ofpbuf ofpacts;
    struct match m;

    ofpbuf_init(&ofpacts, 64);
    assert_int_equal(ofputil_decode_flow_mod(&fm, oh, OFPUTIL_P_OF13_OXM, NULL,
                                             NULL, &ofpacts, OFPP_MAX, 255), 0);
    minimatch_expand(&fm.match, &m);
    struct mod *md = &fs->pending[fs->n_pending++];
    md->command = fm.command;
    md->priority = fm.priority;
    md->in_port = m.wc.masks.in_port.ofp_port ? ofp_to_u16(m.flow.in_port.ofp_port)
                                              : 0;
    md->tp_src = ntohs(m.flow.tp_src);
    md->out_port = fm.ofpacts_len && fm.ofpacts->type == OFPACT_OUTPUT
                   ? ofp_to_u16(ofpact_get_OUTPUT(fm.ofpacts)->port) : 0;
    minimatch_destroy(&fm.match);
    ofpbuf_uninit(&ofpacts);
}

/* Answers one message; returns false on timeout. */
static bool
fake_step(struct fake_switch *fs, int timeout_ms)
{
    struct ofpbuf *msg = NULL;
    long long int deadline = time_msec() + timeout_ms;
    int error;

    while ((error = vconn_recv(fs->vconn, &msg)) == EAGAIN) {
        if (time_msec() > deadline) {
            return false;
        }
        usleep(1000);
    }
    assert_int_equal(error, 0);

    const struct ofp_header *oh = msg->data;
    enum ofptype type;
    assert_int_equal(ofptype_decode(&type, oh), 0);
    switch (type) {
    case OFPTYPE_FEATURES_REQUEST: {
        struct ofputil_switch_features f = {
            .datapath_id = fs->dpid, .n_tables = 254,
        };
        fake_send(fs, ofputil_encode_switch_features(&f, OFPUTIL_P_OF13_OXM,
                                                     oh->xid));
        break;
    }
    case OFPTYPE_PORT_DESC_STATS_REQUEST: {
        struct ovs_list replies;
        ofpmp_init(&replies, oh);
        for (int p = 1; p <= 4; p++) {
            struct ofputil_phy_port pp;
            memset(&pp, 0, sizeof pp);
            pp.port_no = u16_to_ofp(p);
            pp.state = (uint32_t) p == fs->down_port ? OFPUTIL_PS_LINK_DOWN
                                                     : 0;
            snprintf(pp.name, sizeof pp.name, "p%d", p);
            ofputil_append_port_desc_stats_reply(&pp, &replies);
        }
        struct ofpbuf *r;
        LIST_FOR_EACH_POP (r, list_node, &replies) {
            fake_send(fs, r);
        }
        break;
    }
    case OFPTYPE_FLOW_STATS_REQUEST: {
        struct ovs_list replies;
        ofpmp_init(&replies, oh);
        for (int i = 0; i < fs->n_table + fs->stray; i++) {
            struct flows_entry stray = {.cookie = 0x1, .out_port = 0};
            const struct flows_entry *e = i < fs->n_table ? &fs->table[i]
                                                          : &stray;
            struct ofputil_flow_stats st;
            uint64_t stub[64 / 8];
            struct ofpbuf ofpacts;

            if (e == &stray) {
                flows_key_base(&stray.key, false, inet_addr("10.9.9.9"));
            }
            memset(&st, 0, sizeof st);
            ofpbuf_use_stub(&ofpacts, stub, sizeof stub);
            if (e->out_port) {
                ofpact_put_OUTPUT(&ofpacts)->port = u16_to_ofp(e->out_port);
            }
            flows_key_to_match(&e->key, &st.match);
            st.priority = e->key.priority;
            st.cookie = htonll(e->cookie);
            st.idle_age = st.hard_age = -1;
            st.ofpacts = ofpacts.data;
            st.ofpacts_len = ofpacts.size;
            ofputil_append_flow_stats_reply(&st, &replies, NULL);
            ofpbuf_uninit(&ofpacts);
        }
        struct ofpbuf *r;
        LIST_FOR_EACH_POP (r, list_node, &replies) {
            fake_send(fs, r);
        }
        fs->n_dumps++;
        break;
    }
    case OFPTYPE_BUNDLE_CONTROL: {
        struct ofputil_bundle_ctrl_msg bc;
        assert_int_equal(ofputil_decode_bundle_ctrl(oh, &bc), 0);
        if (bc.type == OFPBCT_COMMIT_REQUEST) {
            fs->n_bundles++;
            for (int i = 0; i < fs->n_pending; i++) {
                fs->pending[i].bundle = fs->n_bundles;
                fs->mods[fs->n_mods++] = fs->pending[i];
            }
            fs->n_pending = 0;
        }
        struct ofputil_bundle_ctrl_msg reply = bc;
        reply.type = bc.type + 1;       /* OPEN/COMMIT -> ..._REPLY. */
        fake_send(fs, ofputil_encode_bundle_ctrl_reply(oh, &reply));
        break;
    }
    case OFPTYPE_BUNDLE_ADD_MESSAGE: {
        struct ofputil_bundle_add_msg bam;
        enum ofptype inner;
        assert_int_equal(ofputil_decode_bundle_add(oh, &bam, &inner), 0);
        assert_int_equal(inner, OFPTYPE_FLOW_MOD);
        record_flow_mod(fs, bam.msg);
        break;
    }
    case OFPTYPE_FLOW_MOD:
        fail_msg("flow_mod outside a bundle");
        break;
    case OFPTYPE_BARRIER_REQUEST: {
        struct ofpbuf *reply = ofpraw_alloc_reply(OFPRAW_OFPT11_BARRIER_REPLY,
                                                  oh, 0);
        if (fs->hold && fs->n_held < 8) {
            fs->held[fs->n_held++] = reply;
        } else {
            fake_send(fs, reply);
        }
        break;
    }
    case OFPTYPE_ECHO_REQUEST:
        fake_send(fs, ofputil_encode_echo_reply(oh));
        break;
    default:
        break;                  /* Port stats requests: no answer needed. */
    }
    ofpbuf_delete(msg);
    return true;
}

static void
fake_release(struct fake_switch *fs)
{
    fs->hold = false;
    for (int i = 0; i < fs->n_held; i++) {
        fake_send(fs, fs->held[i]);
    }
    fs->n_held = 0;
}

/* Serves the switch until 'done' holds or 'timeout_ms' passes. */
#define SERVE_UNTIL(FS, COND, TIMEOUT_MS)                               \
    do {                                                                \
        long long int end_ = time_msec() + (TIMEOUT_MS);                \
        while (!(COND) && time_msec() < end_) {                         \
            fake_step((FS), 50);                                        \
        }                                                               \
    } while (0)

static struct fake_switch *
fake_connect(const char *path, uint64_t dpid)
{
    struct fake_switch *fs = xzalloc(sizeof *fs);
    char *name = xasprintf("unix:%s", path);

    fs->dpid = dpid;
    assert_int_equal(vconn_open(name, 1u << OFP13_VERSION, 0, &fs->vconn), 0);
    assert_int_equal(vconn_connect_block(fs->vconn, 5000), 0);
    free(name);
    return fs;
}

static void
fake_destroy(struct fake_switch *fs)
{
    vconn_close(fs->vconn);
    free(fs);
}

/* Events seen so far. */
static struct southbound_event events[256];
static int n_events;

static void
drain_events(struct southbound *sb)
{
    struct southbound_event ev;
    while (n_events < 256 && southbound_next_event(sb, &ev)) {
        events[n_events++] = ev;
    }
}

static bool
saw_event(enum southbound_event_type type, uint64_t gen, uint32_t port,
          bool up)
{
    for (int i = 0; i < n_events; i++) {
        const struct southbound_event *e = &events[i];
        if (e->type == type
            && (type != SOUTHBOUND_FLOWS_SYNCED || e->generation == gen)
            && (type != SOUTHBOUND_PORT_STATUS
                || (e->port == port && e->up == up))) {
            return true;
        }
    }
    return false;
}

static bool
synced(struct southbound *sb, uint64_t gen)
{
    drain_events(sb);
    return saw_event(SOUTHBOUND_FLOWS_SYNCED, gen, 0, false);
}

static int
count_mods(const struct fake_switch *fs, int bundle, int command)
{
    int n = 0;
    for (int i = 0; i < fs->n_mods; i++) {
        n += fs->mods[i].bundle == bundle && fs->mods[i].command == command;
    }
    return n;
}

static const struct mod *
find_mod(const struct fake_switch *fs, int bundle, int command,
         uint32_t in_port)
{
    for (int i = 0; i < fs->n_mods; i++) {
        const struct mod *m = &fs->mods[i];
        if (m->bundle == bundle && m->command == command
            && m->priority == FLOWS_PRIO_SUBSTREAM && m->in_port == in_port) {
            return m;
        }
    }
    return NULL;
}

static void
test_southbound_with_scripted_switch(void **state)
{
    (void) state;
    /* s1 (dpid 1) -- link0 (port 2), link1 (port 3) -- s2; h1 on s1:1,
     * h2 on s2:1.  Only s1 is played by the test. */
    static const struct southbound_switch sws[] = {{"s1", 1}, {"s2", 2}};
    struct southbound_host hosts[] = {
        {"h1", inet_addr("10.0.0.1"), 0, 1},
        {"h2", inet_addr("10.0.0.2"), 1, 1},
    };
    static const struct southbound_link links[] = {
        {{0, 1}, {2, 2}}, {{0, 1}, {3, 3}},
    };
    struct southbound_topology topo = {sws, 2, hosts, 2, links, 2};
    char path[64];
    snprintf(path, sizeof path, "/tmp/et-sbtest-%d.sock", (int) getpid());
    char *listen = xasprintf("punix:%s", path);
    struct southbound_options opt = {.listen = listen};
    struct southbound *sb;

    unlink(path);
    assert_int_equal(southbound_create(&topo, &opt, &sb), 0);
    struct fake_switch *fs = fake_connect(path, 1);

    /* Handshake, a flow dump (an empty table), then one bundle: the
     * table-miss and 4 base flows, nothing deleted. */
    SERVE_UNTIL(fs, fs->n_bundles >= 1, 5000);
    assert_int_equal(fs->n_dumps, 1);
    assert_int_equal(fs->n_bundles, 1);
    assert_int_equal(count_mods(fs, 1, OFPFC_DELETE), 0);
    assert_int_equal(count_mods(fs, 1, OFPFC_ADD), 5);
    SERVE_UNTIL(fs, (drain_events(sb), saw_event(SOUTHBOUND_PORT_STATUS, 0,
                                                 4, true)), 2000);
    assert_true(saw_event(SOUTHBOUND_SWITCH_UP, 0, 0, false));
    assert_true(saw_event(SOUTHBOUND_PORT_STATUS, 0, 2, true));

    /* Route over link0: at s1, forward in_port 1 -> 2, reverse 2 -> 1. */
    size_t via0[] = {0}, via1[] = {1};
    struct southbound_route r = {
        .id = 5, .src_host = 0, .dst_host = 1, .ip_proto = 6,
        .src_port = 40001, .dst_port = 5001, .links = via0, .n_links = 1,
    };
    uint64_t gen;
    assert_int_equal(southbound_set_routes(sb, &r, 1, &gen), 0);
    assert_int_equal(gen, 1);
    SERVE_UNTIL(fs, synced(sb, 1), 5000);
    assert_true(synced(sb, 1));
    assert_int_equal(fs->n_bundles, 2);
    assert_int_equal(count_mods(fs, 2, OFPFC_ADD), 2);
    assert_int_equal(find_mod(fs, 2, OFPFC_ADD, 1)->out_port, 2);
    assert_int_equal(find_mod(fs, 2, OFPFC_ADD, 2)->out_port, 1);

    /* Move it to link1: make-before-break, three bundles in order. */
    r.links = via1;
    assert_int_equal(southbound_set_routes(sb, &r, 1, &gen), 0);
    SERVE_UNTIL(fs, synced(sb, 2), 5000);
    assert_true(synced(sb, 2));
    assert_int_equal(fs->n_bundles, 5);
    /* 3: the new reverse flow (in on link1) is added first... */
    assert_int_equal(count_mods(fs, 3, OFPFC_ADD), 1);
    assert_int_equal(find_mod(fs, 3, OFPFC_ADD, 3)->out_port, 1);
    /* 4: ...then the forward flow switches to link1... */
    assert_int_equal(count_mods(fs, 4, OFPFC_MODIFY_STRICT), 1);
    assert_int_equal(find_mod(fs, 4, OFPFC_MODIFY_STRICT, 1)->out_port, 3);
    /* 5: ...and only then the old reverse flow goes. */
    assert_int_equal(count_mods(fs, 5, OFPFC_DELETE_STRICT), 1);
    assert_non_null(find_mod(fs, 5, OFPFC_DELETE_STRICT, 2));

    /* Same path, new id: the cookies change, which only an add can do in
     * OpenFlow 1.3. */
    r.id = 6;
    assert_int_equal(southbound_set_routes(sb, &r, 1, &gen), 0);
    SERVE_UNTIL(fs, synced(sb, 3), 5000);
    assert_true(synced(sb, 3));
    assert_int_equal(fs->n_bundles, 6);
    assert_int_equal(count_mods(fs, 6, OFPFC_ADD), 2);
    assert_int_equal(fs->n_mods, 5 + 2 + 1 + 1 + 1 + 2);

    /* Link1's port goes down: the route is withdrawn (both flows). */
    struct ofputil_port_status ps;
    memset(&ps, 0, sizeof ps);
    ps.reason = OFPPR_MODIFY;
    ps.desc.port_no = u16_to_ofp(3);
    ps.desc.state = OFPUTIL_PS_LINK_DOWN;
    fake_send(fs, ofputil_encode_port_status(&ps, OFPUTIL_P_OF13_OXM));
    SERVE_UNTIL(fs, fs->n_bundles >= 7, 5000);
    assert_int_equal(fs->n_bundles, 7);
    assert_int_equal(count_mods(fs, 7, OFPFC_DELETE_STRICT), 2);
    drain_events(sb);
    assert_true(saw_event(SOUTHBOUND_PORT_STATUS, 0, 3, false));

    /* A switch that is not in the topology gets nothing. */
    struct fake_switch *stranger = fake_connect(path, 99);
    long long int end = time_msec() + 500;
    while (time_msec() < end) {
        fake_step(stranger, 20);
    }
    assert_int_equal(stranger->n_bundles, 0);
    assert_int_equal(stranger->n_pending, 0);

    /* Bad routes are refused and change nothing. */
    size_t bad[] = {7};
    r.links = bad;
    assert_int_equal(southbound_set_routes(sb, &r, 1, NULL), EINVAL);

    fake_destroy(stranger);
    southbound_destroy(sb);
    fake_destroy(fs);
    unlink(path);
    free(listen);
}

/* Three parallel links.  A route moves from link0 to link1; while the
 * switch still holds the first step (adds) of that cycle, it moves again to
 * link2.  The switch-over (modify of the ingress flow to link2's port)
 * must come after link2's new hop flow was added, never before. */
static void
test_southbound_target_moves_mid_cycle(void **state)
{
    (void) state;
    static const struct southbound_switch sws[] = {{"s1", 1}, {"s2", 2}};
    struct southbound_host hosts[] = {
        {"h1", inet_addr("10.0.0.1"), 0, 1},
        {"h2", inet_addr("10.0.0.2"), 1, 1},
    };
    static const struct southbound_link links[] = {
        {{0, 1}, {2, 2}}, {{0, 1}, {3, 3}}, {{0, 1}, {4, 4}},
    };
    struct southbound_topology topo = {sws, 2, hosts, 2, links, 3};
    char path[64];
    snprintf(path, sizeof path, "/tmp/et-sbtest2-%d.sock", (int) getpid());
    char *listen = xasprintf("punix:%s", path);
    struct southbound_options opt = {.listen = listen};
    struct southbound *sb;

    n_events = 0;
    unlink(path);
    assert_int_equal(southbound_create(&topo, &opt, &sb), 0);
    struct fake_switch *fs = fake_connect(path, 1);
    SERVE_UNTIL(fs, fs->n_bundles >= 1, 5000);

    size_t via[3][1] = {{0}, {1}, {2}};
    struct southbound_route r = {
        .id = 1, .src_host = 0, .dst_host = 1, .ip_proto = 6,
        .src_port = 40001, .dst_port = 5001, .links = via[0], .n_links = 1,
    };
    assert_int_equal(southbound_set_routes(sb, &r, 1, NULL), 0);
    SERVE_UNTIL(fs, synced(sb, 1), 5000);
    assert_int_equal(fs->n_bundles, 2);

    fs->hold = true;
    r.links = via[1];
    assert_int_equal(southbound_set_routes(sb, &r, 1, NULL), 0);
    SERVE_UNTIL(fs, fs->n_held == 1, 5000);
    assert_int_equal(fs->n_held, 1);    /* The adds of the link1 cycle. */
    r.links = via[2];
    assert_int_equal(southbound_set_routes(sb, &r, 1, NULL), 0);
    usleep(100 * 1000);                 /* Let the OpenFlow thread see it. */
    fake_release(fs);
    SERVE_UNTIL(fs, synced(sb, 3), 5000);
    assert_true(synced(sb, 3));

    /* Find the switch-over of the forward flow to link2 (port 4) and the
     * add of link2's reverse hop flow (in_port 4). */
    int add_at = 0, switch_at = 0;
    for (int i = 0; i < fs->n_mods && getenv("SBTEST_DEBUG"); i++) {
        const struct mod *m = &fs->mods[i];
        printf("bundle %d cmd %d prio %d in %u out %u\n", m->bundle,
               m->command, m->priority, m->in_port, m->out_port);
    }
    for (int i = 0; i < fs->n_mods; i++) {
        const struct mod *m = &fs->mods[i];
        if (m->priority != FLOWS_PRIO_SUBSTREAM) {
            continue;
        }
        if (m->command == OFPFC_ADD && m->in_port == 4) {
            add_at = m->bundle;
        }
        if (m->command == OFPFC_MODIFY_STRICT && m->in_port == 1
            && m->out_port == 4) {
            switch_at = m->bundle;
        }
        /* The forward flow never pointed at link1 without its reverse. */
        assert_false(m->command == OFPFC_MODIFY_STRICT && m->out_port == 3
                     && m->in_port == 1);
    }
    assert_true(add_at > 0);
    assert_true(switch_at > add_at);

    southbound_destroy(sb);
    fake_destroy(fs);
    unlink(path);
    free(listen);
}

/* Reconnections (a restarted controller, a switch that kept its flows):
 * the southbound reads the switch's flows and changes only what differs. */
static void
test_southbound_reconnect_reads_flows(void **state)
{
    (void) state;
    static const struct southbound_switch sws[] = {{"s1", 1}, {"s2", 2}};
    struct southbound_host hosts[] = {
        {"h1", inet_addr("10.0.0.1"), 0, 1},
        {"h2", inet_addr("10.0.0.2"), 1, 1},
    };
    static const struct southbound_link links[] = {
        {{0, 1}, {2, 2}}, {{0, 1}, {3, 3}},
    };
    struct southbound_topology topo = {sws, 2, hosts, 2, links, 2};
    size_t via0[] = {0};
    struct southbound_route r = {
        .id = 5, .src_host = 0, .dst_host = 1, .ip_proto = 6,
        .src_port = 40001, .dst_port = 5001, .links = via0, .n_links = 1,
    };
    bool up[] = {true, true};
    struct flows_set sets[2];
    flows_set_init(&sets[0]);
    flows_set_init(&sets[1]);
    flows_compute(&topo, up, &r, 1, sets, NULL);
    assert_int_equal(flows_set_count(&sets[0]), 7);

    char path[64];
    snprintf(path, sizeof path, "/tmp/et-sbtest3-%d.sock", (int) getpid());
    char *listen = xasprintf("punix:%s", path);
    struct southbound_options opt = {.listen = listen};
    struct southbound *sb;

    /* 1. A restarted controller (no routes yet) meets a switch with the
     * run's flows: nothing is sent, the sub-stream flows stay... */
    unlink(path);
    n_events = 0;
    assert_int_equal(southbound_create(&topo, &opt, &sb), 0);
    struct fake_switch *fs = fake_connect(path, 1);
    const struct flows_entry *e;
    HMAP_FOR_EACH (e, node, &sets[0].map) {
        fs->table[fs->n_table++] = *e;
    }
    SERVE_UNTIL(fs, (drain_events(sb), saw_event(SOUTHBOUND_SWITCH_UP, 0, 0,
                                                 false)), 5000);
    assert_true(saw_event(SOUTHBOUND_SWITCH_UP, 0, 0, false));
    SERVE_UNTIL(fs, false, 300);
    assert_int_equal(fs->n_dumps, 1);
    assert_int_equal(fs->n_bundles, 0);
    /* The controller can read them (to keep the paths they make). */
    struct flows_set found[2];
    bool seen[2];
    flows_set_init(&found[0]);
    flows_set_init(&found[1]);
    southbound_found_substreams(sb, found, seen);
    assert_true(seen[0]);
    assert_false(seen[1]);
    assert_int_equal(flows_set_count(&found[0]), 2);
    assert_int_equal(flows_set_count(&found[1]), 0);
    HMAP_FOR_EACH (e, node, &found[0].map) {
        const struct flows_entry *x = flows_set_find(&sets[0], &e->key);
        assert_non_null(x);
        assert_true(flows_entry_same(x, e));
    }
    /* No path is traced while a switch has not reported. */
    struct southbound_route q = r;
    size_t qlinks[2];
    char err[128];
    q.links = NULL;
    assert_int_equal(southbound_trace_found(sb, &q, 1, qlinks, NULL, NULL,
                                            err, sizeof err), ENOENT);
    assert_non_null(strstr(err, "switch s2 has not connected"));
    /* ...and the same routes, once set, change nothing either... */
    uint64_t gen;
    assert_int_equal(southbound_set_routes(sb, &r, 1, &gen), 0);
    SERVE_UNTIL(fs, synced(sb, gen), 5000);
    assert_true(synced(sb, gen));
    assert_int_equal(fs->n_bundles, 0);
    /* ...while no route (the run is over) removes them. */
    assert_int_equal(southbound_set_routes(sb, NULL, 0, &gen), 0);
    SERVE_UNTIL(fs, synced(sb, gen), 5000);
    assert_int_equal(fs->n_bundles, 1);
    assert_int_equal(count_mods(fs, 1, OFPFC_DELETE_STRICT), 2);
    assert_int_equal(fs->n_mods, 2);
    fake_destroy(fs);

    /* 2. Found sub-stream flows are dropped when the first routes do not
     * have them. */
    southbound_destroy(sb);
    unlink(path);
    n_events = 0;
    assert_int_equal(southbound_create(&topo, &opt, &sb), 0);
    fs = fake_connect(path, 1);
    HMAP_FOR_EACH (e, node, &sets[0].map) {
        fs->table[fs->n_table++] = *e;
    }
    SERVE_UNTIL(fs, (drain_events(sb), saw_event(SOUTHBOUND_SWITCH_UP, 0, 0,
                                                 false)), 5000);
    SERVE_UNTIL(fs, false, 200);
    assert_int_equal(fs->n_bundles, 0);
    assert_int_equal(southbound_set_routes(sb, NULL, 0, &gen), 0);
    SERVE_UNTIL(fs, synced(sb, gen), 5000);
    assert_int_equal(fs->n_bundles, 1);
    assert_int_equal(count_mods(fs, 1, OFPFC_DELETE_STRICT), 2);
    fake_destroy(fs);

    /* 3. A found sub-stream flow through a port that is down now is not
     * kept (the route's link 0 is on port 2). */
    southbound_destroy(sb);
    unlink(path);
    n_events = 0;
    assert_int_equal(southbound_create(&topo, &opt, &sb), 0);
    fs = fake_connect(path, 1);
    HMAP_FOR_EACH (e, node, &sets[0].map) {
        fs->table[fs->n_table++] = *e;
    }
    fs->down_port = 2;
    SERVE_UNTIL(fs, fs->n_bundles >= 2, 5000);
    SERVE_UNTIL(fs, false, 200);
    /* The base flows towards h2 move to link 1 (modify), the found
     * sub-stream flows go (delete), nothing else. */
    assert_int_equal(fs->n_bundles, 2);
    assert_int_equal(count_mods(fs, 1, OFPFC_MODIFY_STRICT), 2);
    assert_int_equal(count_mods(fs, 2, OFPFC_DELETE_STRICT), 2);
    assert_non_null(find_mod(fs, 2, OFPFC_DELETE_STRICT, 1));
    assert_non_null(find_mod(fs, 2, OFPFC_DELETE_STRICT, 2));
    assert_int_equal(fs->n_mods, 4);
    /* ...nor offered to the controller. */
    southbound_found_substreams(sb, found, seen);
    assert_true(seen[0]);
    assert_int_equal(flows_set_count(&found[0]), 0);
    fake_destroy(fs);

    /* 4. A flow that is not ours: one bundle replaces everything. */
    n_events = 0;
    fs = fake_connect(path, 1);
    HMAP_FOR_EACH (e, node, &sets[0].map) {
        fs->table[fs->n_table++] = *e;
    }
    fs->stray = true;
    SERVE_UNTIL(fs, fs->n_bundles >= 1, 5000);
    assert_int_equal(fs->n_bundles, 1);
    assert_int_equal(fs->mods[0].command, OFPFC_DELETE);
    /* Table-miss, 4 base flows and the 2 found sub-stream flows (still no
     * routes set: kept, and put back by the replacement). */
    assert_int_equal(count_mods(fs, 1, OFPFC_ADD), 7);

    southbound_destroy(sb);
    fake_destroy(fs);
    flows_set_destroy(&sets[0]);
    flows_set_destroy(&sets[1]);
    flows_set_destroy(&found[0]);
    flows_set_destroy(&found[1]);
    unlink(path);
    free(listen);
}

/* A restarted controller reads the paths of the run's sub-streams back from
 * the flows the switches kept (two switches, the route over link 0). */
static void
test_southbound_traces_found_paths(void **state)
{
    (void) state;
    static const struct southbound_switch sws[] = {{"s1", 1}, {"s2", 2}};
    struct southbound_host hosts[] = {
        {"h1", inet_addr("10.0.0.1"), 0, 1},
        {"h2", inet_addr("10.0.0.2"), 1, 1},
    };
    static const struct southbound_link links[] = {
        {{0, 1}, {2, 2}}, {{0, 1}, {3, 3}},
    };
    struct southbound_topology topo = {sws, 2, hosts, 2, links, 2};
    size_t via0[] = {0};
    struct southbound_route r = {
        .id = 5, .src_host = 0, .dst_host = 1, .ip_proto = 6,
        .src_port = 40001, .dst_port = 5001, .links = via0, .n_links = 1,
    };
    bool up[] = {true, true};
    struct flows_set sets[2], found[2];
    bool seen[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        flows_set_init(&sets[i]);
        flows_set_init(&found[i]);
    }
    flows_compute(&topo, up, &r, 1, sets, NULL);

    char path[64];
    snprintf(path, sizeof path, "/tmp/et-sbtest4-%d.sock", (int) getpid());
    char *listen = xasprintf("punix:%s", path);
    struct southbound_options opt = {.listen = listen};
    struct southbound *sb;
    unlink(path);
    n_events = 0;
    assert_int_equal(southbound_create(&topo, &opt, &sb), 0);
    struct fake_switch *fs[2];
    for (int i = 0; i < 2; i++) {
        const struct flows_entry *e;
        fs[i] = fake_connect(path, i + 1);
        HMAP_FOR_EACH (e, node, &sets[i].map) {
            fs[i]->table[fs[i]->n_table++] = *e;
        }
    }
    long long int end = time_msec() + 5000;
    while (!(seen[0] && seen[1]) && time_msec() < end) {
        fake_step(fs[0], 25);
        fake_step(fs[1], 25);
        drain_events(sb);
        southbound_found_substreams(sb, found, seen);
    }
    assert_true(seen[0] && seen[1]);

    struct southbound_route q = r;
    size_t qlinks[2] = {9, 9};
    size_t extra = 99;
    char err[128];
    q.links = NULL;
    q.n_links = 0;
    assert_int_equal(southbound_trace_found(sb, &q, 1, qlinks, NULL, &extra,
                                            err, sizeof err), 0);
    assert_int_equal(q.n_links, 1);
    assert_ptr_equal(q.links, qlinks);
    assert_int_equal(qlinks[0], 0);
    assert_int_equal(extra, 0);
    /* Its link down now: refused. */
    up[0] = false;
    assert_int_equal(southbound_trace_found(sb, &q, 1, qlinks, up, NULL,
                                            err, sizeof err), ENETDOWN);
    /* Another sub-stream (other ports) has no flows. */
    q.src_port = 40002;
    assert_int_equal(southbound_trace_found(sb, &q, 1, qlinks, NULL, NULL,
                                            err, sizeof err), ENOENT);

    southbound_destroy(sb);
    for (int i = 0; i < 2; i++) {
        fake_destroy(fs[i]);
        flows_set_destroy(&sets[i]);
        flows_set_destroy(&found[i]);
    }
    unlink(path);
    free(listen);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_southbound_reconnect_reads_flows),
        cmocka_unit_test(test_southbound_traces_found_paths),
        cmocka_unit_test(test_southbound_with_scripted_switch),
        cmocka_unit_test(test_southbound_target_moves_mid_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
