/* The single-process trainer: block-wise (the paper's method) or end to
 * end, on a dataset, with per-epoch test metrics, checkpoints, a CSV, a
 * plot, and evaluation of the cut model.  The reference that the
 * distributed agents must match: its per-stage step is stage_runner.h. */
#ifndef ET_TRAINER_H
#define ET_TRAINER_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "model.h"
#include "stage_runner.h"

#define TRAINER_MAX_STAGES MN_BLOCKS

enum trainer_mode {
    TRAINER_BLOCKWISE,          /* Every stage on its own head's loss. */
    TRAINER_E2E,                /* The whole range end to end, one head. */
    TRAINER_BOTH,               /* Both, side by side on the same batches. */
};

struct trainer_options {
    const char *data_spec;
    struct dataset_options data;
    const char *out_dir;
    enum trainer_mode mode;
    char stages[128];           /* e.g. "1,2-3,4-5,6-11,12-13". */
    uint32_t input;             /* Input side in pixels. */
    float alpha;
    int head_pool;
    size_t batch;
    int epochs;
    uint64_t seed;
    int threads;
    int blas_threads;           /* OpenBLAS threads (1, see threads.h). */
    struct mn_optim optim;
    struct mn_lr_schedule schedule;    /* total_steps filled in by run. */
    uint32_t aug_shift;         /* Random translation, pixels (0: off). */
    bool aug_flip;              /* Random horizontal flip. */
    int progress;               /* 1 bar, 0 plain lines, -1 auto (TTY). */
    bool plot;                  /* Write accuracy.png with gnuplot. */
};

/* The documented default configuration (docs/method.md). */
void trainer_options_default(struct trainer_options *o);

/* Trains as 'o' says, writing into o->out_dir: metrics.csv (one row per
 * head per epoch), run.json (what eval/infer need), stage<i>.ckpt (block-
 * wise) and e2e.ckpt, accuracy.png.  Prints progress and, as its last
 * line, "test_accuracy=<h1>,<h2>,..." (the block-wise heads, or the e2e
 * head alone in e2e mode).  'final' (may be NULL) receives those
 * accuracies, *n_final their count. */
int trainer_run(const struct trainer_options *o, double *final,
                size_t *n_final, char *err, size_t errlen);

/* Evaluates the chain of stages runners[0..k-1] (each feeding the next) on
 * every batch of 'b', adding each head's loss and accuracy to stats[i]. */
struct batcher;
int trainer_evaluate(struct stage_runner **runners, size_t k,
                     struct batcher *b, struct stage_stats *stats,
                     char *err, size_t errlen);

/* A trained model read back from a run directory (run.json + checkpoints)
 * for eval and infer. */
struct trained_model {
    size_t n_stages;
    struct stage_runner *stages[TRAINER_MAX_STAGES];
    int ranges[TRAINER_MAX_STAGES][2];
    uint32_t input;
    float mean, std;
    size_t n_classes;
    char **class_names;
    char *data_spec;
    struct dataset_options data_opts;  /* As in training: same test split. */
};

/* Loads stages 1..upto (0: all) of the run in 'dir' (e2e: its e2e.ckpt
 * instead) with room for batches of 'batch'. */
int trained_model_load(struct trained_model **mp, const char *dir,
                       size_t upto, bool e2e, size_t batch, char *err,
                       size_t errlen);
void trained_model_destroy(struct trained_model *m);

#endif /* ET_TRAINER_H */
