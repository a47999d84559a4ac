/* edgetrain-agent, compute thread: trains the assigned stage with the same
 * per-stage step as the single-node trainer (train/stage_runner.h).
 *
 * The source agent (stage 1, --data) reads batches through train/batch.h
 * exactly as `edgetrain train` does (same seed, order, augmentation),
 * trains its stage, and sends the detached output downstream split into
 * micro-batch chunks. Every other agent reassembles the chunks of a step
 * into the batch, trains on it, and sends its own output on. After the
 * training steps of an epoch comes the evaluation pass (chunks flagged
 * eval; the last one flagged end_of_epoch): every stage reports its own
 * head's test accuracy and saves a checkpoint.
 *
 * Talks to the I/O thread only through ag->to_compute and ag->to_io. */
#include "agent.h"
#include "assign.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "batch.h"
#include "dataset.h"
#include "log.h"
#include "model.h"
#include "resume.h"
#include "stage_runner.h"
#include "stream.h"
#include "threads.h"
#include "wire.h"

struct compute {
    struct agent *ag;
    Edgetrain__Assignment *a;   /* owned */
    struct mn_config cfg;
    struct stage_runner *runner;
    int out_h, out_w, out_c;
    bool source, sink;
    size_t micro;               /* images per output chunk */
    uint64_t steps_per_epoch;   /* schedule length: known to the source,
                                 * learnt from chunks downstream */
    bool schedule_set;

    /* Source data. */
    struct dataset *ds;
    struct batcher *train_b, *test_b;

    /* Step being assembled from chunks (non-source). */
    float *x;
    uint32_t *labels;
    size_t n;                   /* images so far */
    uint32_t got;               /* chunks so far */
    uint32_t want;              /* micro_count */
    uint32_t epoch;
    uint64_t step;
    bool eval, end_of_epoch;
    uint64_t chunks_in, chunk_errors;

    /* Reporting. */
    struct stage_stats test;
    uint32_t epochs_done;
    double t_report, t_compute, t_wait, t_last;
    size_t images_since;
    bool have_checkpoint;
    bool stop;
    uint32_t stage_gen;         /* ASSIGN messages handled (see queue.h) */
    /* This epoch's training steps: images, compute seconds, wall span. */
    size_t ep_images;
    double ep_compute, ep_t0, ep_t1, ep_data, ep_send;
    struct et_qmsg *pending;    /* control message seen mid-epoch */

