/* topology: JSON loader and validator. See topology.h, docs/topology.md. */
#include "topology.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Defaults for an agent's attachment link. */
#define ACCESS_MBPS_DEFAULT 1000.0
#define ACCESS_DELAY_MS_DEFAULT 0.05

/* Parser state: the error buffer and where we are. */
struct tparse {
    char *err;
    size_t err_size;
    const char *where;
};

static int
tfail(struct tparse *p, const char *fmt, ...)
{
    if (p->err && p->err_size) {
        int n = snprintf(p->err, p->err_size, "%s: ", p->where);
        if (n < 0 || (size_t) n >= p->err_size) {
            n = 0;
        }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->err_size - n, fmt, ap);
        va_end(ap);
    }
    return EINVAL;
}

static char *
xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) {
        abort();
    }
    return d;
}

int
topology_parse_hostport(const char *s, uint32_t *ip, uint16_t *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || !colon[1]) {
        return EINVAL;
    }
    char *end;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (*end || errno || v < 1 || v > 65535) {
        return EINVAL;
    }
    char host[256];
    size_t hl = colon - s;
    if (hl >= sizeof host) {
        return EINVAL;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    struct in_addr a;
    *ip = inet_pton(AF_INET, host, &a) == 1 ? ntohl(a.s_addr) : 0;
    *port = (uint16_t) v;
    return 0;
}

/* Reads optional string member 'key' of 'obj' into '*out' (NULL if absent).
 * Error if present and not a non-empty string. */
static int
get_string(struct tparse *p, const cJSON *obj, const char *item,
           const char *key, bool required, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) {
        return required ? tfail(p, "%s: missing \"%s\"", item, key) : 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring || !v->valuestring[0]) {
        return tfail(p, "%s: \"%s\" must be a non-empty string", item, key);
    }
    *out = v->valuestring;
    return 0;
}

/* Reads optional number member 'key' within [lo, hi] into '*out' (left
 * untouched if absent). */
static int
get_number(struct tparse *p, const cJSON *obj, const char *item,
           const char *key, bool required, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        return required ? tfail(p, "%s: missing \"%s\"", item, key) : 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)
        || v->valuedouble < lo || v->valuedouble > hi) {
        char *txt = cJSON_PrintUnformatted(v);
        int e = tfail(p, "%s: bad number for \"%s\": %s (expected %g..%g)",
                      item, key, txt ? txt : "?", lo, hi);
        cJSON_free(txt);
        return e;
    }
    *out = v->valuedouble;
    return 0;
}

static int
get_port(struct tparse *p, const cJSON *obj, const char *item,
         const char *key, uint32_t *port)
{
    double d = 0;
    int e = get_number(p, obj, item, key, true, 1, 0xffffff00, &d);
    if (!e && d != floor(d)) {
        e = tfail(p, "%s: bad number for \"%s\": %g is not an integer port",
                  item, key, d);
    }
    *port = (uint32_t) d;
    return e;
}

static int
parse_dpid(struct tparse *p, const cJSON *v, const char *item, uint64_t *dpid)
{
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 1
        && v->valuedouble <= 9007199254740992.0
        && v->valuedouble == floor(v->valuedouble)) {
        *dpid = (uint64_t) v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v) && v->valuestring) {
        const char *s = v->valuestring;
        if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2)) {
            s += 2;
        }
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 16);
        if (*s && !*end && !errno && x && strlen(s) <= 16) {
            *dpid = x;
            return 0;
        }
    }
    return tfail(p, "%s: bad number for \"dpid\" (a positive integer or up "
                 "to 16 hex digits)", item);
}

static const cJSON *
get_array(struct tparse *p, const cJSON *root, const char *key, bool required,
          int *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    *err = 0;
    if (!a) {
        if (required) {
            *err = tfail(p, "missing \"%s\" array", key);
        }
        return NULL;
    }
    if (!cJSON_IsArray(a)) {
        *err = tfail(p, "\"%s\" must be an array", key);
        return NULL;
    }
    return a;
}

int
topology_find_node(const struct topology *t, const char *name)
{
    for (size_t i = 0; i < t->n_switches; i++) {
        if (!strcmp(t->switches[i].name, name)) {
            return (int) i;
        }
    }
    for (size_t i = 0; i < t->n_agents; i++) {
        if (!strcmp(t->agents[i].name, name)) {
            return topology_agent_node(t, i);
        }
    }
    return -1;
}

int
topology_find_agent(const struct topology *t, const char *name)
{
    for (size_t i = 0; i < t->n_agents; i++) {
        if (!strcmp(t->agents[i].name, name)) {
            return (int) i;
        }
    }
    return -1;
}

