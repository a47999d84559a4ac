/* paths: Yen and edge-disjoint paths on hand-checked graphs, the load
 * term of the metric, link failures, water-filling and delay-equalising
 * splits with numbers worked out by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "linkstate.h"
#include "paths.h"
#include "topology.h"

/* The undirected version of Wikipedia's Yen example, hosts h1 at C and h2
 * at H, delays as weights:
 *   C-D 3, C-E 2, D-F 4, E-D 1, E-F 2, E-G 3, F-G 2, F-H 1, G-H 2. */
static const char yen_json[] =
    "{\"switches\":[{\"name\":\"C\",\"dpid\":1},{\"name\":\"D\",\"dpid\":2},"
    "{\"name\":\"E\",\"dpid\":3},{\"name\":\"F\",\"dpid\":4},"
    "{\"name\":\"G\",\"dpid\":5},{\"name\":\"H\",\"dpid\":6}],"
    "\"agents\":[{\"name\":\"h1\",\"data\":\"10.0.0.1:1\",\"switch\":\"C\","
    "\"port\":1,\"delay_ms\":0},{\"name\":\"h2\",\"data\":\"10.0.0.2:1\","
    "\"switch\":\"H\",\"port\":1,\"delay_ms\":0}],"
    "\"links\":["
    "{\"a\":\"C\",\"a_port\":2,\"b\":\"D\",\"b_port\":2,\"capacity_mbps\":100,\"delay_ms\":3},"
    "{\"a\":\"C\",\"a_port\":3,\"b\":\"E\",\"b_port\":2,\"capacity_mbps\":100,\"delay_ms\":2},"
    "{\"a\":\"D\",\"a_port\":3,\"b\":\"F\",\"b_port\":2,\"capacity_mbps\":100,\"delay_ms\":4},"
    "{\"a\":\"E\",\"a_port\":3,\"b\":\"D\",\"b_port\":4,\"capacity_mbps\":100,\"delay_ms\":1},"
    "{\"a\":\"E\",\"a_port\":4,\"b\":\"F\",\"b_port\":3,\"capacity_mbps\":100,\"delay_ms\":2},"
    "{\"a\":\"E\",\"a_port\":5,\"b\":\"G\",\"b_port\":2,\"capacity_mbps\":100,\"delay_ms\":3},"
    "{\"a\":\"F\",\"a_port\":4,\"b\":\"G\",\"b_port\":3,\"capacity_mbps\":100,\"delay_ms\":2},"
    "{\"a\":\"F\",\"a_port\":5,\"b\":\"H\",\"b_port\":2,\"capacity_mbps\":100,\"delay_ms\":1},"
    "{\"a\":\"G\",\"a_port\":4,\"b\":\"H\",\"b_port\":3,\"capacity_mbps\":100,\"delay_ms\":2}]}";

static struct topology *
parse(const char *json)
{
    struct topology *t;
    char err[256];
    if (topology_parse(json, "test", &t, err, sizeof err)) {
        fail_msg("%s", err);
    }
    return t;
}

/* "h1 C E F H h2" */
static const char *
path_str(const struct topology *t, const struct pgraph *g,
         const struct path *p, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->n_edges; i++) {
        const struct pgraph_edge *e = &g->edges[p->edges[i]];
        if (!i) {
            n += snprintf(buf + n, size - n, "%s", topology_node_name(t, e->from));
        }
        n += snprintf(buf + n, size - n, " %s", topology_node_name(t, e->to));
    }
    return buf;
}

#define DELAY_ONLY 1e-9    /* ref_bits: load term negligible */

static void
test_yen_known_graph(void **state)
{
    struct topology *t = parse(yen_json);
    struct pgraph g;
    pgraph_build(&g, t, NULL, DELAY_ONLY);
    int h1 = topology_find_node(t, "h1"), h2 = topology_find_node(t, "h2");
    struct path p[5];
    char buf[128];
    size_t n = paths_k_shortest(&g, h1, h2, 5, false, p);
    assert_int_equal(n, 5);
    /* Costs 5, 7, 7 (tie broken by hop count), then 8, 8. */
    assert_string_equal(path_str(t, &g, &p[0], buf, sizeof buf), "h1 C E F H h2");
    assert_true(fabs(p[0].delay_ms - 5) < 1e-9);
    assert_string_equal(path_str(t, &g, &p[1], buf, sizeof buf), "h1 C E G H h2");
    assert_string_equal(path_str(t, &g, &p[2], buf, sizeof buf), "h1 C D E F H h2");
    assert_true(fabs(p[2].delay_ms - 7) < 1e-9);
    assert_true(fabs(p[3].delay_ms - 8) < 1e-9);
    assert_true(fabs(p[4].delay_ms - 8) < 1e-9);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            assert_false(path_equal(&p[i], &p[j]));
        }
        path_destroy(&p[i]);
    }
    /* Exactly 3 of the cost-8 paths exist; asking for many more ends at
     * the number of loopless paths (all enumerated, none repeated). */
    struct path many[64];
    n = paths_k_shortest(&g, h1, h2, 64, false, many);
    assert_true(n > 5 && n < 64);
    for (size_t i = 1; i < n; i++) {
        assert_true(many[i].cost >= many[i - 1].cost - 1e-12);
    }
    for (size_t i = 0; i < n; i++) {
        path_destroy(&many[i]);
    }
    pgraph_destroy(&g);
    topology_destroy(t);
}