    /* Position of the last step begun (epoch << 32 | step): a resumed
     * pipeline may still carry chunks of steps this stage has trained;
     * see chunk_wanted(). */
    bool have_key, resume_pending;
    uint64_t last_key, chunks_skipped;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Hands a frame for the controller (conn_id 0) or a connection to I/O. */
static void
send_frame(struct compute *cp, int type, const ProtobufCMessage *msg,
           uint8_t *payload, size_t len, uint64_t conn_id)
{
    struct et_qmsg *m = et_qmsg_new(ET_QMSG_FRAME);
    m->type = type;
    m->meta_len = protobuf_c_message_get_packed_size(msg);
    m->meta = malloc(m->meta_len + 1);
    protobuf_c_message_pack(msg, m->meta);
    m->payload = payload;       /* owned by the message now */
    m->payload_len = len;
    m->conn_id = conn_id;
    if (et_queue_push(&cp->ag->to_io, m, true)) {
        et_qmsg_free(m);
    }
}

static void
send_error(struct compute *cp, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
send_error(struct compute *cp, uint32_t code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ET_WARN("%s", msg);
    Edgetrain__Error e = EDGETRAIN__ERROR__INIT;
    e.code = code;
    e.message = msg;
    send_frame(cp, ET_MSG_ERROR, &e.base, NULL, 0, 0);
}

static void
send_metrics(struct compute *cp, bool eval_done, uint32_t epoch,
             uint64_t step)
{
    double now = now_s();
    Edgetrain__Metrics m = EDGETRAIN__METRICS__INIT;
    m.name = (char *) cp->ag->opt.name;
    m.run_id = cp->a->run_id;
    m.epoch = epoch;
    m.step = step;
    double dt = now - cp->t_report;
    m.images_per_s = dt > 0 ? cp->images_since / dt : 0;
    m.loss = stage_stats_loss(&cp->runner->train);
    if (eval_done) {
        m.test_top1 = stage_stats_top1(&cp->test);
        m.test_top3 = stage_stats_top3(&cp->test);
        m.eval_done = true;
    }
    m.compute_s = cp->t_compute;
    m.wait_s = cp->t_wait;
    struct et_qmsg *q = et_qmsg_new(ET_QMSG_METRICS);
    q->meta_len = protobuf_c_message_get_packed_size(&m.base);
    q->meta = malloc(q->meta_len + 1);
    protobuf_c_message_pack(&m.base, q->meta);
    if (et_queue_push(&cp->ag->to_io, q, true)) {
        et_qmsg_free(q);
    }
    cp->t_report = now;
    cp->images_since = 0;
    cp->t_compute = cp->t_wait = 0;
}

static void
compute_reset(struct compute *cp)
{
    stage_runner_destroy(cp->runner);
    batcher_destroy(cp->train_b);
    batcher_destroy(cp->test_b);
    dataset_destroy(cp->ds);
    free(cp->x);
    free(cp->labels);
    if (cp->a) {
        protobuf_c_message_free_unpacked(&cp->a->base, NULL);
    }
    struct agent *ag = cp->ag;
    struct et_qmsg *pending = cp->pending;
    uint32_t stage_gen = cp->stage_gen;
    memset(cp, 0, sizeof *cp);
    cp->ag = ag;
    cp->pending = pending;
    cp->stage_gen = stage_gen;
}

void
agent_parse_data_spec(const char *full, char *spec, size_t cap,
                struct dataset_options *o)
{
    snprintf(spec, cap, "%s", full);
    char *q = strchr(spec, '?');
    if (!q) {
        return;
    }
    *q++ = '\0';
    for (char *tok = strtok(q, "&"); tok; tok = strtok(NULL, "&")) {
        unsigned long long v;
        if (sscanf(tok, "train-limit=%llu", &v) == 1) {
            o->train_limit = v;
        } else if (sscanf(tok, "test-limit=%llu", &v) == 1) {
            o->test_limit = v;
        } else if (sscanf(tok, "per-class=%llu", &v) == 1) {
            o->per_class = v;
        } else {
            ET_WARN("data spec option '%s' unknown; ignored", tok);
        }
    }
}

/* Builds the stage, and for the source the dataset and batchers, as the
 * single-node trainer would for the same settings. */
static int
compute_setup(struct compute *cp, Edgetrain__Assignment *a)
{
    char err[256];
    const Edgetrain__ModelConfig *mc = a->model;
    cp->a = a;
    cp->source = a->first_block == 1;
    cp->sink = a->n_downstream == 0;

    agent_model_config(mc, &cp->cfg);
    cp->cfg.threads = cp->ag->opt.threads;
    if (mn_config_check(&cp->cfg, err, sizeof err)) {
        send_error(cp, EINVAL, "assignment: model config: %s", err);
        return EINVAL;
    }
    /* Optimiser and schedule: the trainer's defaults (docs/method.md)
     * with the controller's choices on top. */
    struct mn_optim optim;
    mn_optim_default(&optim);
    optim.kind = MN_ADAM;
    if (mc->optimizer && mc->optimizer[0]) {
        int k = mn_optim_kind_from_string(mc->optimizer);
        if (k < 0) {
            send_error(cp, EINVAL, "assignment: unknown optimizer '%s'",
                       mc->optimizer);
            return EINVAL;
        }
        optim.kind = (enum mn_optim_kind) k;
    }
    optim.weight_decay = mc->weight_decay;
    struct mn_lr_schedule sched = {
        .kind = MN_LR_ONECYCLE, .lr_max = 0.004f, .lr_min = 0,
        .pct_start = 0.25f, .div_factor = 25.0f, .final_div = 1e3f,
    };
    if (mc->schedule && mc->schedule[0]) {
        int k = mn_lr_kind_from_string(mc->schedule);
        if (k < 0) {
            send_error(cp, EINVAL, "assignment: unknown schedule '%s'",
                       mc->schedule);
            return EINVAL;
        }
        sched.kind = (enum mn_lr_kind) k;
    }
    if (mc->lr > 0) {
        sched.lr_max = mc->lr;
    }
    sched.total_steps = 1;      /* set once steps per epoch are known */
    if (stage_runner_create(&cp->runner, &cp->cfg, (int) a->first_block,
                            (int) a->last_block, &optim, &sched, err,
                            sizeof err)) {
        send_error(cp, EINVAL, "assignment: stage %u-%u: %s", a->first_block,
                   a->last_block, err);
        return EINVAL;
    }
    mn_stage_output_shape(cp->runner->stage, &cp->out_h, &cp->out_w,
                          &cp->out_c);
    size_t batch = (size_t) cp->cfg.batch_capacity;
    /* A chunk is a micro-batch, never the whole batch: the next stage's
     * transfer overlaps this one's and memory per chunk stays small. */
    cp->micro = mc->micro_batch ? mc->micro_batch : (batch + 3) / 4;
    if (batch > 1 && cp->micro > (batch + 1) / 2) {
        ET_WARN("micro-batch %zu of a %zu batch: using %zu", cp->micro,
                batch, (batch + 1) / 2);
        cp->micro = (batch + 1) / 2;
    }
    size_t per_image = (size_t) cp->out_h * cp->out_w * cp->out_c * 4;
    if (cp->micro * per_image > ET_WIRE_MAX_PAYLOAD) {
        cp->micro = ET_WIRE_MAX_PAYLOAD / per_image;
    }
    int ih, iw, ic;
    mn_stage_input_shape(cp->runner->stage, &ih, &iw, &ic);
    cp->x = malloc(batch * (size_t) ih * iw * ic * sizeof *cp->x);
    cp->labels = malloc(batch * sizeof *cp->labels);

    if (cp->source) {
        const char *spec = cp->ag->opt.data ? cp->ag->opt.data
                           : a->data_spec;
        if (!spec || !spec[0]) {
            send_error(cp, EINVAL, "assignment: stage 1 needs data, and "
                       "neither --data nor the assignment names any");
            return EINVAL;
        }
        struct dataset_options dopt;
        dataset_options_init(&dopt);
        char s[512];
        agent_parse_data_spec(spec, s, sizeof s, &dopt);
        char *derr = NULL;
        int e = dataset_open(s, &dopt, &cp->ds, &derr);
        if (!e && cp->ds->n_classes != (size_t) cp->cfg.classes) {
            send_error(cp, EINVAL, "data %s has %zu classes, the model %d",
                       s, cp->ds->n_classes, cp->cfg.classes);
            return EINVAL;
        }
        /* The trainer's batching (trainer.c): shuffled, drop_last,
         * shift 2 + flip for training; plain for test. */
        struct batch_options tbo = {
            .input = (uint32_t) cp->cfg.input_size, .batch = batch,
            .shuffle = true, .drop_last = true, .seed = mc->seed,
            .shift = 2, .flip = true};
        struct batch_options ebo = {.input = (uint32_t) cp->cfg.input_size,
                                    .batch = batch};
        if (e || (e = batcher_create(cp->ds, &cp->ds->train, &tbo,
                                     &cp->train_b, &derr))
            || (e = batcher_create(cp->ds, &cp->ds->test, &ebo, &cp->test_b,
                                   &derr))) {
            send_error(cp, (uint32_t) e, "data %s: %s", s,
                       derr ? derr : strerror(e));
            free(derr);
            return e;
        }
        cp->steps_per_epoch = batcher_n_batches(cp->train_b);
        if (mc->steps_per_epoch && mc->steps_per_epoch < cp->steps_per_epoch) {
            cp->steps_per_epoch = mc->steps_per_epoch;
        }
        if (!cp->steps_per_epoch) {
            send_error(cp, EINVAL, "data %s makes no batch of %zu", s, batch);
            return EINVAL;
        }
        ET_INFO("data %s: %zu train / %zu test images, %llu steps per "
                "epoch", s, cp->ds->train.n, cp->ds->test.n,
                (unsigned long long) cp->steps_per_epoch);
    }
    if (cp->steps_per_epoch) {
        cp->runner->schedule.total_steps = (long) cp->steps_per_epoch
                                           * (mc->epochs ? mc->epochs : 1);
        cp->schedule_set = true;
    }
    cp->t_report = cp->t_last = now_s();
    ET_INFO("model: alpha %g, input %d, channels %d, classes %d, head pool "
            "%d, batch %d, seed %llu, %s lr %g %s (%ld steps), weight decay "
            "%g", cp->cfg.alpha, cp->cfg.input_size, cp->cfg.in_channels,
            cp->cfg.classes, cp->cfg.head_pool, cp->cfg.batch_capacity,
            (unsigned long long) cp->cfg.seed, mc->optimizer, mc->lr,
            mc->schedule, cp->runner->schedule.total_steps,
            mc->weight_decay);
    ET_INFO("stage %u-%u ready: input (%d,%d,%d), output (%d,%d,%d), batch "
            "%zu, chunks of %zu images, %s", a->first_block, a->last_block,
            ih, iw, ic, cp->out_h, cp->out_w, cp->out_c, batch, cp->micro,
            cp->source ? "source" : cp->sink ? "last stage" : "relay");
    return 0;
}

/* Sends the stage's detached output downstream as micro-batch chunks. */
static void
send_output(struct compute *cp, const float *out, const uint32_t *labels,
            size_t n, bool eval, bool end_of_epoch)
{
    if (cp->sink) {
        return;
    }
    size_t per = (size_t) cp->out_h * cp->out_w * cp->out_c;
    uint32_t count = (uint32_t) ((n + cp->micro - 1) / cp->micro);
    for (uint32_t k = 0; k < count; k++) {
        size_t off = k * cp->micro;
        size_t nk = n - off < cp->micro ? n - off : cp->micro;
        struct et_chunk *c = et_chunk_new((uint32_t) nk, (uint32_t) cp->out_h,
                                          (uint32_t) cp->out_w,
                                          (uint32_t) cp->out_c);
        if (!c) {
            send_error(cp, ENOMEM, "no memory for an output chunk");
            return;
        }
        memcpy(c->data, out + off * per, nk * per * sizeof *out);
        memcpy(c->labels, labels + off, nk * sizeof *labels);
        c->epoch = cp->epoch;
        c->step = cp->step;
        c->micro = k;
        c->micro_count = count;
        c->eval = eval;
        c->end_of_epoch = end_of_epoch && k + 1 == count;
        c->steps_per_epoch = cp->steps_per_epoch;
        struct et_qmsg *m = et_qmsg_new(ET_QMSG_CHUNK);
        m->chunk = c;
        m->stage_gen = cp->stage_gen;
        double t = now_s();
        if (et_queue_push(&cp->ag->to_io, m, true)) {
            et_qmsg_free(m);        /* shutting down */
            return;
        }
        cp->t_wait += now_s() - t;
    }
}

static void
save_checkpoint(struct compute *cp, uint32_t epoch, bool boundary)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    /* With the optimiser state: a stage resumed from it (on this agent or
     * another) continues exactly where it stood. */
    if (mn_stage_save_buf(cp->runner->stage, true, &buf, &len)) {
        send_error(cp, EIO, "cannot serialise the stage checkpoint");
        return;
    }
    const Edgetrain__Assignment *a = cp->a;
    if (cp->ag->opt.state_dir) {
        char path[1024], tmp[1040];
        mkdir(cp->ag->opt.state_dir, 0777);
        snprintf(path, sizeof path, "%s/%s-stage%u-%u.ckpt",
                 cp->ag->opt.state_dir, cp->ag->opt.name, a->first_block,
                 a->last_block);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "wb");
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f)
            || rename(tmp, path)) {
            ET_WARN("cannot write checkpoint %s: %s", path, strerror(errno));
        } else {
            ET_INFO("checkpoint %s (epoch %u, %zu bytes)", path, epoch, len);
        }
        /* Its own copy of the boundary: a resume on this agent loads it
         * instead of the controller sending it back (resume.h). */
        int e = boundary ? agent_resume_save_local(cp->ag->opt.state_dir,
                                                   cp->ag->opt.name, a, epoch,
                                                   buf, len) : 0;
        if (e) {
            ET_WARN("cannot keep the checkpoint of epoch %u in %s: %s", epoch,
                    cp->ag->opt.state_dir, strerror(e));
        }
    }
    Edgetrain__Checkpoint c = EDGETRAIN__CHECKPOINT__INIT;
    c.name = (char *) cp->ag->opt.name;
    c.run_id = a->run_id;
    c.first_block = a->first_block;
    c.last_block = a->last_block;
    c.epoch = epoch;
    c.crc32 = mn_checkpoint_crc(buf, len);
    if (len <= ET_WIRE_MAX_PAYLOAD) {
        send_frame(cp, ET_MSG_CHECKPOINT, &c.base, buf, len, 0);
    } else {
        free(buf);
    }
    cp->have_checkpoint = true;
}

