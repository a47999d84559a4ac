/* Placeholder southbound for builds without the OpenFlow module: the
 * controller then only serves topologies without switches (loopback).
 * DELETE THIS FILE when the OpenFlow implementation of southbound.h is
 * merged (duplicate symbols at link time are the reminder). */
#include "southbound.h"

#include <errno.h>

#include "log.h"

int
southbound_start(const struct sb_config *cfg, struct southbound **sbp)
{
    ET_ERROR("openflow: this build has no OpenFlow module; cannot listen on %s",
             cfg->listen ? cfg->listen : "(none)");
    *sbp = NULL;
    return EOPNOTSUPP;
}

int
southbound_set_desired_flows(struct southbound *sb, struct sb_flow_set *set)
{
    sb_flow_set_destroy(set);
    return sb ? 0 : EOPNOTSUPP;
}

void
southbound_stop(struct southbound *sb)
{
    (void) sb;
}