static void
test_edge_disjoint(void **state)
{
    struct topology *t = parse(yen_json);
    struct pgraph g;
    pgraph_build(&g, t, NULL, DELAY_ONLY);
    int h1 = topology_find_node(t, "h1"), h2 = topology_find_node(t, "h2");
    struct path p[4];
    char buf[128];
    /* After C-E-F-H, C's only other link is C-D: C D E G H (9); then C is
     * exhausted. */
    size_t n = paths_k_shortest(&g, h1, h2, 4, true, p);
    assert_int_equal(n, 2);
    assert_string_equal(path_str(t, &g, &p[0], buf, sizeof buf), "h1 C E F H h2");
    assert_string_equal(path_str(t, &g, &p[1], buf, sizeof buf), "h1 C D E G H h2");
    assert_true(fabs(p[1].delay_ms - 9) < 1e-9);
    path_destroy(&p[0]);
    path_destroy(&p[1]);
    pgraph_destroy(&g);
    topology_destroy(t);
}

static void
test_link_down_and_load(void **state)
{
    struct topology *t = parse(yen_json);
    struct linkstate *ls = linkstate_create(t);
    int h1 = topology_find_node(t, "h1"), h2 = topology_find_node(t, "h2");
    /* Links: 2 access first, then the file's; E-F is file link 4. */
    size_t ef = 2 + 4;
    assert_string_equal(topology_node_name(t, t->links[ef].a), "E");
    assert_string_equal(topology_node_name(t, t->links[ef].b), "F");
    linkstate_set_link_up(ls, ef, false);
    struct pgraph g;
    pgraph_build(&g, t, ls, DELAY_ONLY);
    struct path p;
    char buf[128];
    assert_int_equal(paths_shortest(&g, h1, h2, &p), 0);
    assert_string_equal(path_str(t, &g, &p, buf, sizeof buf), "h1 C E G H h2");
    path_destroy(&p);
    pgraph_destroy(&g);

    /* Load: with the default 1 Mbit reference chunk every idle 100 Mbit/s
     * link adds 10 ms. E-F up again but 95% loaded in E->F: 2 + 1/(5e3)*1e6
     * = 202 ms, so C-E-G-H wins again (7 + 40 = 47 vs 5 + 200 + 30). */
    linkstate_set_link_up(ls, ef, true);
    pgraph_build(&g, t, ls, 0);
    assert_int_equal(paths_shortest(&g, h1, h2, &p), 0);
    assert_string_equal(path_str(t, &g, &p, buf, sizeof buf), "h1 C E F H h2");
    path_destroy(&p);
    pgraph_destroy(&g);
    linkstate_set_rate(ls, ef, 0, 95);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 5) < 1e-9);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 1) - 100) < 1e-9);
    pgraph_build(&g, t, ls, 0);
    assert_int_equal(paths_shortest(&g, h1, h2, &p), 0);
    assert_string_equal(path_str(t, &g, &p, buf, sizeof buf), "h1 C E G H h2");
    path_destroy(&p);
    /* The reverse direction is unaffected. */
    assert_int_equal(paths_shortest(&g, h2, h1, &p), 0);
    assert_string_equal(path_str(t, &g, &p, buf, sizeof buf), "h2 H F E C h1");
    path_destroy(&p);
    pgraph_destroy(&g);
    linkstate_destroy(ls);
    topology_destroy(t);
}