/* One step on the assembled batch in cp->x (or the source's batch). */
static int
run_step(struct compute *cp, const float *x, const uint32_t *labels,
         size_t n)
{
    char err[256];
    const float *out = NULL;
    double t = now_s();
    int e;
    if (!cp->eval) {
        struct mn_metrics m;
        e = stage_runner_train_step(cp->runner, x, labels, n, &out, &m, err,
                                    sizeof err);
        if (!e && !isfinite(m.loss)) {
            ET_WARN("loss is %f at epoch %u step %llu", m.loss, cp->epoch,
                    (unsigned long long) cp->step);
        }
    } else {
        e = stage_runner_eval_step(cp->runner, x, labels, n, &out, &cp->test,
                                   err, sizeof err);
    }
    double dt = now_s() - t;
    cp->t_compute += dt;
    if (!cp->eval && !e) {
        if (!cp->ep_images) {
            cp->ep_t0 = t;
        }
        cp->ep_images += n;
        cp->ep_compute += dt;
    }
    if (e) {
        send_error(cp, (uint32_t) e, "epoch %u step %llu: %s", cp->epoch,
                   (unsigned long long) cp->step, err);
        return e;
    }
    cp->images_since += n;
    double ts = now_s();
    send_output(cp, out, labels, n, cp->eval, cp->end_of_epoch);
    if (!cp->eval) {
        cp->ep_t1 = now_s();
        cp->ep_send += cp->ep_t1 - ts;
    }

    if (cp->end_of_epoch) {
        uint32_t done = cp->epoch + 1;
        ET_INFO("epoch %u: train loss %.4f top-1 %.4f; test top-1 %.4f "
                "top-3 %.4f (%zu images)", done,
                stage_stats_loss(&cp->runner->train),
                stage_stats_top1(&cp->runner->train),
                stage_stats_top1(&cp->test), stage_stats_top3(&cp->test),
                cp->test.n);
        double span = cp->ep_t1 - cp->ep_t0;
        ET_INFO("epoch %u training: %zu images in %.2f s = %.1f images/s; "
                "compute alone %.2f s = %.1f images/s; reading batches "
                "%.2f s, handing output on %.2f s", done, cp->ep_images,
                span, span > 0 ? cp->ep_images / span : 0, cp->ep_compute,
                cp->ep_compute > 0 ? cp->ep_images / cp->ep_compute : 0,
                cp->ep_data, cp->ep_send);
        cp->ep_images = 0;
        cp->ep_compute = cp->ep_data = cp->ep_send = 0;
        printf("epoch=%u test_top1=%.4f\n", done, stage_stats_top1(&cp->test));
        fflush(stdout);
        send_metrics(cp, true, done, cp->step);
        save_checkpoint(cp, done, true);
        cp->epochs_done = done;
        memset(&cp->test, 0, sizeof cp->test);
        memset(&cp->runner->train, 0, sizeof cp->runner->train);
    } else if (now_s() - cp->t_report >= 1.0) {
        send_metrics(cp, false, cp->epoch, cp->step);
    }
    return 0;
}

