/* sbdriver: a minimal controller around the southbound, for integration
 * tests with a real ovs-vswitchd (tests/integration/openflow_ovs.sh).
 *
 *   sbdriver --topo FILE --listen PVCONN
 *
 * It runs a libevent loop like edgetrain-controller: southbound events
 * arrive through southbound_event_fd().  Commands on stdin, one per line:
 *
 *   route ID SRC DST SPORT DPORT L[,L...]|-   stage a TCP route (host and
 *                                            link indexes; '-' no links)
 *   commit                                   replace routes by the staged
 *   quit
 *
 * When a link goes down, every route crossing it is moved to the shortest
 * path over the links still up (the real controller asks its routing
 * policy instead).  Everything seen goes to stdout, one event per line,
 * with "t=<ms>" (libopenvswitch monotonic clock).
 *
 * Topology file lines:
 *   switch NAME DPID
 *   host NAME IPV4 SWITCH PORT
 *   link SWITCH PORT SWITCH PORT */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flows.h"
#include "southbound.h"
#include "timeval.h"

enum { MAX_ITEMS = 64, MAX_HOPS = 16 };

struct driver_route {
    struct southbound_route r;
    size_t links[MAX_HOPS];
};

struct driver {
    struct southbound_topology topo;
    struct southbound_switch switches[MAX_ITEMS];
    struct southbound_host hosts[MAX_ITEMS];
    struct southbound_link links[MAX_ITEMS];
    char names[2 * MAX_ITEMS][32];

    struct southbound *sb;
    struct event_base *base;
    bool link_up[MAX_ITEMS];
    /* port_up[sw][port], 1 up / 0 down, for ports < 64. */
    signed char port_up[MAX_ITEMS][64];

    struct driver_route staged[MAX_ITEMS], routes[MAX_ITEMS];
    size_t n_staged, n_routes;
    long long int reroute_start;    /* Port-status time of a pending
                                     * reroute, or 0. */
    uint64_t reroute_gen;
    char stdin_buf[4096];
    size_t stdin_len;
};

static int
find_switch(const struct driver *d, const char *name)
{
    for (size_t i = 0; i < d->topo.n_switches; i++) {
        if (!strcmp(d->switches[i].name, name)) {
            return (int) i;
        }
    }
    return -1;
}

static int
load_topology(struct driver *d, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int lineno = 0;
    size_t n_names = 0;

    if (!f) {
        fprintf(stderr, "sbdriver: %s: %s\n", path, strerror(errno));
        return errno;
    }
    while (fgets(line, sizeof line, f)) {
        char a[32], b[32], c[32];
        unsigned long long dpid;
        unsigned p1, p2;

        lineno++;
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (sscanf(line, "switch %31s %lli", a, &dpid) == 2
            && d->topo.n_switches < MAX_ITEMS) {
            struct southbound_switch *s = &d->switches[d->topo.n_switches++];
            strcpy(d->names[n_names], a);
            s->name = d->names[n_names++];
            s->dpid = dpid;
        } else if (sscanf(line, "host %31s %31s %31s %u", a, b, c, &p1) == 4
                   && d->topo.n_hosts < MAX_ITEMS) {
            struct southbound_host *h = &d->hosts[d->topo.n_hosts++];
            int sw = find_switch(d, c);
            struct in_addr ip;
            if (sw < 0 || !inet_aton(b, &ip)) {
                goto bad;
            }
            strcpy(d->names[n_names], a);
            h->name = d->names[n_names++];
            h->ip = ip.s_addr;
            h->sw = sw;
            h->port = p1;
        } else if (sscanf(line, "link %31s %u %31s %u", a, &p1, b, &p2) == 4
                   && d->topo.n_links < MAX_ITEMS) {
            struct southbound_link *l = &d->links[d->topo.n_links++];
            int s1 = find_switch(d, a), s2 = find_switch(d, b);
            if (s1 < 0 || s2 < 0) {
                goto bad;
            }
            l->sw[0] = s1;
            l->port[0] = p1;
            l->sw[1] = s2;
            l->port[1] = p2;
        } else {
            goto bad;
        }
    }
    fclose(f);
    d->topo.switches = d->switches;
    d->topo.hosts = d->hosts;
    d->topo.links = d->links;
    return 0;

bad:
    fprintf(stderr, "sbdriver: %s:%d: cannot parse: %s", path, lineno, line);
    fclose(f);
    return EINVAL;
}

