/* ctl-private: the controller core's state, shared by ctl.c (behaviour),
 * ctl_resume.c, ctl_merge.c and ctl_split.c (failover and resume) and
 * ctl_status.c
 * (the /status and /metrics documents). Nothing else includes it but the
 * unit tests of those parts. */
#ifndef ET_CTL_PRIVATE_H
#define ET_CTL_PRIVATE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckptdir.h"
#include "ctl.h"
#include "ctl_adopt.h"
#include "edgetrain.pb-c.h"
#include "plan.h"
#include "sbtopo.h"

struct ckpt_entry;
struct ckptstore;
struct event;
struct httpapi;
struct linkstate;
struct mgmt;
struct mgmt_conn;
struct policy_registry;
struct southbound;
struct topology;

/* Compute figure assumed for an agent that reports none. */
#define DEFAULT_GFLOPS 10.0

enum run_state {
    RUN_WAITING,       /* for agents (or POST /start) */
    RUN_RUNNING,
    RUN_DEGRADED,      /* an agent of the run is gone */
    RUN_DONE,          /* every stage evaluated its last epoch */
};

/* Sub-stream counters kept per agent from its Metrics. */
#define CTL_MAX_SUBSTREAMS 16

extern const char *const ctl_run_state_names[];

/* What the controller knows of one topology agent. */
struct ctl_agent {
    bool registered;            /* sent a Hello at some point */
    bool alive;                 /* connected, heartbeats on time */
    struct mgmt_conn *conn;     /* NULL unless alive */
    char data_addr[128];        /* effective: Hello's, else topology's */
    uint16_t data_port;
    double gflops;
    double memory_bytes;
    uint32_t cores;
    char software[64];
    double registered_at;
    uint32_t registrations;
    /* Latest Metrics. */
    bool have_metrics;
    uint32_t epoch;
    uint64_t step;
    double images_per_s, loss, test_top1, test_top3;
    uint32_t recv_queue, send_queue;
    double compute_s, wait_s;
    uint64_t chunks_received, chunks_duplicate, chunks_gap;
    bool have_eval;             /* reported a test accuracy */
    uint32_t eval_epoch;        /* Metrics.epoch of that report */
    size_t n_substreams;
    struct {
        char peer[64];
        uint32_t id;
        uint64_t bytes, chunks;
    } substreams[CTL_MAX_SUBSTREAMS];
    char last_error[160];
    uint32_t checkpoints;
    bool resume_local;          /* Hello.resume_local: keeps its own */
    bool resend;                /* re-registered during a run */
    /* What it reported running in Hello.current (controller restart). */
    struct {
        bool valid;
        uint64_t run_id;
        uint32_t generation, stage, count, first, last, last_epoch;
        uint8_t token[16];
    } current;
    struct ctl_adopt_report reported;  /* ...its sub-streams (ctl_adopt.c) */
};

struct ctl {
    struct event_base *base;
    struct ctl_config cfg;
    char *listen, *http_addr;          /* owned copies */
    struct topology *topo;
    struct linkstate *ls;
    struct policy_registry *reg;
    const struct policy_placement *placement;
    const struct policy_routing *routing;
    struct ctl_agent *agents;          /* topo->n_agents */
    struct mgmt *mgmt;
    struct httpapi *http;
    struct southbound *sb;
    struct event *sb_event;            /* southbound event fd */
    struct event *check;               /* deferred start/resend checks */
    struct event *tick;                /* 1 s: re-plan on link change */
    struct sbtopo sbt;                 /* topology in southbound terms */
    bool *switch_up;
    double started_at;
    bool switch_wait_logged;           /* a run waits for switches */

