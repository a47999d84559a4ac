/* The single-process trainer.  See trainer.h. */
#define _GNU_SOURCE 1
#include "trainer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "threads.h"

void
trainer_options_default(struct trainer_options *o)
{
    memset(o, 0, sizeof *o);
    dataset_options_init(&o->data);
    o->data_spec = "fashion-mnist";
    o->out_dir = "runs/fashion";
    o->mode = TRAINER_BLOCKWISE;
    snprintf(o->stages, sizeof o->stages, "1,2-3,4-5,6-11,12-13");
    o->input = 32;
    o->alpha = 0.5f;
    o->head_pool = 4;
    o->batch = 128;
    o->epochs = 15;
    o->seed = 1;
    o->threads = 0;
    o->blas_threads = 1;
    mn_optim_default(&o->optim);
    o->optim.kind = MN_ADAM;
    o->schedule.kind = MN_LR_ONECYCLE;
    o->schedule.lr_max = 0.004f;
    o->schedule.lr_min = 0;
    o->schedule.pct_start = 0.25f;
    o->schedule.div_factor = 25.0f;
    o->schedule.final_div = 1e3f;
    o->aug_shift = 2;
    o->aug_flip = true;
    o->progress = -1;
    o->plot = true;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
trainer_evaluate(struct stage_runner **runners, size_t k, struct batcher *b,
                 struct stage_stats *stats, char *err, size_t errlen)
{
    const struct mn_config *c = mn_stage_config(runners[0]->stage);
    size_t batch = (size_t) c->batch_capacity;
    size_t per = (size_t) c->input_size * c->input_size * c->in_channels;
    float *x = malloc(batch * per * sizeof *x);
    uint32_t *labels = malloc(batch * sizeof *labels);
    int error = 0;
    if (!x || !labels) {
        snprintf(err, errlen, "out of memory");
        error = ENOMEM;
    }
    for (size_t i = 0; !error && i < batcher_n_batches(b); i++) {
        size_t n = batcher_fill(b, i, x, labels);
        const float *in = x;
        for (size_t s = 0; !error && s < k; s++) {
            error = stage_runner_eval_step(runners[s], in, labels, n, &in,
                                           &stats[s], err, errlen);
        }
    }
    free(x);
    free(labels);
    return error;
}

/* --- run.json -------------------------------------------------------------*/

static const char *
mode_name(enum trainer_mode m)
{
    return m == TRAINER_E2E ? "e2e" : m == TRAINER_BOTH ? "both" : "blockwise";
}

static int
write_run_json(const struct trainer_options *o, const struct dataset *ds,
               int (*ranges)[2], size_t n_stages, char *err, size_t errlen)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", o->data_spec);
    cJSON_AddStringToObject(j, "dataset", ds->name);
    cJSON_AddStringToObject(j, "mode", mode_name(o->mode));
    cJSON_AddStringToObject(j, "stages", o->stages);
    cJSON *sa = cJSON_AddArrayToObject(j, "stage_ranges");
    for (size_t i = 0; i < n_stages; i++) {
        cJSON_AddItemToArray(sa, cJSON_CreateIntArray(ranges[i], 2));
    }
    cJSON_AddNumberToObject(j, "input", o->input);
    cJSON_AddNumberToObject(j, "alpha", o->alpha);
    cJSON_AddNumberToObject(j, "head_pool", o->head_pool);
    cJSON_AddNumberToObject(j, "batch", (double) o->batch);
    cJSON_AddNumberToObject(j, "epochs", o->epochs);
    cJSON_AddNumberToObject(j, "seed", (double) o->seed);
    cJSON_AddNumberToObject(j, "mean", ds->mean);
    cJSON_AddNumberToObject(j, "std", ds->std);
    cJSON_AddNumberToObject(j, "classes", (double) ds->n_classes);
    cJSON_AddItemToObject(j, "class_names",
                          cJSON_CreateStringArray((const char *const *)
                                                  ds->class_names,
                                                  (int) ds->n_classes));
    /* What selects the images, so eval and infer see the same test split
     * (QuickDraw's depends on per_class and test_fraction). */
    cJSON_AddNumberToObject(j, "per_class", (double) o->data.per_class);
    cJSON_AddNumberToObject(j, "test_fraction", o->data.test_fraction);
    cJSON_AddNumberToObject(j, "test_limit", (double) o->data.test_limit);
    cJSON_AddNumberToObject(j, "format", o->data.format);
    cJSON_AddNumberToObject(j, "render_size", o->data.render_size);
    cJSON_AddNumberToObject(j, "line_width", o->data.line_width);
    cJSON_AddNumberToObject(j, "train_images", (double) ds->train.n);
    cJSON_AddNumberToObject(j, "test_images", (double) ds->test.n);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char path[1024];
    snprintf(path, sizeof path, "%s/run.json", o->out_dir);
    FILE *f = fopen(path, "w");
    int error = 0;
    if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0) {
        error = errno ? errno : EIO;
        snprintf(err, errlen, "%s: %s", path, strerror(error));
    }
    if (f && fclose(f) && !error) {
        error = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(error));
    }
    free(text);
    return error;
}