static void
say(const char *fmt, ...)
{
    va_list args;

    printf("t=%lld ", time_msec());
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
}

static int
push_routes(struct driver *d, uint64_t *gen)
{
    struct southbound_route rs[MAX_ITEMS];

    for (size_t i = 0; i < d->n_routes; i++) {
        rs[i] = d->routes[i].r;
        rs[i].links = d->routes[i].links;
    }
    return southbound_set_routes(d->sb, rs, d->n_routes, gen);
}

/* Moves every route that crosses a down link to a shortest path over the
 * links that are up. */
static void
reroute(struct driver *d, long long int since)
{
    bool changed = false;

    for (size_t i = 0; i < d->n_routes; i++) {
        struct driver_route *dr = &d->routes[i];
        bool broken = false;

        for (size_t j = 0; j < dr->r.n_links; j++) {
            broken = broken || !d->link_up[dr->links[j]];
        }
        if (!broken) {
            continue;
        }
        size_t n;
        int error = flows_shortest_path(&d->topo, d->link_up, dr->r.src_host,
                                        dr->r.dst_host, dr->links, MAX_HOPS,
                                        &n);
        if (error) {
            say("reroute route=%"PRIu64" failed: %s", dr->r.id,
                strerror(error));
            continue;
        }
        dr->r.n_links = n;
        changed = true;
        say("reroute route=%"PRIu64" first_link=%zu hops=%zu", dr->r.id,
            n ? dr->links[0] : 0, n);
    }
    if (changed && !push_routes(d, &d->reroute_gen)) {
        d->reroute_start = since;
    }
}

static void
update_links(struct driver *d, long long int now)
{
    bool any_down = false;

    for (size_t l = 0; l < d->topo.n_links; l++) {
        const struct southbound_link *link = &d->links[l];
        bool up = true;

        for (int side = 0; side < 2; side++) {
            uint32_t port = link->port[side];
            if (port < 64 && !d->port_up[link->sw[side]][port]) {
                up = false;
            }
        }
        if (up != d->link_up[l]) {
            say("link %zu %s", l, up ? "up" : "down");
            d->link_up[l] = up;
            any_down = any_down || !up;
        }
    }
    if (any_down) {
        reroute(d, now);
    }
}

static void
on_sb_event(evutil_socket_t fd OVS_UNUSED, short what OVS_UNUSED, void *d_)
{
    struct driver *d = d_;
    struct southbound_event ev;

    while (southbound_next_event(d->sb, &ev)) {
        const char *sw = ev.sw < d->topo.n_switches
                         ? d->switches[ev.sw].name : "?";

        switch (ev.type) {
        case SOUTHBOUND_SWITCH_UP:
        case SOUTHBOUND_SWITCH_DOWN:
        case SOUTHBOUND_ERROR:
            say("%s %s", southbound_event_type_name(ev.type), sw);
            break;
        case SOUTHBOUND_PORT_STATUS:
            say("port-status %s %"PRIu32" %s", sw, ev.port,
                ev.up ? "up" : "down");
            if (ev.sw < MAX_ITEMS && ev.port < 64) {
                d->port_up[ev.sw][ev.port] = ev.up;
                update_links(d, ev.time_msec);
            }
            break;
        case SOUTHBOUND_PORT_STATS:
            say("port-stats %s %"PRIu32" rx_bytes=%"PRIu64" tx_bytes=%"PRIu64
                " rx_packets=%"PRIu64" tx_packets=%"PRIu64, sw, ev.port,
                ev.rx_bytes, ev.tx_bytes, ev.rx_packets, ev.tx_packets);
            break;
        case SOUTHBOUND_FLOWS_SYNCED:
            say("flows-synced gen=%"PRIu64, ev.generation);
            if (d->reroute_start && ev.generation >= d->reroute_gen) {
                say("reroute-done ms=%lld", ev.time_msec - d->reroute_start);
                d->reroute_start = 0;
            }
            break;
        }
    }
}