/* Answers an InferRequest with the stage's head (the cut model 1..K when
 * this agent holds stage 1). */
static void
serve_infer(struct compute *cp, struct et_qmsg *q)
{
    Edgetrain__InferRequest *r = edgetrain__infer_request__unpack(
        NULL, q->meta_len, q->meta);
    Edgetrain__Error e = EDGETRAIN__ERROR__INIT;
    char msg[256] = "";
    if (!r) {
        snprintf(msg, sizeof msg, "infer: bad request");
    } else if (!cp->runner || !cp->source) {
        snprintf(msg, sizeof msg, "infer: this agent holds %s; the cut "
                 "model is served by the agent of block 1",
                 cp->runner ? "a later stage" : "no stage yet");
    } else if (!cp->have_checkpoint) {
        snprintf(msg, sizeof msg, "infer: no checkpoint yet (first epoch "
                 "still training)");
    } else if (r->upto > 1) {
        snprintf(msg, sizeof msg, "infer: this agent holds stage 1 only, "
                 "not 1..%u", r->upto);
    } else if (r->n_shape != 4 || r->shape[1] != (uint32_t) cp->cfg.input_size
               || r->shape[2] != (uint32_t) cp->cfg.input_size
               || r->shape[3] != (uint32_t) cp->cfg.in_channels
               || r->shape[0] > (uint32_t) cp->cfg.batch_capacity) {
        snprintf(msg, sizeof msg, "infer: images must be (N<=%d,%d,%d,%d)",
                 cp->cfg.batch_capacity, cp->cfg.input_size,
                 cp->cfg.input_size, cp->cfg.in_channels);
    }
    if (msg[0]) {
        e.code = EINVAL;
        e.message = msg;
        send_frame(cp, ET_MSG_ERROR, &e.base, NULL, 0, q->conn_id);
        if (r) {
            edgetrain__infer_request__free_unpacked(r, NULL);
        }
        return;
    }
    double t0 = now_s();
    size_t n = r->shape[0];
    uint32_t top = r->top ? r->top : 3;
    size_t classes = (size_t) cp->cfg.classes;
    top = top > classes ? (uint32_t) classes : top;
    char err[256];
    const float *out;
    if (stage_runner_eval_step(cp->runner, (const float *) q->payload, NULL,
                               n, &out, NULL, err, sizeof err)) {
        e.code = EIO;
        e.message = err;
        send_frame(cp, ET_MSG_ERROR, &e.base, NULL, 0, q->conn_id);
        edgetrain__infer_request__free_unpacked(r, NULL);
        return;
    }
    const float *logits = mn_stage_logits(cp->runner->stage);
    uint32_t *cls = malloc(n * top * sizeof *cls);
    float *probs = malloc(n * top * sizeof *probs);
    for (size_t i = 0; i < n; i++) {
        const float *l = logits + i * classes;
        float mx = l[0], sum = 0;
        for (size_t j = 1; j < classes; j++) {
            mx = l[j] > mx ? l[j] : mx;
        }
        for (size_t j = 0; j < classes; j++) {
            sum += expf(l[j] - mx);
        }
        for (uint32_t t = 0; t < top; t++) {
            size_t best = 0;
            float bv = -INFINITY;
            for (size_t j = 0; j < classes; j++) {
                bool taken = false;
                for (uint32_t u = 0; u < t; u++) {
                    taken |= cls[i * top + u] == j;
                }
                if (!taken && l[j] > bv) {
                    bv = l[j];
                    best = j;
                }
            }
            cls[i * top + t] = (uint32_t) best;
            probs[i * top + t] = expf(bv - mx) / sum;
        }
    }
    Edgetrain__InferReply rep = EDGETRAIN__INFER_REPLY__INIT;
    rep.n_classes = n * top;
    rep.classes = cls;
    rep.n_probs = n * top;
    rep.probs = probs;
    rep.latency_ms = (now_s() - t0) * 1e3;
    send_frame(cp, ET_MSG_INFER_REPLY, &rep.base, NULL, 0, q->conn_id);
    free(cls);
    free(probs);
    edgetrain__infer_request__free_unpacked(r, NULL);
}