int
topology_find_switch_dpid(const struct topology *t, uint64_t dpid)
{
    for (size_t i = 0; i < t->n_switches; i++) {
        if (t->switches[i].dpid == dpid) {
            return (int) i;
        }
    }
    return -1;
}

const char *
topology_node_name(const struct topology *t, int node)
{
    if (node < 0 || (size_t) node >= topology_n_nodes(t)) {
        return "?";
    }
    return (size_t) node < t->n_switches ? t->switches[node].name
           : t->agents[node - t->n_switches].name;
}

int
topology_link_at_port(const struct topology *t, int sw, uint32_t port,
                      int *dir)
{
    for (size_t i = 0; i < t->n_links; i++) {
        const struct topo_link *l = &t->links[i];
        if (l->a == sw && l->a_port == port) {
            *dir = 0;
            return (int) i;
        }
        if (l->b == sw && l->b_port == port) {
            *dir = 1;
            return (int) i;
        }
    }
    return -1;
}

/* Checks that 'port' of switch 'sw' is not used yet; records it. The used
 * ports are pairs in 'used' (n so far). */
static int
claim_port(struct tparse *p, const struct topology *t, uint64_t *used,
           size_t *n_used, int sw, uint32_t port, const char *item)
{
    uint64_t key = ((uint64_t) sw << 32) | port;
    for (size_t i = 0; i < *n_used; i++) {
        if (used[i] == key) {
            return tfail(p, "%s: duplicate port %" PRIu32 " on switch '%s'",
                         item, port, t->switches[sw].name);
        }
    }
    used[(*n_used)++] = key;
    return 0;
}

/* Every agent must reach every other agent (through up links). */
static int
check_connected(struct tparse *p, const struct topology *t)
{
    size_t n = topology_n_nodes(t);
    if (!t->n_switches || t->n_agents < 2) {
        return 0;
    }
    int *comp = malloc(n * sizeof *comp);
    for (size_t i = 0; i < n; i++) {
        comp[i] = (int) i;
    }
    /* Union-find with path halving. */
    for (size_t i = 0; i < t->n_links; i++) {
        int a = t->links[i].a, b = t->links[i].b;
        while (comp[a] != a) {
            a = comp[a] = comp[comp[a]];
        }
        while (comp[b] != b) {
            b = comp[b] = comp[comp[b]];
        }
        comp[a] = b;
    }
    int e = 0;
    int first = -1;
    for (size_t i = 0; i < t->n_agents && !e; i++) {
        int x = topology_agent_node(t, i);
        while (comp[x] != x) {
            x = comp[x];
        }
        if (first < 0) {
            first = x;
        } else if (x != first) {
            e = tfail(p, "agents[%zu]: agent '%s' cannot reach agent '%s' "
                      "(no path of links)", i, t->agents[i].name,
                      t->agents[0].name);
        }
    }
    free(comp);
    return e;
}

static int
parse_switches(struct tparse *p, const cJSON *arr, struct topology *t)
{
    size_t n = arr ? (size_t) cJSON_GetArraySize(arr) : 0;
    t->switches = calloc(n ? n : 1, sizeof *t->switches);
    size_t i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, arr) {
        char item[48];
        snprintf(item, sizeof item, "switches[%zu]", i);
        if (!cJSON_IsObject(s)) {
            return tfail(p, "%s: must be an object", item);
        }
        const char *name;
        int e = get_string(p, s, item, "name", true, &name);
        if (e) {
            return e;
        }
        struct topo_switch *sw = &t->switches[i];
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "dpid");
        if (!d) {
            return tfail(p, "%s: missing \"dpid\"", item);
        }
        if ((e = parse_dpid(p, d, item, &sw->dpid)) != 0) {
            return e;
        }
        if (topology_find_node(t, name) >= 0) {
            return tfail(p, "%s: duplicate name '%s'", item, name);
        }
        for (size_t j = 0; j < i; j++) {
            if (t->switches[j].dpid == sw->dpid) {
                return tfail(p, "%s: duplicate dpid %016" PRIx64 " (also "
                             "switch '%s')", item, sw->dpid,
                             t->switches[j].name);
            }
        }
        sw->name = xstrdup(name);
        t->n_switches = ++i;
    }
    return 0;
}

