/* Checks on an Assignment from the controller. See assign.h. */
#include "assign.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

void
agent_model_config(const Edgetrain__ModelConfig *mc, struct mn_config *c)
{
    mn_config_default(c);
    c->alpha = mc->alpha > 0 ? mc->alpha : 0.5f;
    c->input_size = mc->input_size ? (int) mc->input_size : 32;
    c->in_channels = mc->in_channels ? (int) mc->in_channels : 1;
    c->classes = mc->classes ? (int) mc->classes : 10;
    c->head_pool = mc->head_pool ? (int) mc->head_pool : 4;
    c->batch_capacity = mc->batch ? (int) mc->batch : 128;
    c->seed = mc->seed;
    /* A value beyond INT_MAX turns negative in the casts above;
     * mn_config_check() refuses it like any other out-of-range value. */
}

static int
refuse(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(char *err, size_t err_size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, err_size, fmt, args);
    va_end(args);
    return EINVAL;
}

/* "host:port" with a non-empty host that fits the agent's address buffer
 * and a port in 1..65535; the host is resolved when connecting. */
static bool
valid_host_port(const char *s)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || strlen(s) >= 128) {
        return false;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return colon[1] >= '0' && colon[1] <= '9' && !*end && port >= 1
           && port <= 65535;
}

static bool
valid_name(const char *s)
{
    return s && s[0] && strlen(s) <= AGENT_MAX_PEER_NAME;
}

int
agent_assignment_check(const Edgetrain__Assignment *a, uint64_t memory_limit,
                       char *err, size_t err_size)
{
    const Edgetrain__ModelConfig *mc = a->model;
    if (!mc) {
        return refuse(err, err_size, "assignment without a model");
    }
    if (a->first_block < 1 || a->last_block < a->first_block
        || a->last_block > MN_BLOCKS) {
        return refuse(err, err_size, "assignment: blocks %u-%u outside the "
                      "model's 1-%d", a->first_block, a->last_block,
                      MN_BLOCKS);
    }
    if (a->stage_index >= a->stage_count) {
        return refuse(err, err_size, "assignment: stage %u of %u",
                      a->stage_index, a->stage_count);
    }
    struct mn_config c;
    char why[200];
    agent_model_config(mc, &c);
    if (mn_config_check(&c, why, sizeof why)) {
        return refuse(err, err_size, "assignment: model config: %s", why);
    }
    if (mc->optimizer && mc->optimizer[0]
        && mn_optim_kind_from_string(mc->optimizer) < 0) {
        return refuse(err, err_size, "assignment: unknown optimizer '%.32s'",
                      mc->optimizer);
    }
    if (mc->schedule && mc->schedule[0]
        && mn_lr_kind_from_string(mc->schedule) < 0) {
        return refuse(err, err_size, "assignment: unknown schedule '%.32s'",
                      mc->schedule);
    }
    if (!(mc->lr >= 0 && mc->lr <= 100) || !(mc->weight_decay >= 0
                                             && mc->weight_decay <= 100)) {
        return refuse(err, err_size, "assignment: lr %g / weight decay %g "
                      "out of range [0, 100]", mc->lr, mc->weight_decay);
    }
    if (!a->token.len || a->token.len > AGENT_MAX_TOKEN) {
        return refuse(err, err_size, "assignment: token of %zu bytes (want "
                      "1-%d)", a->token.len, AGENT_MAX_TOKEN);
    }
    if (a->n_upstream > AGENT_MAX_UPSTREAMS
        || a->n_downstream > AGENT_MAX_DOWNSTREAMS) {
        return refuse(err, err_size, "assignment: %zu upstream / %zu "
                      "downstream peers (at most %d / %d)", a->n_upstream,
                      a->n_downstream, AGENT_MAX_UPSTREAMS,
                      AGENT_MAX_DOWNSTREAMS);
    }
    for (size_t i = 0; i < a->n_upstream; i++) {
        if (!valid_name(a->upstream[i]->name)) {
            return refuse(err, err_size, "assignment: upstream peer %zu has "
                          "no name or one over %d bytes", i,
                          AGENT_MAX_PEER_NAME);
        }
    }
    for (size_t i = 0; i < a->n_downstream; i++) {
        const Edgetrain__Peer *p = a->downstream[i];
        if (!valid_name(p->name)) {
            return refuse(err, err_size, "assignment: downstream peer %zu "
                          "has no name or one over %d bytes", i,
                          AGENT_MAX_PEER_NAME);
        }
        if (!valid_host_port(p->data_addr)) {
            return refuse(err, err_size, "assignment: downstream peer '%s': "
                          "bad data address '%.64s' (want host:port)",
                          p->name, p->data_addr ? p->data_addr : "");
        }
        if (p->n_substreams > AGENT_MAX_SUBSTREAMS) {
            return refuse(err, err_size, "assignment: downstream peer '%s': "
                          "%zu sub-streams (at most %d)", p->name,
                          p->n_substreams, AGENT_MAX_SUBSTREAMS);
        }
        for (size_t k = 0; k < p->n_substreams; k++) {
            const Edgetrain__SubStream *s = p->substreams[k];
            if (s->local_port > 65535 || s->remote_port > 65535) {
                return refuse(err, err_size, "assignment: sub-stream %u to "
                              "'%s': port %u/%u out of range", s->id,
                              p->name, s->local_port, s->remote_port);
            }
        }
    }
    /* The stage's memory plus its assembled input batch: refused here
     * rather than failing an allocation in the compute thread. */
    size_t bytes = mn_stage_bytes(&c, (int) a->first_block,
                                  (int) a->last_block);
    int h = 0, w = 0, ch = 0;
    mn_block_shape(&c, (int) a->first_block - 1, &h, &w, &ch);
    bytes += (size_t) c.batch_capacity * (size_t) h * (size_t) w
             * (size_t) ch * sizeof(float);
    if (memory_limit && bytes > memory_limit) {
        return refuse(err, err_size, "assignment: stage %u-%u needs %.1f MiB,"
                      " more than this device's %.1f MiB", a->first_block,
                      a->last_block, bytes / 1048576.0,
                      memory_limit / 1048576.0);
    }
    /* The compute thread receives the Assignment packed again. protobuf-c
     * keeps unknown fields and may write them back in a form its own
     * unpacker refuses (found by fuzz_assignment: an unknown field 0),
     * which would leave the compute thread without a stage while the I/O
     * thread runs the new streams. */
    size_t len = protobuf_c_message_get_packed_size(&a->base);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(&a->base, buf);
    Edgetrain__Assignment *copy = edgetrain__assignment__unpack(NULL, len,
                                                                buf);
    free(buf);
    if (!copy) {
        return refuse(err, err_size, "assignment: does not survive "
                      "re-encoding (malformed unknown fields)");
    }
    edgetrain__assignment__free_unpacked(copy, NULL);
    return 0;
}