/* Handles a control message. Returns true if the current work must end
 * (stop or new assignment; the message is kept in cp->pending). */
static bool
control(struct compute *cp, struct et_qmsg *m)
{
    if (m->kind == ET_QMSG_INFER) {
        serve_infer(cp, m);
        et_qmsg_free(m);
        return false;
    }
    if (m->kind == ET_QMSG_STOP || m->kind == ET_QMSG_ASSIGN) {
        cp->pending = m;
        return true;
    }
    et_qmsg_free(m);
    return false;
}

/* The source: epochs of batches from the dataset. Returns when done, or
 * early on a stop or a new assignment. */
static void
run_source(struct compute *cp)
{
    const Edgetrain__ModelConfig *mc = cp->a->model;
    uint32_t epochs = mc->epochs ? mc->epochs : 1;
    size_t n_test = batcher_n_batches(cp->test_b);
    for (uint32_t ep = cp->a->start_epoch; ep < epochs; ep++) {
        batcher_set_epoch(cp->train_b, ep);
        memset(&cp->runner->train, 0, sizeof cp->runner->train);
        size_t total = cp->steps_per_epoch + n_test;
        for (size_t i = 0; i < total; i++) {
            struct et_qmsg *m;
            while ((m = et_queue_pop(&cp->ag->to_compute, false))) {
                if (control(cp, m)) {
                    return;
                }
            }
            bool eval = i >= cp->steps_per_epoch;
            size_t idx = eval ? i - cp->steps_per_epoch : i;
            double tf = now_s();
            size_t n = batcher_fill(eval ? cp->test_b : cp->train_b, idx,
                                    cp->x, cp->labels);
            if (!eval) {
                cp->ep_data += now_s() - tf;
            }
            if (!n) {
                continue;
            }
            cp->epoch = ep;
            cp->step = i;
            cp->eval = eval;
            cp->end_of_epoch = i + 1 == total;
            if (run_step(cp, cp->x, cp->labels, n)) {
                return;
            }
        }
    }
    ET_INFO("training done: %u epochs", epochs);
}

