/* resume: checkpoints from the controller. See resume.h. */
#include "resume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "agent.h"
#include "ckpt_id.h"
#include "log.h"
#include "wire.h"

int
agent_resume_check(const Edgetrain__Assignment *a,
                   const Edgetrain__Checkpoint *c, const uint8_t *buf,
                   size_t len, char *err, size_t err_size)
{
    char id[ET_CKPT_ID_LEN];
    if (!c) {
        snprintf(err, err_size, "no checkpoint received");
        return EINVAL;
    }
    et_ckpt_id(id, sizeof id, c->run_id, c->first_block, c->last_block,
               c->epoch);
    if (!a->resume_from || strcmp(id, a->resume_from)) {
        snprintf(err, err_size, "checkpoint received is %s, not %s", id,
                 a->resume_from ? a->resume_from : "(none)");
        return EINVAL;
    }
    if (c->run_id != a->run_id || c->first_block != a->first_block
        || c->last_block != a->last_block || c->epoch != a->start_epoch) {
        snprintf(err, err_size, "checkpoint %s is for run %016llx blocks "
                 "%u-%u after epoch %u; the assignment is run %016llx "
                 "blocks %u-%u from epoch %u", id,
                 (unsigned long long) c->run_id, c->first_block,
                 c->last_block, c->epoch, (unsigned long long) a->run_id,
                 a->first_block, a->last_block, a->start_epoch);
        return EINVAL;
    }
    uint32_t crc = (uint32_t) crc32(0, buf, (uInt) len);
    if (crc != c->crc32) {
        snprintf(err, err_size, "checkpoint %s corrupt: crc32 %08x, its "
                 "header says %08x", id, crc, c->crc32);
        return EINVAL;
    }
    return 0;
}

void
agent_resume_clear(struct agent *ag)
{
    if (ag->resume_meta) {
        edgetrain__checkpoint__free_unpacked(ag->resume_meta, NULL);
    }
    free(ag->resume_buf);
    ag->resume_meta = NULL;
    ag->resume_buf = NULL;
    ag->resume_len = 0;
}

void
agent_resume_keep(struct agent *ag, Edgetrain__Checkpoint *c, uint8_t *buf,
                  size_t len)
{
    agent_resume_clear(ag);
    ag->resume_meta = c;
    ag->resume_buf = buf;
    ag->resume_len = len;
    ET_INFO("checkpoint from the controller: blocks %u-%u after epoch %u "
            "(%zu bytes, made by %s)", c->first_block, c->last_block,
            c->epoch, len, c->name ? c->name : "?");
}

void
agent_resume_attach(struct agent *ag, const Edgetrain__Assignment *a,
                    struct et_qmsg *m)
{
    char err[300];
    if (agent_resume_check(a, ag->resume_meta, ag->resume_buf,
                           ag->resume_len, err, sizeof err)) {
        char msg[400];
        snprintf(msg, sizeof msg, "resume from %s refused: %s; the stage "
                 "starts fresh at epoch %u", a->resume_from, err,
                 a->start_epoch);
        ET_WARN("%s", msg);
        Edgetrain__Error e = EDGETRAIN__ERROR__INIT;
        e.code = EINVAL;
        e.message = msg;
        agent_mgmt_send(ag, ET_MSG_ERROR, &e.base, NULL, 0);
        return;
    }
    m->payload = ag->resume_buf;
    m->payload_len = ag->resume_len;
    ag->resume_buf = NULL;
    agent_resume_clear(ag);
}