static void
test_linkstate_counters(void **state)
{
    struct topology *t = parse(yen_json);
    struct linkstate *ls = linkstate_create(t);
    ls->ewma = 1.0;
    /* E port 4 is E-F, E is the a end: tx there measures E->F. */
    assert_int_equal(linkstate_feed_port(ls, 3, 4, 1000, 0, 10.0), 0);
    assert_int_equal(linkstate_feed_port(ls, 3, 4, 1000 + 6250000, 0, 11.0), 0);
    size_t ef = 6;
    assert_true(fabs(ls->links[ef].dir[0].rate_mbps - 50) < 1e-9);
    assert_true(fabs(linkstate_utilisation(ls, ef, 0) - 0.5) < 1e-9);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 50) < 1e-9);
    assert_true(linkstate_changed(ls, 0.2));
    linkstate_mark_planned(ls);
    assert_false(linkstate_changed(ls, 0.2));
    /* The controller's own planned load is not background: 50 of the
     * measured 50 is ours, so all 100 are available for re-planning; more
     * planned than measured counts only what was measured. */
    linkstate_add_own(ls, ef, 0, 30);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 80) < 1e-9);
    /* For a new placement, the rest measured on a link the run uses is
     * the run's too (its TCP streams took it); a direction the run does
     * not use keeps its load as background. */
    linkstate_own_measured(ls);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 100) < 1e-9);
    linkstate_clear_own(ls);
    linkstate_own_measured(ls);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 50) < 1e-9);
    linkstate_add_own(ls, ef, 0, 30);
    linkstate_add_own(ls, ef, 0, 40);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 100) < 1e-9);
    assert_true(fabs(linkstate_utilisation(ls, ef, 0) - 0.5) < 1e-9);
    linkstate_clear_own(ls);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 50) < 1e-9);
    /* Adopting a running run: everything measured is ours. */
    linkstate_own_all(ls);
    assert_true(fabs(linkstate_residual_mbps(ls, ef, 0) - 100) < 1e-9);
    linkstate_clear_own(ls);
    /* Counter reset: no negative rate. */
    assert_int_equal(linkstate_feed_port(ls, 3, 4, 10, 0, 12.0), 0);
    assert_true(ls->links[ef].dir[0].rate_mbps == 0);
    /* Access link: rx at the switch port is agent->switch (dir 0). */
    assert_int_equal(linkstate_feed_port(ls, 1, 1, 0, 0, 1.0), 0);
    assert_int_equal(linkstate_feed_port(ls, 1, 1, 125000, 250000, 2.0), 0);
    assert_true(fabs(ls->links[0].dir[0].rate_mbps - 2) < 1e-9);
    assert_true(fabs(ls->links[0].dir[1].rate_mbps - 1) < 1e-9);
    assert_int_equal(linkstate_feed_port(ls, 1, 99, 0, 0, 1.0), ENOENT);
    assert_int_equal(linkstate_feed_port(ls, 77, 1, 0, 0, 1.0), ENOENT);
    /* Port status. */
    assert_int_equal(linkstate_set_port_up(ls, 4, 2, false), 0);   /* F p2: D-F */
    assert_int_equal(linkstate_set_port_up(ls, 4, 2, false), EALREADY);
    assert_false(ls->links[2 + 2].up);
    assert_true(linkstate_residual_mbps(ls, 4, 0) == 0);
    linkstate_destroy(ls);
    topology_destroy(t);
}

static void
test_waterfill(void **state)
{
    char err[256];
    struct topology *t;
    assert_int_equal(topology_load("topology/diamond-4pi.json", &t, err,
                                   sizeof err), 0);
    struct linkstate *ls = linkstate_create(t);
    struct pgraph g;
    pgraph_build(&g, t, ls, 0);
    int a = topology_find_node(t, "pi1"), b = topology_find_node(t, "pi2");
    struct path p[3];
    size_t n = paths_k_shortest(&g, a, b, 3, true, p);
    assert_int_equal(n, 2);
    assert_true(fabs(p[0].bottleneck_mbps - 100) < 1e-9);   /* via c1 */
    assert_true(fabs(p[1].bottleneck_mbps - 50) < 1e-9);    /* via c2 */
    double w[2];
    /* Disjoint apart from the 1000 Mbit/s access links: 100 and 50. */
    double total = paths_split_waterfill(&g, p, 2, w);
    assert_true(fabs(total - 150) < 1e-9);
    assert_true(fabs(w[0] - 2.0 / 3) < 1e-9);
    assert_true(fabs(w[1] - 1.0 / 3) < 1e-9);
    pgraph_destroy(&g);

    /* pi1's access link loaded to 120 Mbit/s residual: both paths fill to
     * 50 (c2 full), then the c1 path alone to 70 (access full):
     * 70/120 and 50/120. */
    linkstate_set_rate(ls, 0, 0, 880);
    pgraph_build(&g, t, ls, 0);
    total = paths_split_waterfill(&g, p, 2, w);
    assert_true(fabs(total - 120) < 1e-9);
    assert_true(fabs(w[0] - 70.0 / 120) < 1e-9);
    assert_true(fabs(w[1] - 50.0 / 120) < 1e-9);
    pgraph_destroy(&g);

    /* The c2 path's link down: everything on c1. */
    linkstate_set_rate(ls, 0, 0, 0);
    int dir;
    int l = topology_link_at_port(t, topology_find_node(t, "c2"), 1, &dir);
    linkstate_set_link_up(ls, l, false);
    pgraph_build(&g, t, ls, 0);
    paths_split_waterfill(&g, p, 2, w);
    assert_true(fabs(w[0] - 1) < 1e-9 && w[1] == 0);
    path_destroy(&p[0]);
    path_destroy(&p[1]);
    /* Recomputed paths avoid it altogether. */
    n = paths_k_shortest(&g, a, b, 3, false, p);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p[i].n_edges; j++) {
            assert_int_not_equal(g.edges[p[i].edges[j]].link, l);
        }
        path_destroy(&p[i]);
    }
    pgraph_destroy(&g);
    linkstate_destroy(ls);
    topology_destroy(t);
}

