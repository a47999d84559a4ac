/* Flowpaths: sub-stream paths read back from installed flows (what a
 * restarted controller does to keep its predecessor's paths): every path
 * of a known topology traced back exactly, and each way the installed
 * state can be incomplete or inconsistent refused with its reason. */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "flowpaths.h"
#include "flows.h"

/* The diamond with a chord of test_flows.c:
 *
 *        s1 ---0--- s2
 *   h1 --|  \       |
 *        1   4      2
 *        |     \    |
 *        s3 ---3--- s4 -- h2
 *
 * Ports: s1: h1=1, l0=2, l1=3, l4=4; s2: l0=1, l2=2; s3: l1=1, l3=2;
 * s4: l2=1, l3=2, l4=3, h2=4; plus h3 on s2 port 3. */
static const struct southbound_switch switches[] = {
    {"s1", 1}, {"s2", 2}, {"s3", 3}, {"s4", 4},
};
static struct southbound_host hosts[3];
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
    hosts[2] = (struct southbound_host) {"h3", inet_addr("10.0.0.3"), 1, 3};
    return (struct southbound_topology) {
        switches, 4, hosts, 3, links, 5,
    };
}

/* Three sub-streams h1 -> h2 over three different paths (as a re-plan
 * may leave them: not the shortest), one h2 -> h3 and one h1 -> h3. */
static const size_t path0[] = {0, 2};          /* s1 s2 s4 */
static const size_t path1[] = {1, 3};          /* s1 s3 s4 */
static const size_t path2[] = {4};             /* s1 s4 (chord) */
static const size_t path3[] = {2};             /* s4 s2 */
static const size_t path4[] = {1, 3, 2};       /* s1 s3 s4 s2 */

static void
make_routes(struct southbound_route *r)
{
    r[0] = (struct southbound_route) {0x000, 0, 1, 6, 41000, 7100, path0, 2};
    r[1] = (struct southbound_route) {0x001, 0, 1, 6, 41001, 7100, path1, 2};
    r[2] = (struct southbound_route) {0x002, 0, 1, 6, 41002, 7100, path2, 1};
    r[3] = (struct southbound_route) {0x100, 1, 2, 6, 41008, 7100, path3, 1};
    r[4] = (struct southbound_route) {0x101, 0, 2, 6, 41009, 7100, path4, 3};
}

/* The flows a controller would install for 'r' (all links up). */
static void
install(const struct southbound_topology *t, const struct southbound_route *r,
        size_t n, struct flows_set *sets)
{
    bool up[5] = {true, true, true, true, true};

    flows_compute(t, up, r, n, sets, NULL);
}

static void
sets_init(struct flows_set *sets)
{
    for (int i = 0; i < 4; i++) {
        flows_set_init(&sets[i]);
    }
}

static void
sets_destroy(struct flows_set *sets)
{
    for (int i = 0; i < 4; i++) {
        flows_set_destroy(&sets[i]);
    }
}

/* Traces 'r' with its links cleared (as the controller knows it). */
static int
trace(const struct southbound_topology *t, const struct flows_set *sets,
      const bool *up, const struct southbound_route *r, size_t *got,
      size_t max, size_t *n, char *err)
{
    struct southbound_route q = *r;

    q.links = NULL;
    q.n_links = 0;
    return flowpaths_trace(t, sets, up, &q, got, max, n, err, 256);
}

static void
test_every_path_traced_back(void **state)
{
    (void) state;
    struct southbound_topology t = diamond();
    struct southbound_route r[5];
    struct flows_set sets[4];
    char err[256];

    make_routes(r);
    sets_init(sets);
    install(&t, r, 5, sets);
    for (size_t i = 0; i < 5; i++) {
        size_t got[8], n = 99;

        assert_int_equal(trace(&t, sets, NULL, &r[i], got, 8, &n, err), 0);
        assert_int_equal(n, r[i].n_links);
        assert_memory_equal(got, r[i].links, n * sizeof *got);
    }
    /* Exactly these routes: nothing left over. */
    assert_int_equal(flowpaths_count_extra(&t, sets, r, 5), 0);
    /* A route on the same switch pair with another port has no flows. */
    struct southbound_route other = r[0];
    other.src_port = 42000;
    size_t got[8], n;
    assert_int_equal(trace(&t, sets, NULL, &other, got, 8, &n, err), ENOENT);
    assert_non_null(strstr(err, "switch s1 has no flow"));
    sets_destroy(sets);
}