static int
parse_agents(struct tparse *p, const cJSON *arr, struct topology *t,
             uint64_t *used, size_t *n_used)
{
    size_t n = (size_t) cJSON_GetArraySize(arr);
    if (!n) {
        return tfail(p, "\"agents\" is empty (at least one agent needed)");
    }
    t->agents = calloc(n, sizeof *t->agents);
    size_t i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, arr) {
        char item[48];
        snprintf(item, sizeof item, "agents[%zu]", i);
        if (!cJSON_IsObject(a)) {
            return tfail(p, "%s: must be an object", item);
        }
        const char *name, *data, *mgmt, *mac, *swname;
        int e;
        if ((e = get_string(p, a, item, "name", true, &name))
            || (e = get_string(p, a, item, "data", true, &data))
            || (e = get_string(p, a, item, "mgmt", false, &mgmt))
            || (e = get_string(p, a, item, "mac", false, &mac))
            || (e = get_string(p, a, item, "switch", false, &swname))) {
            return e;
        }
        if (topology_find_node(t, name) >= 0) {
            return tfail(p, "%s: duplicate name '%s'", item, name);
        }
        struct topo_agent *ag = &t->agents[i];
        if (topology_parse_hostport(data, &ag->ip, &ag->data_port)) {
            return tfail(p, "%s: bad \"data\" address '%s' (expected "
                         "host:port)", item, data);
        }
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(t->agents[j].data_addr, data)) {
                return tfail(p, "%s: duplicate data address '%s' (also agent "
                             "'%s')", item, data, t->agents[j].name);
            }
        }
        double gflops = 0, mem_mb = 0;
        double cap = ACCESS_MBPS_DEFAULT, delay = ACCESS_DELAY_MS_DEFAULT;
        double loss = 0;
        if ((e = get_number(p, a, item, "gflops", false, 0, 1e6, &gflops))
            || (e = get_number(p, a, item, "memory_mb", false, 0, 1e9,
                               &mem_mb))
            || (e = get_number(p, a, item, "capacity_mbps", false, 1e-3, 1e7,
                               &cap))
            || (e = get_number(p, a, item, "delay_ms", false, 0, 1e5, &delay))
            || (e = get_number(p, a, item, "loss_pct", false, 0, 100,
                               &loss))) {
            return e;
        }
        ag->gflops = gflops;
        ag->memory_bytes = (uint64_t) (mem_mb * 1048576.0);
        ag->sw = -1;
        if (t->n_switches) {
            if (!swname) {
                return tfail(p, "%s: missing \"switch\" (the topology has "
                             "switches, so every agent needs an attachment)",
                             item);
            }
            int sw = topology_find_node(t, swname);
            if (sw < 0 || (size_t) sw >= t->n_switches) {
                return tfail(p, "%s: unknown node '%s' (not a switch)", item,
                             swname);
            }
            if ((e = get_port(p, a, item, "port", &ag->port))
                || (e = claim_port(p, t, used, n_used, sw, ag->port, item))) {
                return e;
            }
            ag->sw = sw;
        } else if (swname) {
            return tfail(p, "%s: unknown node '%s' (the topology has no "
                         "switches)", item, swname);
        }
        ag->name = xstrdup(name);
        ag->data_addr = xstrdup(data);
        ag->mgmt_addr = mgmt ? xstrdup(mgmt) : NULL;
        ag->mac = mac ? xstrdup(mac) : NULL;
        t->n_agents = ++i;

        if (ag->sw >= 0) {
            struct topo_link *l = &t->links[t->n_links++];
            l->a = topology_agent_node(t, i - 1);  /* n_switches fixed now */
            l->a_port = 0;
            l->b = ag->sw;
            l->b_port = ag->port;
            l->capacity_mbps = cap;
            l->delay_ms = delay;
            l->loss_pct = loss;
            l->access = true;
        }
    }
    return 0;
}

static int
parse_links(struct tparse *p, const cJSON *arr, struct topology *t,
            uint64_t *used, size_t *n_used)
{
    size_t i = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, arr) {
        char item[48];
        snprintf(item, sizeof item, "links[%zu]", i);
        if (!cJSON_IsObject(l)) {
            return tfail(p, "%s: must be an object", item);
        }
        const char *an, *bn;
        int e;
        const cJSON *ja = cJSON_GetObjectItemCaseSensitive(l, "a");
        const cJSON *jb = cJSON_GetObjectItemCaseSensitive(l, "b");
        if (!ja || !jb) {
            return tfail(p, "%s: dangling link (needs both ends \"a\" and "
                         "\"b\")", item);
        }
        if ((e = get_string(p, l, item, "a", true, &an))
            || (e = get_string(p, l, item, "b", true, &bn))) {
            return e;
        }
        int a = topology_find_node(t, an), b = topology_find_node(t, bn);
        if (a < 0 || b < 0) {
            return tfail(p, "%s: unknown node '%s'", item, a < 0 ? an : bn);
        }
        if ((size_t) a >= t->n_switches || (size_t) b >= t->n_switches) {
            return tfail(p, "%s: '%s' is an agent; agents attach through "
                         "their \"switch\"/\"port\", links join switches",
                         item, (size_t) a >= t->n_switches ? an : bn);
        }
        if (a == b) {
            return tfail(p, "%s: link from '%s' to itself", item, an);
        }
        struct topo_link *tl = &t->links[t->n_links];
        tl->a = a;
        tl->b = b;
        tl->capacity_mbps = 0;
        tl->delay_ms = 0;
        if ((e = get_port(p, l, item, "a_port", &tl->a_port))
            || (e = get_port(p, l, item, "b_port", &tl->b_port))
            || (e = get_number(p, l, item, "capacity_mbps", true, 1e-3, 1e7,
                               &tl->capacity_mbps))
            || (e = get_number(p, l, item, "delay_ms", false, 0, 1e5,
                               &tl->delay_ms))
            || (e = get_number(p, l, item, "loss_pct", false, 0, 100,
                               &tl->loss_pct))
            || (e = claim_port(p, t, used, n_used, a, tl->a_port, item))
            || (e = claim_port(p, t, used, n_used, b, tl->b_port, item))) {
            return e;
        }
        t->n_links++;
        i++;
    }
    return 0;
}