/* --- progress -------------------------------------------------------------*/

static void
progress_show(bool tty, int epoch, int epochs, size_t step, size_t steps,
              double elapsed, size_t images, double loss)
{
    double rate = elapsed > 0 ? images / elapsed : 0;
    double eta = step ? elapsed * (steps - step) / step : 0;
    if (tty) {
        char bar[31];
        size_t fill = steps ? step * 30 / steps : 0;
        for (size_t i = 0; i < 30; i++) {
            bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
        }
        bar[30] = '\0';
        printf("\repoch %d/%d [%s] %zu/%zu %6.0f img/s loss %.4f ETA "
               "%d:%02d ", epoch, epochs, bar, step, steps, rate, loss,
               (int) eta / 60, (int) eta % 60);
        fflush(stdout);
    } else {
        printf("epoch %d/%d step %zu/%zu %.0f img/s loss %.4f eta %.0fs\n",
               epoch, epochs, step, steps, rate, loss, eta);
        fflush(stdout);
    }
}

/* --- plot -----------------------------------------------------------------*/

/* Column layout of the inline data: epoch, then one column per series. */
static void
write_plot(const struct trainer_options *o, int (*ranges)[2], size_t n_heads,
           bool e2e, const double *acc, int epochs)
{
    size_t cols = n_heads + (e2e ? 1 : 0);
    char gp[1024], png[1024];
    snprintf(gp, sizeof gp, "%s/accuracy.gp", o->out_dir);
    snprintf(png, sizeof png, "%s/accuracy.png", o->out_dir);
    FILE *f = fopen(gp, "w");
    if (!f) {
        fprintf(stderr, "edgetrain: %s: %s\n", gp, strerror(errno));
        return;
    }
    fprintf(f, "set terminal png size 900,600\nset output '%s'\n"
            "set title 'Test accuracy per head (%s, input %u, alpha %g)'\n"
            "set xlabel 'epoch'\nset ylabel 'test top-1 accuracy'\n"
            "set key bottom right\nset grid\nset xtics 1\nset yrange [*:1]\n", png, o->data_spec, o->input,
            o->alpha);
    fprintf(f, "$data << EOD\n");
    for (int e = 0; e < epochs; e++) {
        fprintf(f, "%d", e + 1);
        for (size_t c = 0; c < cols; c++) {
            fprintf(f, " %.4f", acc[e * cols + c]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "EOD\nplot ");
    for (size_t c = 0; c < cols; c++) {
        if (c < n_heads) {
            fprintf(f, "%s$data using 1:%zu with linespoints title 'head %zu "
                    "(blocks %d-%d)'", c ? ", " : "", c + 2, c + 1,
                    ranges[c][0], ranges[c][1]);
        } else {
            fprintf(f, "%s$data using 1:%zu with linespoints lw 2 dt 2 "
                    "title 'end to end (blocks %d-%d)'", c ? ", " : "", c + 2,
                    ranges[0][0], ranges[n_heads ? n_heads - 1 : 0][1]);
        }
    }
    fprintf(f, "\n");
    fclose(f);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", gp);
    int rc = system(cmd);
    if (rc) {
        fprintf(stderr, "edgetrain: gnuplot failed (status %d); the data is "
                "in %s and metrics.csv\n", rc, gp);
    }
}

/* --- the run --------------------------------------------------------------*/

int
trainer_run(const struct trainer_options *o, double *final, size_t *n_final,
            char *err, size_t errlen)
{
    struct dataset *ds = NULL;
    struct batcher *train_b = NULL, *test_b = NULL;
    struct stage_runner *bw[TRAINER_MAX_STAGES] = {0}, *e2e = NULL;
    int ranges[TRAINER_MAX_STAGES][2];
    size_t n_stages = 0;
    float *x = NULL;
    uint32_t *labels = NULL;
    double *acc_hist = NULL;
    FILE *csv = NULL;
    char *derr = NULL;
    int error;

    error = stage_list_parse(o->stages, ranges, TRAINER_MAX_STAGES,
                             &n_stages, err, errlen);
    if (error) {
        return error;
    }
    if (o->epochs < 1 || o->batch < 1) {
        snprintf(err, errlen, "need at least one epoch and batch size 1");
        return EINVAL;
    }
    bool do_bw = o->mode != TRAINER_E2E, do_e2e = o->mode != TRAINER_BLOCKWISE;
    if (mkdir(o->out_dir, 0777) && errno != EEXIST) {
        error = errno;
        snprintf(err, errlen, "%s: %s", o->out_dir, strerror(error));
        return error;
    }

    double t0 = now_s();
    error = dataset_open(o->data_spec, &o->data, &ds, &derr);
    if (error) {
        snprintf(err, errlen, "%s", derr ? derr : strerror(error));
        goto out;
    }
    struct batch_options tbo = {
        .input = o->input, .batch = o->batch, .shuffle = true,
        .drop_last = true, .seed = o->seed, .shift = o->aug_shift,
        .flip = o->aug_flip};
    struct batch_options ebo = {.input = o->input, .batch = o->batch};
    if ((error = batcher_create(ds, &ds->train, &tbo, &train_b, &derr))
        || (error = batcher_create(ds, &ds->test, &ebo, &test_b, &derr))) {
        snprintf(err, errlen, "%s", derr ? derr : strerror(error));
        goto out;
    }
    size_t steps = batcher_n_batches(train_b);
    if (!steps) {
        snprintf(err, errlen, "%zu training images make no batch of %zu",
                 ds->train.n, o->batch);
        error = EINVAL;
        goto out;
    }
    printf("data %s: %zu train, %zu test images of %ux%u, %zu classes "
           "(loaded in %.1fs)\n", ds->name, ds->train.n, ds->test.n,
           ds->train.h, ds->train.w, ds->n_classes, now_s() - t0);

    struct mn_config cfg;
    mn_config_default(&cfg);
    cfg.alpha = o->alpha;
    cfg.input_size = (int) o->input;
    cfg.in_channels = 1;
    cfg.classes = (int) ds->n_classes;
    cfg.head_pool = o->head_pool;
    cfg.batch_capacity = (int) o->batch;
    cfg.threads = o->threads;
    cfg.seed = o->seed;
    train_threads_set(o->threads, o->blas_threads);
    struct mn_lr_schedule sched = o->schedule;
    sched.total_steps = (long) steps * o->epochs;
    if (sched.kind == MN_LR_WARMUP_COSINE && !sched.warmup_steps) {
        sched.warmup_steps = (long) steps / 2;
    }
    for (size_t s = 0; do_bw && s < n_stages; s++) {
        if ((error = stage_runner_create(&bw[s], &cfg, ranges[s][0],
                                         ranges[s][1], &o->optim, &sched,
                                         err, errlen))) {
            goto out;
        }
    }
    if (do_e2e && (error = stage_runner_create(&e2e, &cfg, ranges[0][0],
                                               ranges[n_stages - 1][1],
                                               &o->optim, &sched, err,
                                               errlen))) {
        goto out;
    }
    if ((error = write_run_json(o, ds, ranges, n_stages, err, errlen))) {
        goto out;
    }

    size_t per = (size_t) o->input * o->input;
    x = malloc(o->batch * per * sizeof *x);
    labels = malloc(o->batch * sizeof *labels);
    size_t n_heads = do_bw ? n_stages : 0, cols = n_heads + (do_e2e ? 1 : 0);
    acc_hist = calloc((size_t) o->epochs * cols, sizeof *acc_hist);
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.csv", o->out_dir);
    csv = fopen(path, "w");
    if (!x || !labels || !acc_hist || !csv) {
        error = csv ? ENOMEM : errno;
        snprintf(err, errlen, "%s", csv ? "out of memory" : path);
        goto out;
    }
    fprintf(csv, "epoch,mode,head,blocks,train_loss,train_top1,test_loss,"
            "test_top1,test_top3,train_seconds,images_per_s,lr\n");
    bool tty = o->progress > 0 || (o->progress < 0 && isatty(STDOUT_FILENO));
    printf("training %s: stages %s, input %u, alpha %g, head pool %d, batch "
           "%zu, %d epochs x %zu steps, %ld threads\n", mode_name(o->mode),
           o->stages, o->input, o->alpha, o->head_pool, o->batch, o->epochs,
           steps, o->threads > 0 ? (long) o->threads
                                 : sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);

    size_t plain_every = steps / 4 ? steps / 4 : 1;
    for (int epoch = 0; epoch < o->epochs; epoch++) {
        batcher_set_epoch(train_b, (uint32_t) epoch);
        for (size_t s = 0; s < n_stages && bw[s]; s++) {
            memset(&bw[s]->train, 0, sizeof bw[s]->train);
        }
        if (e2e) {
            memset(&e2e->train, 0, sizeof e2e->train);
        }
        double te = now_s();
        size_t images = 0;
        double loss = 0;
        for (size_t i = 0; i < steps; i++) {
            size_t n = batcher_fill(train_b, i, x, labels);
            struct mn_metrics m;
            const float *in = x;
            for (size_t s = 0; do_bw && s < n_stages; s++) {
                if ((error = stage_runner_train_step(bw[s], in, labels, n,
                                                     &in, &m, err, errlen))) {
                    goto out;
                }
            }
            if (e2e && (error = stage_runner_train_step(e2e, x, labels, n,
                                                        NULL, &m, err,
                                                        errlen))) {
                goto out;
            }
            images += n;
            loss = i ? 0.95 * loss + 0.05 * m.loss : m.loss;
            if (!isfinite(m.loss)) {
                snprintf(err, errlen, "loss is %f at epoch %d step %zu; "
                         "lower --lr", m.loss, epoch + 1, i);
                error = ERANGE;
                goto out;
            }
            if (tty || (i + 1) % plain_every == 0) {
                if (tty || i + 1 < steps) {
                    progress_show(tty, epoch + 1, o->epochs, i + 1, steps,
                                  now_s() - te, images, loss);
                }
            }
        }
        double train_s = now_s() - te;
        if (tty) {
            printf("\r\033[K");
        }

        struct stage_stats test[TRAINER_MAX_STAGES + 1];
        memset(test, 0, sizeof test);
        if (do_bw && (error = trainer_evaluate(bw, n_stages, test_b, test,
                                               err, errlen))) {
            goto out;
        }
        if (e2e && (error = trainer_evaluate(&e2e, 1, test_b,
                                             &test[n_heads], err, errlen))) {
            goto out;
        }
        printf("epoch %d/%d: %.1fs train (%.0f img/s), %.1fs test; test "
               "top-1", epoch + 1, o->epochs, train_s, images / train_s,
               now_s() - te - train_s);
        for (size_t c = 0; c < cols; c++) {
            struct stage_runner *r = c < n_heads ? bw[c] : e2e;
            int first, last;
            mn_stage_range(r->stage, &first, &last);
            acc_hist[(size_t) epoch * cols + c] = stage_stats_top1(&test[c]);
            fprintf(csv, "%d,%s,%zu,%d-%d,%.5f,%.5f,%.5f,%.5f,%.5f,%.2f,%.1f,"
                    "%.6g\n", epoch + 1, c < n_heads ? "blockwise" : "e2e",
                    c < n_heads ? c + 1 : 1, first, last,
                    stage_stats_loss(&r->train), stage_stats_top1(&r->train),
                    stage_stats_loss(&test[c]), stage_stats_top1(&test[c]),
                    stage_stats_top3(&test[c]), train_s, images / train_s,
                    r->last_lr);
            printf(" %s%.4f", c < n_heads ? "" : "e2e ",
                   stage_stats_top1(&test[c]));
            snprintf(path, sizeof path, c < n_heads ? "%s/stage%zu.ckpt"
                     : "%s/e2e.ckpt", o->out_dir, c + 1);
            if ((error = mn_stage_save(r->stage, path, false, err, errlen))) {
                goto out;
            }
        }
        printf("\n");
        fflush(stdout);
        fflush(csv);
    }
    if (o->plot) {
        write_plot(o, ranges, n_heads, do_e2e, acc_hist, o->epochs);
    }
    printf("total %.1fs; metrics %s/metrics.csv, plot %s/accuracy.png\n",
           now_s() - t0, o->out_dir, o->out_dir);
    const double *last = acc_hist + (size_t) (o->epochs - 1) * cols;
    size_t nf = do_bw ? n_heads : 1;
    printf("test_accuracy=");
    for (size_t c = 0; c < nf; c++) {
        printf("%s%.4f", c ? "," : "", last[c]);
        if (final) {
            final[c] = last[c];
        }
    }
    printf("\n");
    fflush(stdout);
    if (n_final) {
        *n_final = nf;
    }
out:
    if (csv) {
        fclose(csv);
    }
    free(derr);
    free(x);
    free(labels);
    free(acc_hist);
    for (size_t s = 0; s < TRAINER_MAX_STAGES; s++) {
        stage_runner_destroy(bw[s]);
    }
    stage_runner_destroy(e2e);
    batcher_destroy(train_b);
    batcher_destroy(test_b);
    dataset_destroy(ds);
    return error;
}

/* --- trained models -------------------------------------------------------*/

static char *
slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            char *p = realloc(buf, cap + 1);
            if (!p) {
                free(buf);
                buf = NULL;
            }
            buf = p;
        }
    }
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

