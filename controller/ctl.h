/* ctl: the controller's core on the main (libevent) thread.
 *
 * Owns the topology, the link state, the policy registry, the agents'
 * registrations and the current run. Wires together:
 *   - mgmt (agents register, heartbeat, report metrics),
 *   - httpapi (GET /status, GET /metrics, POST /start),
 *   - the southbound (OpenFlow thread; routes in, events out through its
 *     event fd, the one queue between the two threads),
 *   - plan (placement + routing).
 *
 * A run starts when --expect-agents agents are registered, or on POST
 * /start (`edgetrain start`). The controller then plans, hands the routes
 * to the southbound and sends every stage agent its Assignment. Paths are
 * re-planned when the link state changes by more than a threshold (or a
 * link on a path goes down); placement is reconsidered only at epoch
 * boundaries (every stage reported a later epoch). Each change bumps the
 * run's generation and re-sends the Assignments. */
#ifndef ET_CTL_H
#define ET_CTL_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

struct event_base;
struct evbuffer;

struct ctl_config {
    const char *topology_path;
    const char *listen;          /* management; NULL: topology's or
                                  * 127.0.0.1:7000 */
    const char *openflow;        /* "ptcp:6653", or NULL: no OpenFlow */
    const char *http;            /* NULL: 127.0.0.1:7080; "off": none */
    const char *placement;       /* policy names */
    const char *routing;
    const char *const *plugins;
    size_t n_plugins;
    size_t expect_agents;        /* 0: start only on POST /start */
    uint32_t heartbeat_ms;
    uint32_t timeout_periods;
    const char *key_file;        /* cluster key for HMAC, or NULL */
    const char *source;          /* name of the source agent, or NULL */
    struct plan_options plan;    /* model costs, stages, k, disjoint... */
    /* Model settings sent in Assignment.model beyond plan.model. */
    uint32_t epochs;
    uint32_t micro_batch;
    uint64_t seed;
    const char *optimizer;
    float lr;
    float weight_decay;
    const char *schedule;
    uint64_t steps_per_epoch;
    const char *data_spec;       /* for the source stage */
    int encoding;                /* EDGETRAIN__DTYPE__* on every link */
    uint16_t port_base;          /* first sub-stream source port */
    double replan_threshold;     /* residual change, fraction of capacity */
    double replace_gain;         /* re-place at an epoch boundary if the
                                  * bottleneck improves by this fraction */
    const char *checkpoint_dir;  /* store agents' checkpoints, or NULL */
    double failover_s;           /* re-place without a dead stage agent
                                  * after this long (0: never) */
    bool exit_when_done;         /* leave the event loop when the run is
                                  * done (emulator, demo, experiments) */
};

/* Fills 'cfg' with the defaults (paper's model, bottleneck-dp,
 * ksp-waterfill, k 3, heartbeat 1000 ms x 3, ports from 41000). */
void ctl_config_default(struct ctl_config *cfg);

struct ctl;

/* Loads the topology, plugins and policies, starts listening (management,
 * HTTP, OpenFlow). Returns 0 or a positive errno with a message in 'err'. */
int ctl_create(struct event_base *base, const struct ctl_config *cfg,
               struct ctl **ctlp, char *err, size_t err_size);
void ctl_destroy(struct ctl *ctl);   /* accepts NULL */

/* Starts a run now with the agents registered so far. Returns 0, EALREADY
 * if one is running, or the planner's error (message in 'err'). */
int ctl_start_run(struct ctl *ctl, char *err, size_t err_size);

/* The /status document (JSON, malloc'd) and /metrics text. */
char *ctl_status_json(const struct ctl *ctl);
void ctl_metrics_text(const struct ctl *ctl, struct evbuffer *out);

/* Bound ports (for tests that listen on port 0). */
uint16_t ctl_mgmt_port(const struct ctl *ctl);
uint16_t ctl_http_port(const struct ctl *ctl);

#endif /* ET_CTL_H */