/* Loads the checkpoint an Assignment with resume_from came with (the
 * message's payload; none if the I/O thread refused it). A refused one
 * leaves the fresh stage, with a warning to the controller. */
static void
compute_resume(struct compute *cp, const uint8_t *buf, size_t len)
{
    const Edgetrain__Assignment *a = cp->a;
    if (!a->resume_from || !a->resume_from[0]) {
        return;
    }
    char err[256];
    if (!buf) {
        ET_WARN("resume from %s: no usable checkpoint; blocks %u-%u start "
                "fresh at epoch %u", a->resume_from, a->first_block,
                a->last_block, a->start_epoch);
    } else if (mn_stage_load_buf(cp->runner->stage, buf, len, err,
                                 sizeof err)) {
        send_error(cp, EINVAL, "resume from %s refused: %s; blocks %u-%u "
                   "start fresh at epoch %u", a->resume_from, err,
                   a->first_block, a->last_block, a->start_epoch);
    } else {
        cp->runner->step = mn_stage_optim_steps(cp->runner->stage);
        cp->epochs_done = a->start_epoch;
        cp->have_checkpoint = true;
        ET_INFO("resumed blocks %u-%u from checkpoint %s: epoch %u, "
                "optimiser step %ld", a->first_block, a->last_block,
                a->resume_from, a->start_epoch, cp->runner->step);
    }
    /* Downstream of a resume, the first step to train is the epoch's
     * first, whoever upstream still sends older chunks. */
    cp->resume_pending = true;
}

