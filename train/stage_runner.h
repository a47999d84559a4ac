/* One stage of block-wise training: a model stage (kernels/model.h) with
 * its optimiser, learning-rate schedule and step counter.  This is the unit
 * of the paper's method: it trains on its own head's loss, on the detached
 * output of the previous stage, and hands its own detached output on.
 *
 * The single-process trainer (train/trainer.c) and the agents both drive
 * stages through this file, so for the same config, seed and batches they
 * compute the same parameters.  Typical use on a device that holds one
 * stage:
 *
 *     struct stage_runner *r;
 *     stage_runner_create(&r, &cfg, first, last, &optim, &sched, err, len);
 *     for each batch (in = previous stage's output or the input images):
 *         stage_runner_train_step(r, in, labels, n, &out, &m, err, len);
 *         send out (n x h x w x c, see mn_stage_output_shape) downstream;
 *     stage_runner_save(r, path, ...);
 *
 * All functions return 0 or a positive errno, with a message in 'err'. */
#ifndef ET_STAGE_RUNNER_H
#define ET_STAGE_RUNNER_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Sums over the batches of an epoch (or an evaluation). */
struct stage_stats {
    double loss_sum;            /* Sum of per-image losses. */
    size_t correct, correct_top3, n;
};

static inline double stage_stats_loss(const struct stage_stats *s)
{ return s->n ? s->loss_sum / s->n : 0.0; }
static inline double stage_stats_top1(const struct stage_stats *s)
{ return s->n ? (double) s->correct / s->n : 0.0; }
static inline double stage_stats_top3(const struct stage_stats *s)
{ return s->n ? (double) s->correct_top3 / s->n : 0.0; }

struct stage_runner {
    struct mn_stage *stage;     /* Owned. */
    struct mn_optim optim;
    struct mn_lr_schedule schedule;
    long step;                  /* Optimiser steps taken so far: the
                                 * schedule position.  Set it when resuming. */
    float last_lr;              /* Learning rate of the last step. */
    struct stage_stats train;   /* Training sums since the last reset. */
};

/* Creates the runner of blocks [first, last] of the model 'cfg' (whose
 * seed initialises the parameters). */
int stage_runner_create(struct stage_runner **rp, const struct mn_config *cfg,
                        int first, int last, const struct mn_optim *optim,
                        const struct mn_lr_schedule *schedule, char *err,
                        size_t errlen);
void stage_runner_destroy(struct stage_runner *r);     /* Accepts NULL. */

/* One training step on 'in' (n, H, W, C) NHWC with 'labels': forward,
 * head loss, backward inside the stage, optimiser update at the schedule's
 * learning rate for step r->step, then r->step++.  *out (may be NULL)
 * receives the stage's detached output (n, h, w, c), valid until the
 * stage's next forward; 'in' must stay unchanged until this returns.
 * 'm' (may be NULL) receives the batch's loss and accuracy (before the
 * update); they are also added to r->train. */
int stage_runner_train_step(struct stage_runner *r, const float *in,
                            const uint32_t *labels, size_t n,
                            const float **out, struct mn_metrics *m,
                            char *err, size_t errlen);

/* Inference-mode forward (running BN statistics) of 'in'; with 'labels'
 * (may be NULL) the head's loss and accuracy are added to 'stats' (may be
 * NULL).  *out as for a training step. */
int stage_runner_eval_step(struct stage_runner *r, const float *in,
                           const uint32_t *labels, size_t n,
                           const float **out, struct stage_stats *stats,
                           char *err, size_t errlen);

void stage_stats_add(struct stage_stats *s, const struct mn_metrics *m);

/* Parses a stage list such as "1,2-3,4-5,6-11,12-13" into 'max' or fewer
 * [first, last] pairs; the ranges must be contiguous, ascending, start at
 * block 1 and stay within 1..MN_BLOCKS.  Returns 0 or EINVAL. */
int stage_list_parse(const char *spec, int (*ranges)[2], size_t max,
                     size_t *n, char *err, size_t errlen);

#endif /* ET_STAGE_RUNNER_H */
