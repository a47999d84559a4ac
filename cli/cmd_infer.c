/* edgetrain infer: top-3 classes of images (PNG, PGM) or dataset records
 * under the cut model made of stages 1..K, with single-image latency. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "commands.h"
#include "threads.h"
#include "image_io.h"
#include "infer_input.h"
#include "trainer.h"

static double
mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* Runs 'x' through the model; fills probs (n_classes).  Returns 0 or errno. */
static int
classify(struct trained_model *m, const float *x, float *probs, char *err,
         size_t errlen)
{
    const float *in = x;
    for (size_t s = 0; s < m->n_stages; s++) {
        int error = stage_runner_eval_step(m->stages[s], in, NULL, 1, &in,
                                           NULL, err, errlen);
        if (error) {
            return error;
        }
    }
    const float *logits = mn_stage_logits(m->stages[m->n_stages - 1]->stage);
    float mx = logits[0];
    for (size_t c = 1; c < m->n_classes; c++) {
        mx = logits[c] > mx ? logits[c] : mx;
    }
    double sum = 0;
    for (size_t c = 0; c < m->n_classes; c++) {
        probs[c] = expf(logits[c] - mx);
        sum += probs[c];
    }
    for (size_t c = 0; c < m->n_classes; c++) {
        probs[c] = (float) (probs[c] / sum);
    }
    return 0;
}

int
cmd_infer(int argc, char **argv)
{
    /* Ask a running agent instead (cli/cmd_infer_agent.c). */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--agent") || !strncmp(argv[i], "--agent=", 8)) {
            return cmd_infer_agent(argc, argv);
        }
    }
    /* argv is main's argv + 1: re-exec with the whole of it. */
    train_threads_passive_wait(argv - 1);
    const char *dir = NULL, *data = NULL;
    long upto = 0, threads = 1, repeats = 20;
    bool e2e = false, invert = true;
    static const struct option longopts[] = {
        {"checkpoints", 1, 0, 'c'}, {"upto", 1, 0, 'k'}, {"data", 1, 0, 'd'},
        {"threads", 1, 0, 't'}, {"e2e", 0, 0, 'e'}, {"repeats", 1, 0, 'r'},
        {"no-invert", 0, 0, 'n'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': dir = optarg; break;
        case 'k': upto = atol(optarg); break;
        case 'd': data = optarg; break;
        case 't': threads = atol(optarg); break;
        case 'e': e2e = true; break;
        case 'r': repeats = atol(optarg); break;
        case 'n': invert = false; break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr,
"usage: edgetrain infer --checkpoints DIR [--upto K] [--e2e] [--threads N]\n"
"       [--data SPEC] [--repeats N] [--no-invert] FILE...\n"
"Prints the top-3 classes with probabilities of each FILE under the model\n"
"made of stages 1..K of a run.  FILE is a PNG or PGM image (light-\n"
"background images are inverted to the datasets' dark background unless\n"
"--no-invert) or a dataset record test:INDEX / train:INDEX of --data (the\n"
"run's dataset by default).  Latency: median of --repeats single-image\n"
"forwards on --threads threads (1).\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!dir || optind >= argc || upto < 0 || repeats < 1) {
        fprintf(stderr, "edgetrain infer: need --checkpoints DIR and FILE... "
                "(see --help)\n");
        return 2;
    }
    char err[512] = "";
    struct trained_model *m;
    train_threads_set((int) threads, 1);
    if (trained_model_load(&m, dir, (size_t) upto, e2e, 1, err, sizeof err)) {
        fprintf(stderr, "edgetrain infer: %s\n", err);
        return 1;
    }
    struct dataset *ds = NULL;
    float *x = malloc((size_t) m->input * m->input * sizeof *x);
    float *probs = malloc(m->n_classes * sizeof *probs);
    double *lat = malloc((size_t) repeats * sizeof *lat);
    double lat_sum = 0;
    size_t lat_n = 0;
    int rc = 0;
    for (int a = optind; a < argc; a++) {
        const char *arg = argv[a];
        const char *label;
        if (infer_arg_is_record(arg) && !ds) {
            char *derr = NULL;
            if (dataset_open(data ? data : m->data_spec, &m->data_opts, &ds,
                             &derr)) {
                fprintf(stderr, "edgetrain infer: %s\n", derr);
                free(derr);
                rc = 1;
                break;
            }
        }
        if (infer_input_load(arg, ds, m->input, m->mean, m->std, invert, x,
                             &label)) {
            rc = 1;
            continue;
        }
        if (classify(m, x, probs, err, sizeof err)) {
            fprintf(stderr, "edgetrain infer: %s: %s\n", arg, err);
            rc = 1;
            continue;
        }
        for (long r = 0; r < repeats; r++) {
            double t = mono_s();
            classify(m, x, probs, err, sizeof err);
            lat[r] = (mono_s() - t) * 1e3;
        }
        qsort(lat, (size_t) repeats, sizeof *lat, cmp_double);
        lat_sum += lat[repeats / 2];
        lat_n++;
        int top[3] = {-1, -1, -1};
        for (int k = 0; k < 3 && k < (int) m->n_classes; k++) {
            for (size_t cc = 0; cc < m->n_classes; cc++) {
                if ((k < 1 || (int) cc != top[0])
                    && (k < 2 || (int) cc != top[1])
                    && (top[k] < 0 || probs[cc] > probs[top[k]])) {
                    top[k] = (int) cc;
                }
            }
        }
        printf("%s:", arg);
        for (int k = 0; k < 3 && top[k] >= 0; k++) {
            printf(" %s%s=%.3f", k ? "" : "", m->class_names[top[k]],
                   probs[top[k]]);
            if (k < 2 && top[k + 1] >= 0) {
                printf(",");
            }
        }
        if (label) {
            printf(" (label %s)", label);
        }
        printf(" [%.3f ms]\n", lat[repeats / 2]);
    }
    if (lat_n) {
        printf("latency_ms=%.3f (median single-image forward of stages 1-%zu, "
               "blocks %d-%d, %ld thread%s)\n", lat_sum / lat_n, m->n_stages,
               m->ranges[0][0], m->ranges[m->n_stages - 1][1], threads,
               threads == 1 ? "" : "s");
    }
    free(x);
    free(probs);
    free(lat);
    dataset_destroy(ds);
    trained_model_destroy(m);
    return rc;
}