static void
test_widest(void **state)
{
    char err[256];
    struct topology *t;
    assert_int_equal(topology_load("topology/diamond-4pi.json", &t, err,
                                   sizeof err), 0);
    struct linkstate *ls = linkstate_create(t);
    struct pgraph g;
    pgraph_build(&g, t, ls, 0);
    double rate[16], delay[16];
    int a = topology_find_node(t, "pi1"), b = topology_find_node(t, "pi4");
    paths_widest(&g, a, rate, delay);
    /* Via c1: 100 Mbit/s, 0.05 + 1 + 1 + 0.05 ms. */
    assert_true(fabs(rate[b] - 100) < 1e-9);
    assert_true(fabs(delay[b] - 2.1) < 1e-9);
    assert_true(isinf(rate[a]));
    pgraph_destroy(&g);
    /* c1's link to e4 loaded to 70 of 100: c2's 50 is now wider. */
    int dir;
    int l = topology_link_at_port(t, topology_find_node(t, "c1"), 4, &dir);
    linkstate_set_rate(ls, l, dir, 70);
    pgraph_build(&g, t, ls, 0);
    paths_widest(&g, a, rate, delay);
    assert_true(fabs(rate[b] - 50) < 1e-9);
    assert_true(fabs(delay[b] - 4.1) < 1e-9);
    assert_true(fabs(rate[topology_find_node(t, "pi2")] - 100) < 1e-9);
    pgraph_destroy(&g);
    linkstate_destroy(ls);
    topology_destroy(t);
}

static void
test_delay_equal(void **state)
{
    /* Two 10 Mbit/s paths, 10 kbit packets (mu = 1000/s each), extra 1 ms
     * on path 2, demand 10 Mbit/s (1000/s). Equal delay:
     *   1/(1000 - x1) = 0.001 + 1/(1000 - x2), x1 + x2 = 1000
     * gives x1 = 500 + y, y^2 + 2000 y - 250000 = 0, y = 118.034:
     * the golden section 0.618034 / 0.381966, T = 2.618 ms. */
    double cap[2] = {10, 10}, d[2] = {0, 0.001}, w[2], t;
    assert_int_equal(paths_split_delay_equal(cap, d, 2, 10, 1e4, w, &t), 0);
    assert_true(fabs(w[0] - 0.6180340) < 1e-6);
    assert_true(fabs(w[1] - 0.3819660) < 1e-6);
    assert_true(fabs(t - 0.0026180340) < 1e-9);

    /* Equal paths split equally. */
    double d0[2] = {0.002, 0.002};
    assert_int_equal(paths_split_delay_equal(cap, d0, 2, 5, 1e4, w, &t), 0);
    assert_true(fabs(w[0] - 0.5) < 1e-9);

    /* A path 100 ms longer stays unused at light load:
     * 1/(1000-100) = 1.1 ms < 100 ms + 1 ms. */
    double d2[2] = {0, 0.1};
    assert_int_equal(paths_split_delay_equal(cap, d2, 2, 1, 1e4, w, &t), 0);
    assert_true(fabs(w[0] - 1) < 1e-12 && w[1] == 0);
    assert_true(fabs(t - 1.0 / 900) < 1e-9);

    /* Demand over capacity: proportional to capacity, ERANGE. */
    double cap3[3] = {10, 30, 0}, d3[3] = {0, 0, 0}, w3[3];
    assert_int_equal(paths_split_delay_equal(cap3, d3, 3, 50, 1e4, w3, &t),
                     ERANGE);
    assert_true(fabs(w3[0] - 0.25) < 1e-12 && fabs(w3[1] - 0.75) < 1e-12);
    assert_true(w3[2] == 0 && isinf(t));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yen_known_graph),
        cmocka_unit_test(test_edge_disjoint),
        cmocka_unit_test(test_link_down_and_load),
        cmocka_unit_test(test_linkstate_counters),
        cmocka_unit_test(test_waterfill),
        cmocka_unit_test(test_widest),
        cmocka_unit_test(test_delay_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