static void
handle_line(struct driver *d, char *line)
{
    unsigned long long id;
    unsigned src, dst, sport, dport;
    char links[128];

    if (sscanf(line, "route %llu %u %u %u %u %127s", &id, &src, &dst, &sport,
               &dport, links) == 6 && d->n_staged < MAX_ITEMS) {
        struct driver_route *dr = &d->staged[d->n_staged];
        memset(dr, 0, sizeof *dr);
        dr->r.id = id;
        dr->r.src_host = src;
        dr->r.dst_host = dst;
        dr->r.ip_proto = 6;
        dr->r.src_port = sport;
        dr->r.dst_port = dport;
        if (strcmp(links, "-")) {
            for (char *p = strtok(links, ","); p && dr->r.n_links < MAX_HOPS;
                 p = strtok(NULL, ",")) {
                dr->links[dr->r.n_links++] = strtoul(p, NULL, 10);
            }
        }
        d->n_staged++;
    } else if (!strcmp(line, "commit")) {
        uint64_t gen;
        memcpy(d->routes, d->staged, sizeof d->staged);
        d->n_routes = d->n_staged;
        d->n_staged = 0;
        int error = push_routes(d, &gen);
        say("commit routes=%zu gen=%"PRIu64" %s", d->n_routes,
            error ? 0 : gen, error ? strerror(error) : "ok");
    } else if (!strcmp(line, "quit")) {
        event_base_loopbreak(d->base);
    } else if (line[0]) {
        say("error unknown command: %s", line);
    }
}

static void
on_stdin(evutil_socket_t fd, short what OVS_UNUSED, void *d_)
{
    struct driver *d = d_;
    ssize_t n = read(fd, d->stdin_buf + d->stdin_len,
                     sizeof d->stdin_buf - 1 - d->stdin_len);

    if (n <= 0) {
        event_base_loopbreak(d->base);
        return;
    }
    d->stdin_len += n;
    d->stdin_buf[d->stdin_len] = '\0';
    char *start = d->stdin_buf, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        handle_line(d, start);
        start = nl + 1;
    }
    d->stdin_len -= start - d->stdin_buf;
    memmove(d->stdin_buf, start, d->stdin_len);
}

int
main(int argc, char **argv)
{
    static struct driver d;
    const char *topo_path = NULL, *listen = NULL;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topo")) {
            topo_path = argv[i + 1];
        } else if (!strcmp(argv[i], "--listen")) {
            listen = argv[i + 1];
        }
    }
    if (!topo_path || !listen) {
        fprintf(stderr, "usage: sbdriver --topo FILE --listen PVCONN\n");
        return 2;
    }
    if (load_topology(&d, topo_path)) {
        return 1;
    }
    for (size_t i = 0; i < MAX_ITEMS; i++) {
        d.link_up[i] = true;
        memset(d.port_up[i], 1, sizeof d.port_up[i]);
    }

    struct southbound_options options = {
        .listen = listen,
        .stats_interval_ms = 1000,
    };
    int error = southbound_create(&d.topo, &options, &d.sb);
    if (error) {
        fprintf(stderr, "sbdriver: southbound: %s\n", strerror(error));
        return 1;
    }
    d.base = event_base_new();
    struct event *sb_ev = event_new(d.base, southbound_event_fd(d.sb),
                                    EV_READ | EV_PERSIST, on_sb_event, &d);
    struct event *in_ev = event_new(d.base, STDIN_FILENO,
                                    EV_READ | EV_PERSIST, on_stdin, &d);
    event_add(sb_ev, NULL);
    event_add(in_ev, NULL);
    say("listening %s", listen);
    event_base_dispatch(d.base);

    event_free(sb_ev);
    event_free(in_ev);
    event_base_free(d.base);
    southbound_destroy(d.sb);
    say("exit");
    return 0;
}