/* Whether chunk 'c' starts or continues a step this stage should train.
 * After a resume every stage goes back to the same epoch boundary, and
 * chunks of the old generation may still be in the stream: a step is
 * taken only if it comes after the last one begun (the first after a
 * resume must be step 0 of the start epoch). Since every stage is
 * deterministic given its checkpoint and the per-epoch data order, a
 * chunk of a given (epoch, step) holds the same values whichever
 * generation sent it, so skipping repeats loses nothing. */
static bool
chunk_wanted(struct compute *cp, const struct et_chunk *c)
{
    if (cp->got) {
        return true;            /* mid-step: feed_chunk checks it */
    }
    uint64_t key = (uint64_t) c->epoch << 32 | (uint32_t) c->step;
    bool want;
    if (cp->resume_pending) {
        want = c->epoch == cp->a->start_epoch && c->step == 0 && !c->eval
               && c->micro == 0;
        cp->resume_pending = !want;
    } else {
        want = !cp->have_key || key > cp->last_key;
    }
    if (!want) {
        cp->chunks_skipped++;
    }
    return want;
}

/* A downstream stage: one received chunk (in sequence order). */
static void
feed_chunk(struct compute *cp, struct et_chunk *c)
{
    cp->chunks_in++;
    if (!chunk_wanted(cp, c)) {
        return;
    }
    size_t per = et_chunk_elems(c) / c->shape[0];
    size_t batch = (size_t) cp->cfg.batch_capacity;
    int ih, iw, ic;
    mn_stage_input_shape(cp->runner->stage, &ih, &iw, &ic);
    if (c->shape[1] != (uint32_t) ih || c->shape[2] != (uint32_t) iw
        || c->shape[3] != (uint32_t) ic) {
        /* Accepted under an earlier assignment (a re-placement). */
        cp->chunk_errors++;
        send_error(cp, EPROTO, "chunk %llu of shape (%u,%u,%u) for a stage "
                   "taking (%d,%d,%d): dropped", (unsigned long long) c->seq,
                   c->shape[1], c->shape[2], c->shape[3], ih, iw, ic);
        return;
    }
    if (cp->got && (c->epoch != cp->epoch || c->step != cp->step
                    || c->eval != cp->eval || c->micro != cp->got
                    || c->micro_count != cp->want)) {
        cp->chunk_errors++;
        send_error(cp, EPROTO, "chunk (epoch %u step %llu micro %u/%u) "
                   "while step %llu had %u of %u chunks: the partial step "
                   "is dropped", c->epoch, (unsigned long long) c->step,
                   c->micro, c->micro_count, (unsigned long long) cp->step,
                   cp->got, cp->want);
        cp->got = 0;
        cp->n = 0;
    }
    if (!cp->got) {
        if (c->micro != 0) {
            cp->chunk_errors++;
            send_error(cp, EPROTO, "chunk (epoch %u step %llu) starts at "
                       "micro %u of %u: dropped", c->epoch,
                       (unsigned long long) c->step, c->micro,
                       c->micro_count);
            return;
        }
        cp->epoch = c->epoch;
        cp->step = c->step;
        cp->eval = c->eval;
        cp->want = c->micro_count;
        cp->have_key = true;
        cp->last_key = (uint64_t) c->epoch << 32 | (uint32_t) c->step;
        cp->end_of_epoch = false;
        cp->n = 0;
    }
    if (!cp->schedule_set && c->steps_per_epoch) {
        cp->steps_per_epoch = c->steps_per_epoch;
        const Edgetrain__ModelConfig *mc = cp->a->model;
        cp->runner->schedule.total_steps = (long) c->steps_per_epoch
                                           * (mc->epochs ? mc->epochs : 1);
        cp->schedule_set = true;
    }
    if (cp->n + c->shape[0] > batch) {
        cp->chunk_errors++;
        send_error(cp, EPROTO, "step %llu: chunks add up to more than the "
                   "batch of %zu", (unsigned long long) c->step, batch);
        cp->got = 0;
        return;
    }
    memcpy(cp->x + cp->n * per, c->data, et_chunk_elems(c) * sizeof *c->data);
    memcpy(cp->labels + cp->n, c->labels, c->shape[0] * sizeof *c->labels);
    cp->n += c->shape[0];
    cp->got++;
    cp->end_of_epoch |= c->end_of_epoch;
    if (cp->got == cp->want) {
        cp->got = 0;
        run_step(cp, cp->x, cp->labels, cp->n);
    }
}

