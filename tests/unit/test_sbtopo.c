/* Sbtopo: the controller topology (topology/diamond-4pi.json) seen by the
 * southbound, and plan paths turned into routes the southbound accepts. */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sbtopo.h"
#include "topology.h"
#include "flows.h"

static struct topology *
load(void)
{
    struct topology *t;
    char err[256];
    int error = topology_load("topology/diamond-4pi.json", &t, err, sizeof err);
    if (error) {
        fail_msg("%s", err);
    }
    return t;
}

static void
test_view(void **state)
{
    (void) state;
    struct topology *t = load();
    struct sbtopo st;
    char err[256];

    sbtopo_init(&st, t);
    assert_int_equal(st.sb.n_switches, 6);
    assert_int_equal(st.sb.n_hosts, 4);
    assert_int_equal(st.sb.n_links, 8);        /* Access links dropped. */
    assert_int_equal(flows_check_topology(&st.sb, err, sizeof err), 0);
    assert_string_equal(st.sb.hosts[2].name, "pi3");
    assert_true(st.sb.hosts[2].ip == inet_addr("10.0.0.3"));
    assert_int_equal(st.sb.hosts[2].sw, 2);     /* e3 */
    assert_int_equal(st.sb.hosts[2].port, 1);
    assert_true(st.sb.switches[4].dpid == 0x11);   /* c1 */
    sbtopo_destroy(&st);
    topology_destroy(t);
}

static void
test_route(void **state)
{
    (void) state;
    struct topology *t = load();
    struct sbtopo st;
    char err[256];

    sbtopo_init(&st, t);
    /* pi1 -> e1 -> c2 -> e2 -> pi2, as a plan gives it: access, e1-c2,
     * c2-e2, access. */
    int access1 = -1, access2 = -1, e1c2 = -1, e2c2 = -1;
    for (size_t i = 0; i < t->n_links; i++) {
        const struct topo_link *l = &t->links[i];
        int a = l->a, b = l->b;
        if (l->access && a == topology_agent_node(t, 0)) access1 = i;
        if (l->access && a == topology_agent_node(t, 1)) access2 = i;
        if (!l->access && a == 0 && b == 5) e1c2 = i;
        if (!l->access && a == 1 && b == 5) e2c2 = i;
    }
    assert_true(access1 >= 0 && access2 >= 0 && e1c2 >= 0 && e2c2 >= 0);
    int path[] = {access1, e1c2, e2c2, access2};
    size_t buf[4];
    struct southbound_route r;

    assert_int_equal(sbtopo_route(&st, 9, 0, 1, 40001, 7100, path, 4, buf,
                                  &r), 0);
    assert_int_equal(r.n_links, 2);
    assert_int_equal(r.src_host, 0);
    assert_int_equal(r.dst_host, 1);
    assert_int_equal(flows_check_route(&st.sb, &r, err, sizeof err), 0);
    assert_int_equal(st.sb.links[r.links[0]].port[0], 3);   /* e1 port 3 */

    int bad[] = {access1, 999};
    assert_int_equal(sbtopo_route(&st, 9, 0, 1, 1, 2, bad, 2, buf, &r),
                     EINVAL);
    assert_int_equal(sbtopo_route(&st, 9, 0, 7, 1, 2, path, 4, buf, &r),
                     EINVAL);
    sbtopo_destroy(&st);
    topology_destroy(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view),
        cmocka_unit_test(test_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
