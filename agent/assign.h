/* Checks on an Assignment from the controller, before the agent acts on
 * it. Pure functions (no sockets, no threads): the I/O thread refuses a bad
 * Assignment with them, the compute thread builds its model configuration
 * with the same defaults, and tests/fuzz/fuzz_assignment.c fuzzes them
 * together with the management read path. */
#ifndef ET_AGENT_ASSIGN_H
#define ET_AGENT_ASSIGN_H 1

#include <stddef.h>
#include <stdint.h>

#include "edgetrain.pb-c.h"

struct mn_config;

/* Bounds of what one Assignment may ask of an agent. */
#define AGENT_MAX_UPSTREAMS 8       /* receiver's accepted peers */
#define AGENT_MAX_DOWNSTREAMS 1     /* the agent sends to one peer */
#define AGENT_MAX_SUBSTREAMS 16     /* per downstream peer */
#define AGENT_MAX_PEER_NAME 63      /* struct agent's tx_peer[64] */
#define AGENT_MAX_TOKEN 64          /* bytes */

/* Fills 'c' from the Assignment's model settings, zero fields taking the
 * agent's defaults (alpha 0.5, input 32, 1 channel, 10 classes, head pool
 * 4, batch 128). 'c' is not checked: see agent_assignment_check(). */
void agent_model_config(const Edgetrain__ModelConfig *, struct mn_config *c);

/* Checks everything the agent relies on before acting on 'a': a model
 * whose configuration mn_config_check() accepts, known optimizer and
 * schedule names, a block range within the model, at most
 * AGENT_MAX_UPSTREAMS / AGENT_MAX_DOWNSTREAMS named peers (downstream peers
 * with a numeric host:port and at most AGENT_MAX_SUBSTREAMS sub-streams),
 * a token, and a stage that fits in 'memory_limit' bytes (0: no limit).
 * Returns 0, or EINVAL with what and where in 'err'. */
int agent_assignment_check(const Edgetrain__Assignment *a,
                           uint64_t memory_limit, char *err, size_t err_size);

#endif /* ET_AGENT_ASSIGN_H */