void *
agent_compute_main(void *arg)
{
    struct agent *ag = arg;
    struct compute cp_, *cp = &cp_;
    memset(cp, 0, sizeof *cp);
    cp->ag = ag;
    train_threads_set(ag->opt.threads, 1);
    for (;;) {
        struct et_qmsg *m = cp->pending;
        cp->pending = NULL;
        if (!m) {
            double t = now_s();
            m = et_queue_pop(&ag->to_compute, true);
            cp->t_wait += now_s() - t;
        }
        if (!m || m->kind == ET_QMSG_STOP) {
            et_qmsg_free(m);
            break;
        }
        switch (m->kind) {
        case ET_QMSG_ASSIGN: {
            compute_reset(cp);
            cp->stage_gen++;
            Edgetrain__Assignment *a = edgetrain__assignment__unpack(
                NULL, m->meta_len, m->meta);
            if (!a) {
                send_error(cp, EINVAL, "assignment: does not unpack in the "
                           "compute thread");
            }
            if (!a || compute_setup(cp, a)) {
                if (!cp->a && a) {
                    edgetrain__assignment__free_unpacked(a, NULL);
                }
                compute_reset(cp);
                break;
            }
            compute_resume(cp, m->payload, m->payload_len);
            if (cp->source) {
                run_source(cp);
            }
            break;
        }
        case ET_QMSG_CHUNK:
            if (cp->runner && !cp->source) {
                feed_chunk(cp, m->chunk);
            }
            break;
        default:
            if (control(cp, m)) {
                continue;       /* handled at the top */
            }
            m = NULL;
            break;
        }
        et_qmsg_free(m);
    }
    if (cp->runner && cp->ag->opt.state_dir) {
        save_checkpoint(cp, cp->epochs_done, false);
    }
    if (cp->chunks_in || cp->chunk_errors) {
        ET_INFO("compute: %llu chunks trained on, %llu out of place, %llu "
                "skipped as already trained", (unsigned long long) cp->chunks_in,
                (unsigned long long) cp->chunk_errors,
                (unsigned long long) cp->chunks_skipped);
    }
    compute_reset(cp);
    et_qmsg_free(cp->pending);
    return NULL;
}

double
agent_self_benchmark(void)
{
    enum { N = 256, REPS = 4 };
    float *a = malloc(N * N * sizeof *a), *b = malloc(N * N * sizeof *b);
    float *c = calloc(N * N, sizeof *c);
    for (size_t i = 0; i < N * N; i++) {
        a[i] = (float) (i % 7) * 0.1f;
        b[i] = (float) (i % 5) * 0.2f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a,
                N, b, N, 0.0f, c, N);        /* warm-up */
    double t0 = now_s();
    for (int r = 0; r < REPS; r++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f,
                    a, N, b, N, 0.0f, c, N);
    }
    double dt = now_s() - t0;
    free(a), free(b), free(c);
    return dt > 0 ? 2.0 * N * N * N * REPS / dt / 1e9 : 0;
}