void
trained_model_destroy(struct trained_model *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->n_stages; i++) {
        stage_runner_destroy(m->stages[i]);
    }
    for (size_t c = 0; m->class_names && c < m->n_classes; c++) {
        free(m->class_names[c]);
    }
    free(m->class_names);
    free(m->data_spec);
    free(m);
}

int
trained_model_load(struct trained_model **mp, const char *dir, size_t upto,
                   bool e2e, size_t batch, char *err, size_t errlen)
{
    char path[1024];
    size_t len;
    *mp = NULL;
    snprintf(path, sizeof path, "%s/run.json", dir);
    char *text = slurp(path, &len, err, errlen);
    if (!text) {
        return ENOENT;
    }
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    struct trained_model *m = calloc(1, sizeof *m);
    const cJSON *ranges = cJSON_GetObjectItem(j, "stage_ranges");
    const cJSON *names = cJSON_GetObjectItem(j, "class_names");
    const cJSON *input = cJSON_GetObjectItem(j, "input");
    const cJSON *mean = cJSON_GetObjectItem(j, "mean");
    const cJSON *std = cJSON_GetObjectItem(j, "std");
    const cJSON *data = cJSON_GetObjectItem(j, "data");
    int error = 0;
    if (!m || !j || !cJSON_IsArray(ranges) || !cJSON_IsArray(names)
        || !cJSON_IsNumber(input) || !cJSON_IsNumber(mean)
        || !cJSON_IsNumber(std) || !cJSON_IsString(data)
        || cJSON_GetArraySize(ranges) < 1
        || cJSON_GetArraySize(ranges) > TRAINER_MAX_STAGES) {
        snprintf(err, errlen, "%s: not a run description (want stage_ranges, "
                 "class_names, input, mean, std, data)", path);
        error = EINVAL;
        goto out;
    }
    m->input = (uint32_t) input->valuedouble;
    m->mean = (float) mean->valuedouble;
    m->std = (float) std->valuedouble;
    m->data_spec = strdup(data->valuestring);
    dataset_options_init(&m->data_opts);
    const cJSON *v;
    if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, "per_class"))) {
        m->data_opts.per_class = (size_t) v->valuedouble;
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, "test_fraction"))) {
        m->data_opts.test_fraction = v->valuedouble;
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, "test_limit"))) {
        m->data_opts.test_limit = (size_t) v->valuedouble;
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, "format"))
        && v->valueint >= 0 && v->valueint <= DATASET_FORMAT_BIN) {
        m->data_opts.format = (enum dataset_format) v->valueint;
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, "render_size"))
        && v->valueint >= 8 && v->valueint <= 1024) {
        m->data_opts.render_size = (uint32_t) v->valueint;
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, "line_width"))) {
        m->data_opts.line_width = (float) v->valuedouble;
    }
    m->n_classes = (size_t) cJSON_GetArraySize(names);
    m->class_names = calloc(m->n_classes ? m->n_classes : 1, sizeof (char *));
    for (size_t c = 0; c < m->n_classes; c++) {
        const cJSON *n = cJSON_GetArrayItem(names, (int) c);
        m->class_names[c] = strdup(cJSON_IsString(n) ? n->valuestring : "?");
    }
    size_t total = (size_t) cJSON_GetArraySize(ranges);
    if (e2e) {
        const cJSON *a = cJSON_GetArrayItem(ranges, 0);
        const cJSON *b = cJSON_GetArrayItem(ranges, (int) total - 1);
        m->ranges[0][0] = cJSON_GetArrayItem(a, 0)->valueint;
        m->ranges[0][1] = cJSON_GetArrayItem(b, 1)->valueint;
        m->n_stages = 1;
    } else {
        if (upto > total) {
            snprintf(err, errlen, "%s: --upto %zu but the run has %zu stages",
                     dir, upto, total);
            error = EINVAL;
            goto out;
        }
        m->n_stages = upto ? upto : total;
        for (size_t i = 0; i < m->n_stages; i++) {
            const cJSON *a = cJSON_GetArrayItem(ranges, (int) i);
            m->ranges[i][0] = cJSON_GetArrayItem(a, 0)->valueint;
            m->ranges[i][1] = cJSON_GetArrayItem(a, 1)->valueint;
        }
    }
    for (size_t i = 0; i < m->n_stages; i++) {
        if (e2e) {
            snprintf(path, sizeof path, "%s/e2e.ckpt", dir);
        } else {
            snprintf(path, sizeof path, "%s/stage%zu.ckpt", dir, i + 1);
        }
        char *buf = slurp(path, &len, err, errlen);
        if (!buf) {
            error = ENOENT;
            goto out;
        }
        struct mn_config cfg;
        int first, last;
        char e2[256];
        error = mn_checkpoint_info((const uint8_t *) buf, len, &cfg, &first,
                                   &last, e2, sizeof e2);
        if (!error && (first != m->ranges[i][0] || last != m->ranges[i][1])) {
            snprintf(e2, sizeof e2, "holds blocks %d-%d, run.json says %d-%d",
                     first, last, m->ranges[i][0], m->ranges[i][1]);
            error = EINVAL;
        }
        cfg.batch_capacity = (int) batch;
        struct mn_optim optim;
        struct mn_lr_schedule sched = {.kind = MN_LR_CONSTANT};
        mn_optim_default(&optim);
        if (!error) {
            error = stage_runner_create(&m->stages[i], &cfg, first, last,
                                        &optim, &sched, e2, sizeof e2);
        }
        if (!error) {
            error = mn_stage_load_buf(m->stages[i]->stage,
                                      (const uint8_t *) buf, len, e2,
                                      sizeof e2);
        }
        free(buf);
        if (error) {
            m->n_stages = i + (m->stages[i] != NULL);
            snprintf(err, errlen, "%s: %s", path, e2);
            goto out;
        }
    }
out:
    cJSON_Delete(j);
    if (error) {
        trained_model_destroy(m);
        m = NULL;
    }
    *mp = m;
    return error;
}