    /* The run. */
    enum run_state state;
    struct plan plan;
    bool have_plan;
    uint64_t run_id;
    uint8_t token[16];
    uint32_t generation;
    uint32_t start_epoch;
    uint32_t boundary_epoch;           /* last epoch boundary seen */
    uint64_t routes_generation;        /* southbound's */
    uint64_t synced_generation;
    bool assignments_pending;          /* waiting for FLOWS_SYNCED */
    bool redeploy;                     /* an agent's data address changed */
    double degraded_since;             /* plan_now() when it became so */
    struct event *install_wait;        /* ...at most INSTALL_WAIT_MS */
    char last_plan_error[256];
    struct ctl_adopt_state adopt;      /* last adoption (ctl_adopt.c) */
    uint64_t path_replans, placement_replans, assignments_sent;
    uint64_t sb_events;

    /* Resuming from replicated checkpoints (ctl_resume.c). */
    struct ckptstore *ckpts;           /* agents' checkpoints, in memory */
    bool resume_wait;                  /* a new placement waits for them */
    uint32_t resume_target;            /* boundary it wants to resume at */
    double resume_deadline;            /* ...or an older one after this */
    uint32_t resume_epoch;             /* 0: this generation starts fresh */
    uint32_t resume_generation;        /* generation resume_epoch is for */
    uint64_t resumes, ckpts_sent;
    struct {                           /* placement before a failover */
        bool valid;
        size_t n;
        size_t agents[BLOCKCOST_BLOCKS];
        uint32_t ranges[BLOCKCOST_BLOCKS][2];
    } home;

    /* A failover with no spare merged a dead stage into its neighbour
     * (ctl_merge.c): blocks first..last from first..split and
     * split+1..last. */
    struct {
        bool valid;
        uint32_t first, split, last;
        uint64_t assembled;            /* checkpoints assembled */
        uint32_t failed_epoch;         /* assembly failed (logged once) */
        /* Split back when the dead agent returns (ctl_split.c). */
        struct ckpt_entry *head;       /* first..split's checkpoint the
                                        * merged stage resumed from (its
                                        * head, dropped at the merge), a
                                        * copy; NULL: none */
        uint32_t split_wait;           /* boundary whose merged checkpoint
                                        * the home placement waits for */
        uint32_t split_epoch;          /* boundary split at; 0: not yet */
        uint32_t split_refused_epoch;  /* refused there (logged once) */
        uint32_t split_head_epoch;     /* epoch of the earlier part's
                                        * head; 0: freshly initialised */
    } merge;
    /* Checkpoint copies on disk and agents' own copies (ctl_resume.c). */
    struct ckptdir_index ckdir;        /* --checkpoint-dir scanned at start */
    uint64_t ckpts_reloaded;           /* loaded from it into ckpts */
    uint64_t ckpts_local;              /* resumes from the agent's own copy */
    uint64_t ckpt_bytes_sent, ckpt_bytes_local;
};

/* Agents alive now. */
size_t ctl_n_alive(const struct ctl *ctl);

/* Sub-stream source ports: unique per sending stage and sub-stream, so
 * agents sharing a host (loopback) never collide. */
uint32_t ctl_substream_port(const struct ctl *ctl, size_t stage, size_t k);

/* ---- ctl_resume.c: see there for the design. ---------------------------- */

/* Epochs of checkpoints kept per block range. */
#define CTL_RESUME_KEEP 2


void ctl_resume_init(struct ctl *);
void ctl_resume_destroy(struct ctl *);

/* Keeps a copy of an agent's Checkpoint (checked; a bad one is logged and
 * dropped). */
void ctl_resume_keep(struct ctl *, const char *name,
                     const Edgetrain__Checkpoint *, const uint8_t *payload,
                     size_t len);

/* The current plan is new and should resume at boundary 'epoch'. Returns
 * true if its Assignments may go out now; false while it waits for the
 * checkpoints of that boundary (ctl_resume_poll() says when). Sets
 * ctl->start_epoch to the boundary it resumes from. */
bool ctl_resume_begin(struct ctl *, uint32_t epoch);
bool ctl_resume_poll(struct ctl *);

/* For stage 's' of a resuming generation: sends its checkpoint on 'conn'
 * and returns the id for Assignment.resume_from (in 'id'), else "". */
const char *ctl_resume_attach(struct ctl *, size_t s, struct mgmt_conn *conn,
                              char *id, size_t size);