int
topology_parse(const char *text, const char *where, struct topology **topop,
               char *err, size_t err_size)
{
    struct tparse p = {err, err_size, where ? where : "topology"};
    *topop = NULL;
    if (err && err_size) {
        err[0] = '\0';
    }
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text ? (size_t) (at - text) : 0;
        int line = 1;
        for (size_t i = 0; i < off && text[i]; i++) {
            line += text[i] == '\n';
        }
        return tfail(&p, "line %d: JSON syntax error", line);
    }
    struct topology *t = calloc(1, sizeof *t);
    int e = 0;
    const cJSON *sw_arr, *ag_arr, *ln_arr;
    uint64_t *used = NULL;
    if (!cJSON_IsObject(root)) {
        e = tfail(&p, "top level must be an object");
        goto out;
    }
    const cJSON *agents_key = cJSON_GetObjectItemCaseSensitive(root, "agents")
                              ? NULL : cJSON_GetObjectItemCaseSensitive(root,
                                                                        "hosts");
    if ((sw_arr = get_array(&p, root, "switches", false, &e), e)
        || (ag_arr = get_array(&p, root, agents_key ? "hosts" : "agents",
                               true, &e), e)
        || (ln_arr = get_array(&p, root, "links", false, &e), e)) {
        goto out;
    }
    const char *name = NULL, *mgmt = NULL;
    if ((e = get_string(&p, root, "topology", "name", false, &name))
        || (e = get_string(&p, root, "topology", "management", false,
                           &mgmt))) {
        goto out;
    }
    t->name = xstrdup(name ? name : "unnamed");
    t->mgmt_addr = mgmt ? xstrdup(mgmt) : NULL;

    size_t n_ag = (size_t) cJSON_GetArraySize(ag_arr);
    size_t n_ln = ln_arr ? (size_t) cJSON_GetArraySize(ln_arr) : 0;
    t->links = calloc(n_ag + n_ln + 1, sizeof *t->links);
    used = calloc(n_ag + 2 * n_ln + 1, sizeof *used);
    size_t n_used = 0;
    if ((e = parse_switches(&p, sw_arr, t))
        || (e = parse_agents(&p, ag_arr, t, used, &n_used))) {
        goto out;
    }
    if (n_ln && !t->n_switches) {
        e = tfail(&p, "links[0]: dangling link (the topology has no "
                  "switches)");
        goto out;
    }
    if ((e = parse_links(&p, ln_arr, t, used, &n_used))
        || (e = check_connected(&p, t))) {
        goto out;
    }
out:
    free(used);
    cJSON_Delete(root);
    if (e) {
        topology_destroy(t);
        return e;
    }
    *topop = t;
    return 0;
}

int
topology_load(const char *path, struct topology **topop, char *err,
              size_t err_size)
{
    *topop = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, err_size, "%s: %s", path, strerror(e));
        return e;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap >= (64u << 20)) {
                fclose(f);
                free(buf);
                snprintf(err, err_size, "%s: file too large", path);
                return EFBIG;
            }
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        snprintf(err, err_size, "%s: read error", path);
        return EIO;
    }
    buf[len] = '\0';
    int e = topology_parse(buf, path, topop, err, err_size);
    free(buf);
    return e;
}

void
topology_destroy(struct topology *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->n_switches; i++) {
        free(t->switches[i].name);
    }
    for (size_t i = 0; i < t->n_agents; i++) {
        free(t->agents[i].name);
        free(t->agents[i].data_addr);
        free(t->agents[i].mgmt_addr);
        free(t->agents[i].mac);
    }
    free(t->switches);
    free(t->agents);
    free(t->links);
    free(t->name);
    free(t->mgmt_addr);
    free(t);
}
