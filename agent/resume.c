/* resume: checkpoints from the controller. See resume.h. */
#include "resume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt_id.h"
#include "model.h"
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
    uint32_t crc = mn_checkpoint_crc(buf, len);
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

void
agent_resume_local_path(char *buf, size_t size, const char *dir,
                        const char *agent, const char *id)
{
    snprintf(buf, size, "%s/%s-%s.ckpt", dir, agent, id);
}

int
agent_resume_save_local(const char *dir, const char *agent,
                        const Edgetrain__Assignment *a, uint32_t epoch,
                        const uint8_t *buf, size_t len)
{
    char id[ET_CKPT_ID_LEN], path[1024], tmp[1040];
    et_ckpt_id(id, sizeof id, a->run_id, a->first_block, a->last_block,
               epoch);
    agent_resume_local_path(path, sizeof path, dir, agent, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f)
        || rename(tmp, path)) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return e;
    }
    /* A resume may go back an epoch, so every older one is looked for. */
    for (uint32_t e = 1; e + ET_CKPT_KEEP <= epoch; e++) {
        et_ckpt_id(id, sizeof id, a->run_id, a->first_block, a->last_block,
                   e);
        agent_resume_local_path(path, sizeof path, dir, agent, id);
        unlink(path);
    }
    return 0;
}

/* Reads the agent's own copy of what 'want' names; 0 with a malloc'd
 * '*buf', or an errno with the reason in 'err'. */
static int
read_local(const struct agent *ag, const Edgetrain__Assignment *a,
           uint8_t **buf, size_t *len, char *err, size_t err_size)
{
    if (!ag->opt.state_dir) {
        snprintf(err, err_size, "no --state-dir");
        return ENOENT;
    }
    char path[1024];
    agent_resume_local_path(path, sizeof path, ag->opt.state_dir,
                            ag->opt.name, a->resume_from);
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) || sb.st_size > ET_WIRE_MAX_PAYLOAD) {
        int e = f ? EFBIG : errno;
        snprintf(err, err_size, "%.200s: %s", path, strerror(e));
        if (f) {
            fclose(f);
        }
        return e;
    }
    size_t n = (size_t) sb.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b || fread(b, 1, n, f) != n) {
        snprintf(err, err_size, "%.200s: short read", path);
        free(b);
        fclose(f);
        return EIO;
    }
    fclose(f);
    *buf = b;
    *len = n;
    return 0;
}

/* The Checkpoint message Assignment 'a' names (for the checks and the
 * request), as an unpacked message agent_resume_keep() can own. */
static Edgetrain__Checkpoint *
wanted(const struct agent *ag, const Edgetrain__Assignment *a)
{
    Edgetrain__Checkpoint c = EDGETRAIN__CHECKPOINT__INIT;
    c.name = (char *) ag->opt.name;
    c.run_id = a->run_id;
    c.first_block = a->first_block;
    c.last_block = a->last_block;
    c.epoch = a->start_epoch;
    c.crc32 = a->resume_crc32;
    uint8_t packed[256];
    size_t n = edgetrain__checkpoint__get_packed_size(&c);
    if (n > sizeof packed) {
        return NULL;
    }
    edgetrain__checkpoint__pack(&c, packed);
    return edgetrain__checkpoint__unpack(NULL, n, packed);
}

bool
agent_resume_prepare(struct agent *ag, Edgetrain__Assignment *a)
{
    if (!a->resume_local || !a->resume_from) {
        return true;            /* the payload came first, as before */
    }
    char err[300];
    if (!agent_resume_check(a, ag->resume_meta, ag->resume_buf,
                            ag->resume_len, err, sizeof err)) {
        ET_INFO("checkpoint %s: already held (the payload of an earlier "
                "resume), nothing sent", a->resume_from);
        return true;
    }
    Edgetrain__Checkpoint *want = wanted(ag, a);
    if (!want) {
        return true;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!read_local(ag, a, &buf, &len, err, sizeof err)
        && !agent_resume_check(a, want, buf, len, err, sizeof err)) {
        ET_INFO("checkpoint %s: this agent's own copy (%zu bytes), nothing "
                "sent", a->resume_from, len);
        agent_resume_keep(ag, want, buf, len);
        return true;
    }
    free(buf);
    if (!strcmp(ag->resume_asked, a->resume_from)) {
        edgetrain__checkpoint__free_unpacked(want, NULL);
        return true;            /* asked already: resume_attach reports */
    }
    ET_WARN("checkpoint %s: own copy unusable (%s); asking the controller "
            "for it", a->resume_from, err);
    snprintf(ag->resume_asked, sizeof ag->resume_asked, "%s",
             a->resume_from);
    agent_mgmt_send(ag, ET_MSG_CHECKPOINT_REQUEST, &want->base, NULL, 0);
    edgetrain__checkpoint__free_unpacked(want, NULL);
    agent_resume_drop_pending(ag);
    ag->resume_pending = a;
    return false;
}

void
agent_resume_drop_pending(struct agent *ag)
{
    if (ag->resume_pending) {
        protobuf_c_message_free_unpacked(&ag->resume_pending->base, NULL);
        ag->resume_pending = NULL;
    }
}
