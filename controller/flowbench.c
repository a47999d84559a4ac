/* Flowbench: see flowbench.h. */
#include <config.h>

#include "flowbench.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "flows.h"
#include "log.h"
#include "ofswitch.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vlog.h"
#include "timeval.h"
#include "util.h"

struct flowbench_ctx {
    bool ready;
    bool done;
    int error;
};

static bool
fb_ready(void *ctx_, struct ofswitch *sw OVS_UNUSED, uint64_t dpid OVS_UNUSED)
{
    ((struct flowbench_ctx *) ctx_)->ready = true;
    return true;
}

static void
fb_disconnected(void *ctx_, struct ofswitch *sw OVS_UNUSED)
{
    struct flowbench_ctx *ctx = ctx_;

    if (!ctx->done) {
        ctx->done = true;
        ctx->error = ECONNRESET;
    }
}

static void
fb_port_status(void *ctx OVS_UNUSED, struct ofswitch *sw OVS_UNUSED,
               uint32_t port OVS_UNUSED, bool up OVS_UNUSED)
{
}

static void
fb_port_stats(void *ctx OVS_UNUSED, struct ofswitch *sw OVS_UNUSED,
              uint32_t port OVS_UNUSED, uint64_t a OVS_UNUSED,
              uint64_t b OVS_UNUSED, uint64_t c OVS_UNUSED,
              uint64_t d OVS_UNUSED, uint64_t e OVS_UNUSED,
              uint64_t f OVS_UNUSED, long long int t OVS_UNUSED)
{
}

static void
fb_batch_done(void *ctx_, struct ofswitch *sw OVS_UNUSED, int error)
{
    struct flowbench_ctx *ctx = ctx_;

    ctx->done = true;
    ctx->error = error;
}

static const struct ofswitch_callbacks fb_callbacks = {
    .ready = fb_ready,
    .disconnected = fb_disconnected,
    .port_status = fb_port_status,
    .port_stats = fb_port_stats,
    .batch_done = fb_batch_done,
};

char *
flowbench_bridge_target(const char *bridge)
{
    const char *rundir = getenv("OVS_RUNDIR");

    if (strchr(bridge, ':')) {
        return xstrdup(bridge);
    }
    return xasprintf("unix:%s/%s.mgmt", rundir ? rundir
                     : "/var/run/openvswitch", bridge);
}

/* The flows: sub-stream flows from 10.0.x.y:(1024+i) to 10.1.0.1:5001,
 * in_port 1 -> output 'out_port', all distinct. */
static void
fb_build(struct flows_set *set, size_t count, uint32_t out_port)
{
    struct flows_key key;

    flows_key_table_miss(&key);
    flows_set_put(set, &key, flows_cookie(FLOWS_TABLE_MISS, 0), FLOWS_DROP);
    for (size_t i = 0; i < count; i++) {
        uint32_t src = htonl(0x0a000000 | (uint32_t) (i + 1));
        flows_key_substream(&key, 1, IPPROTO_TCP, src, htonl(0x0a010001),
                            htons(1024 + i % 60000), htons(5001));
        flows_set_put(set, &key, flows_cookie(FLOWS_SUBSTREAM, i), out_port);
    }
}

/* Runs 'sw' until the batch in flight is done, the connection fails or
 * 'deadline' (time_msec()) passes. */
static int
fb_run(struct ofswitch *sw, struct flowbench_ctx *ctx, long long int deadline)
{
    while (!ctx->done && time_msec() < deadline) {
        ofswitch_run(sw);
        if (ctx->done) {
            break;
        }
        ofswitch_wait(sw);
        poll_timer_wait_until(deadline);
        poll_block();
    }
    return !ctx->done ? ETIMEDOUT : ctx->error;
}

int
flowbench_run(const char *target, size_t count, bool bundles, bool modify,
              int timeout_ms, struct flowbench_result *r)
{
    struct flowbench_ctx ctx = { .ready = false };
    struct flows_set set;
    long long int t0, t1, t2, t3, deadline;     /* t*: usec. */
    int error;

    memset(r, 0, sizeof *r);
    if (!getenv("EDGETRAIN_LOG") || strcmp(getenv("EDGETRAIN_LOG"), "debug")) {
        vlog_set_levels(NULL, VLF_ANY_DESTINATION, VLL_WARN);
    }

    t0 = time_usec();
    deadline = time_msec() + timeout_ms;
    flows_set_init(&set);
    struct ofswitch *sw = ofswitch_create_active(target, &fb_callbacks, &ctx);
    ofswitch_set_use_bundles(sw, bundles);

    /* Connect and handshake: 'ready' ends the wait like a batch would. */
    while (!ctx.ready && !ctx.done && time_msec() < deadline) {
        ofswitch_run(sw);
        if (!ctx.ready) {
            ofswitch_wait(sw);
            poll_timer_wait_until(deadline);
            poll_block();
        }
    }
    if (!ctx.ready) {
        error = ctx.done ? ctx.error : ETIMEDOUT;
        goto out;
    }

    t1 = time_usec();
    fb_build(&set, count, 2);
    t2 = time_usec();
    r->n_mods = ofswitch_sync(sw, &set, OFSWITCH_REPLACE);
    error = fb_run(sw, &ctx, deadline);
    t3 = time_usec();
    if (!error && flows_set_count(ofswitch_installed(sw)) != count + 1) {
        error = EPROTO;         /* Should not happen: a bug if it does. */
    }
    r->n_flows = count;
    r->connect_ms = (t1 - t0) / 1e3;
    r->build_ms = (t2 - t1) / 1e3;
    r->install_ms = (t3 - t2) / 1e3;
    r->total_ms = (t3 - t0) / 1e3;

    if (!error && modify) {
        /* Every flow to another port: the switch-over step of a re-route
         * of 'count' sub-streams. */
        fb_build(&set, count, 3);
        ctx.done = false;
        t1 = time_usec();
        size_t n = ofswitch_sync(sw, &set, OFSWITCH_MODIFY);
        error = fb_run(sw, &ctx, deadline);
        r->modify_ms = (time_usec() - t1) / 1e3;
        if (!error && n != count) {
            error = EPROTO;
        }
    }

out:
    ofswitch_destroy(sw);
    flows_set_destroy(&set);
    return error;
}
