/* ctl_adopt: a restarted controller takes over the paths its predecessor
 * installed.
 *
 * When the agents of a running run come back after a controller restart
 * (Hello.current), ctl.c adopts the run (same id, token, placement).  Its
 * streams are routed afresh by plan_adopt(); but a load re-plan or a
 * link-down re-route before the restart may have moved sub-streams off
 * the paths a fresh routing gives, and deploying those would move them
 * back: the restart would change flows.  So the adoption reads what is
 * installed instead: each sub-stream's path is traced through the flows
 * the switches reported on reconnection (flowpaths.h), checked against
 * what the sending agent reported (ports, switches on the path), and
 * kept with the agent's weights.  The southbound then finds every flow in
 * place and the agents' Assignments change only the generation.  When the
 * installed state is incomplete or inconsistent (a switch missing, a flow
 * missing or pointing elsewhere, a link of a path down now, an agent's
 * report that disagrees), the fresh routing stays and the log says why.
 * ctl-private.h includes this; see docs/controller.md (run, item 7). */
#ifndef ET_CTL_ADOPT_H
#define ET_CTL_ADOPT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

struct ctl;
struct topology;
struct Edgetrain__Assignment;

/* Switches a reported path may cross (longer ones are not kept). */
#define CTL_ADOPT_MAX_HOPS 32

/* The downstream sub-streams an agent reported in Hello.current. */
struct ctl_adopt_report {
    bool valid;                 /* usable (one downstream peer, or none) */
    char peer[64];              /* downstream agent, "" for the last stage */
    size_t n_sub;
    struct {
        uint32_t id, local_port, remote_port;
        double weight;
        size_t n_hops;
        int hops[CTL_ADOPT_MAX_HOPS];  /* switch node ids (-1: unknown) */
    } sub[POLICY_MAX_PATHS];
};

/* How the last adoption routed its run (for /status). */
struct ctl_adopt_state {
    uint64_t run_id;            /* 0: no run adopted yet */
    bool kept;                  /* installed paths kept (else routed) */
    size_t substreams;          /* sub-streams kept */
    size_t moved;               /* ...of which a fresh routing would move */
    size_t extra_flows;         /* left-over sub-stream flows (removed) */
    char why[256];              /* why the installed paths were not kept */
};

/* Remembers in 'rep' the downstream sub-streams of 'cur' (an agent's
 * Hello.current; NULL: none). */
void ctl_adopt_note_hello(struct ctl_adopt_report *rep,
                          const struct topology *topo,
                          const struct Edgetrain__Assignment *cur);

/* Called right after plan_adopt() filled ctl->plan for the adopted run:
 * replaces its fresh routes with the installed paths and the agents'
 * weights if the installed state is complete and consistent.  Returns
 * true if it kept them; false if the fresh routes stay (logged with the
 * reason, unless there are no switches).  Records the outcome in
 * ctl->adopt. */
bool ctl_adopt_keep_installed(struct ctl *ctl);

#endif /* ET_CTL_ADOPT_H */