static void
test_incomplete_or_inconsistent_refused(void **state)
{
    (void) state;
    struct southbound_topology t = diamond();
    struct southbound_route r[5];
    struct flows_set sets[4];
    struct flows_key key;
    struct flows_entry *e;
    size_t got[8], n;
    char err[256];

    make_routes(r);
    sets_init(sets);

    /* A switch that lost its flows (restarted): the forward flow at s2
     * of path0 is missing. */
    install(&t, r, 5, sets);
    flows_key_substream(&key, 1, 6, hosts[0].ip, hosts[1].ip, htons(41000),
                        htons(7100));
    e = flows_set_find(&sets[1], &key);
    assert_non_null(e);
    flows_set_remove(&sets[1], e);
    assert_int_equal(trace(&t, sets, NULL, &r[0], got, 8, &n, err), ENOENT);
    assert_non_null(strstr(err, "switch s2 has no flow"));
    /* The other routes are intact; the 5 flows left of path0 (3
     * switches, 2 each) are left-overs for routes without it. */
    assert_int_equal(trace(&t, sets, NULL, &r[1], got, 8, &n, err), 0);
    assert_int_equal(flowpaths_count_extra(&t, sets, r + 1, 4), 5);

    /* The reverse flow (ACKs) missing. */
    install(&t, r, 5, sets);
    flows_key_substream(&key, 2, 6, hosts[1].ip, hosts[0].ip, htons(7100),
                        htons(41001));
    e = flows_set_find(&sets[2], &key);
    assert_non_null(e);
    flows_set_remove(&sets[2], e);
    assert_int_equal(trace(&t, sets, NULL, &r[1], got, 8, &n, err), ENOENT);
    assert_non_null(strstr(err, "switch s3 has no reverse flow"));

    /* Another route's cookie on a flow of the path. */
    install(&t, r, 5, sets);
    flows_key_substream(&key, 1, 6, hosts[0].ip, hosts[1].ip, htons(41001),
                        htons(7100));
    e = flows_set_find(&sets[2], &key);
    assert_non_null(e);
    e->cookie = flows_cookie(FLOWS_SUBSTREAM, 0x005);
    assert_int_equal(trace(&t, sets, NULL, &r[1], got, 8, &n, err), EINVAL);
    assert_non_null(strstr(err, "cookie"));

    /* A reverse flow that does not lead back where the forward came in. */
    install(&t, r, 5, sets);
    flows_key_substream(&key, 4, 6, hosts[1].ip, hosts[0].ip, htons(7100),
                        htons(41002));
    e = flows_set_find(&sets[0], &key);
    assert_non_null(e);
    e->out_port = 2;
    assert_int_equal(trace(&t, sets, NULL, &r[2], got, 8, &n, err), EINVAL);
    assert_non_null(strstr(err, "not back on 1"));

    /* A forward flow to a port that is neither a link nor the host: the
     * reverse flow for it has to exist too to get that far. */
    install(&t, r, 5, sets);
    flows_key_substream(&key, 1, 6, hosts[0].ip, hosts[1].ip, htons(41000),
                        htons(7100));
    e = flows_set_find(&sets[1], &key);
    e->out_port = 7;
    flows_key_substream(&key, 7, 6, hosts[1].ip, hosts[0].ip, htons(7100),
                        htons(41000));
    flows_set_put(&sets[1], &key, flows_cookie(FLOWS_SUBSTREAM, 0), 1);
    assert_int_equal(trace(&t, sets, NULL, &r[0], got, 8, &n, err), EINVAL);
    assert_non_null(strstr(err, "neither a link"));

    /* A link of the path down now. */
    install(&t, r, 5, sets);
    bool up[5] = {true, true, true, false, true};
    assert_int_equal(trace(&t, sets, up, &r[1], got, 8, &n, err), ENETDOWN);
    assert_non_null(strstr(err, "link 3"));
    assert_int_equal(trace(&t, sets, up, &r[0], got, 8, &n, err), 0);

    /* Longer than the room given (or a loop): refused, never overrun. */
    assert_int_equal(trace(&t, sets, NULL, &r[4], got, 2, &n, err), ELOOP);
    assert_true(n <= 2);

    /* Flows of a route that is not adopted are left-overs. */
    assert_int_equal(flowpaths_count_extra(&t, sets, r, 4), 8);
    sets_destroy(sets);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_path_traced_back),
        cmocka_unit_test(test_incomplete_or_inconsistent_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