/* Writes an agent's checkpoint into --checkpoint-dir (if given), pruning
 * that range's files older than the epochs kept. */
void ctl_resume_save(struct ctl *, const char *name,
                     const Edgetrain__Checkpoint *, const uint8_t *payload,
                     size_t len);

/* After adopting a run from the agents (controller restart): loads that
 * run's checkpoints found in --checkpoint-dir at start into the store. */
void ctl_resume_reload(struct ctl *);

/* For stage 's' of a resuming generation on agent 'agent': if that agent
 * made the checkpoint in its current registration and keeps its own
 * copies (Hello.resume_local), fills a->resume_from (in 'id'),
 * resume_local and resume_crc32 without sending the payload, and returns
 * true. Otherwise false: ctl_resume_attach() sends it. */
bool ctl_resume_attach_local(struct ctl *, size_t s, size_t agent,
                             Edgetrain__Assignment *a, char *id, size_t size);

/* A checkpoint-request from agent 'agent' (it lacks its own copy): sends
 * the payload of the checkpoint it names, or an Error saying why not. */
void ctl_resume_request(struct ctl *, size_t agent, struct mgmt_conn *conn,
                        const Edgetrain__Checkpoint *req);

/* Failover keeping every stage's blocks: dead agents' stages go to the
 * fastest spare alive agents. Returns 0 (plan in 'np'), or ENOENT if no
 * spare is left, or the planner's error. */
int ctl_resume_failover_plan(struct ctl *, struct plan *np);

/* Remembers the current placement as "home" (before a failover). */
void ctl_resume_home_save(struct ctl *);

/* If a home placement is remembered and all its agents are alive again,
 * fills 'np' with it and returns true. */
bool ctl_resume_home_plan(struct ctl *, struct plan *np);

/* ---- ctl_merge.c: failover with no spare agent. ------------------------- */

/* Exactly one stage's agent dead and no spare: fills 'np' with the dead
 * stage's blocks merged into the adjacent stage that gives the lower
 * bottleneck (other stages unchanged) and remembers the merge. Returns 0,
 * ENOENT (not one dead stage), ENOSPC (fits no neighbour's memory; logged)
 * or the planner's error. */
int ctl_merge_failover_plan(struct ctl *, struct plan *np);

/* Whether the current plan runs a merged stage (ctl->merge). */
bool ctl_merge_active(const struct ctl *);

/* Assembles the merged stage's checkpoints of the latest boundaries from
 * its parts' copies, where both are in (call after a checkpoint arrives
 * and before a new placement looks for its checkpoints). */
void ctl_merge_assemble(struct ctl *);

/* ---- ctl_split.c: the merged stage split back. -------------------------- */

/* At epoch boundary 'epoch', in place of ctl_resume_home_plan(): without
 * a merged stage the same. With one, if every agent of the placement
 * before the failover is alive again and its ranges are the current ones
 * with the merged stage split into its parts, the merged stage's
 * checkpoint of 'epoch' is split into the parts' (kept in the store) and
 * 'np' filled with the home placement (true); if that checkpoint is not
 * in yet, ctl_split_ready() does it when it comes. A refused split is
 * logged and the merged placement stays (false). */
bool ctl_split_home_plan(struct ctl *, uint32_t epoch, struct plan *np);

/* After a checkpoint arrived: if the home placement waits for the merged
 * checkpoint of the boundary and it is in now, splits it and fills 'np'
 * (true), to be taken from that boundary. */
bool ctl_split_ready(struct ctl *, struct plan *np);

/* A generation resumed from boundary 'epoch': if it runs the merged stage
 * from a checkpoint assembled of its parts, keeps a copy of the earlier
 * part's checkpoint of that boundary (its head, for a split back). */
void ctl_split_keep_head(struct ctl *, uint32_t epoch);

/* Forgets the split-back state of a merge (a new merge, destroy). */
void ctl_split_clear(struct ctl *);

#endif /* ET_CTL_PRIVATE_H */
