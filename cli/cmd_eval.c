/* edgetrain eval: test accuracy of the cut model made of stages 1..K. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "commands.h"
#include "threads.h"
#include "trainer.h"

int
cmd_eval(int argc, char **argv)
{
    /* argv is main's argv + 1: re-exec with the whole of it. */
    train_threads_passive_wait(argv - 1);
    const char *dir = NULL, *data = NULL;
    long upto = 0, batch = 256, threads = 0;
    bool e2e = false, use_train = false;
    /* Flags given here override the run's dataset options. */
    long per_class = -1, test_limit = -1;
    double test_fraction = -1;
    static const struct option longopts[] = {
        {"checkpoints", 1, 0, 'c'}, {"upto", 1, 0, 'k'}, {"data", 1, 0, 'd'},
        {"batch", 1, 0, 'b'}, {"threads", 1, 0, 't'}, {"e2e", 0, 0, 'e'},
        {"test-limit", 1, 0, 'l'}, {"per-class", 1, 0, 'p'},
        {"test-fraction", 1, 0, 'f'}, {"train", 0, 0, 'T'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': dir = optarg; break;
        case 'k': upto = atol(optarg); break;
        case 'd': data = optarg; break;
        case 'b': batch = atol(optarg); break;
        case 't': threads = atol(optarg); break;
        case 'e': e2e = true; break;
        case 'T': use_train = true; break;
        case 'l': test_limit = atol(optarg); break;
        case 'p': per_class = atol(optarg); break;
        case 'f': test_fraction = atof(optarg); break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr,
"usage: edgetrain eval --checkpoints DIR [--upto K] [--e2e] [--data SPEC]\n"
"       [--batch N] [--threads N] [--test-limit N] [--per-class N] [--train]\n"
"Prints the test accuracy of every head of the model made of stages 1..K\n"
"(all stages by default; --e2e: the end-to-end model) of a training run.\n"
"--data defaults to the run's dataset; --train evaluates the training split.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!dir || upto < 0 || batch < 1 || optind < argc) {
        fprintf(stderr, "edgetrain eval: need --checkpoints DIR (see "
                "--help)\n");
        return 2;
    }
    char err[512] = "";
    struct trained_model *m;
    train_threads_set((int) threads, 1);
    if (trained_model_load(&m, dir, (size_t) upto, e2e, (size_t) batch, err,
                           sizeof err)) {
        fprintf(stderr, "edgetrain eval: %s\n", err);
        return 1;
    }
    struct dataset_options dopts = m->data_opts;
    if (per_class >= 0) {
        dopts.per_class = (size_t) per_class;
    }
    if (test_limit >= 0) {
        dopts.test_limit = (size_t) test_limit;
    }
    if (test_fraction >= 0) {
        dopts.test_fraction = test_fraction;
    }
    struct dataset *ds;
    char *derr = NULL;
    int rc = 1;
    if (dataset_open(data ? data : m->data_spec, &dopts, &ds, &derr)) {
        fprintf(stderr, "edgetrain eval: %s\n", derr);
        free(derr);
        trained_model_destroy(m);
        return 1;
    }
    if (ds->n_classes != m->n_classes) {
        fprintf(stderr, "edgetrain eval: %s has %zu classes, the model %zu\n",
                ds->name, ds->n_classes, m->n_classes);
        goto out;
    }
    /* Normalise as in training (the run's statistics, not this split's). */
    ds->mean = m->mean;
    ds->std = m->std;
    struct batch_options bo = {.input = m->input, .batch = (size_t) batch};
    struct batcher *b;
    const struct dataset_split *split = use_train ? &ds->train : &ds->test;
    if (batcher_create(ds, split, &bo, &b, &derr)) {
        fprintf(stderr, "edgetrain eval: %s\n", derr);
        goto out;
    }
    struct stage_stats stats[TRAINER_MAX_STAGES];
    memset(stats, 0, sizeof stats);
    if (trainer_evaluate(m->stages, m->n_stages, b, stats, err, sizeof err)) {
        fprintf(stderr, "edgetrain eval: %s\n", err);
    } else {
        printf("%s %s split, %zu images\n", ds->name,
               use_train ? "train" : "test", split->n);
        for (size_t i = 0; i < m->n_stages; i++) {
            printf("%s %zu (blocks %d-%d): top-1 %.4f top-3 %.4f loss %.4f\n",
                   e2e ? "e2e head" : "head", i + 1, m->ranges[i][0],
                   m->ranges[i][1], stage_stats_top1(&stats[i]),
                   stage_stats_top3(&stats[i]), stage_stats_loss(&stats[i]));
        }
        printf("accuracy=%.4f\n", stage_stats_top1(&stats[m->n_stages - 1]));
        rc = 0;
    }
    batcher_destroy(b);
out:
    free(derr);
    dataset_destroy(ds);
    trained_model_destroy(m);
    return rc;
}
