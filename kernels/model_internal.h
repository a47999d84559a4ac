/* Internals of a stage shared by model.c, optim.c and checkpoint.c. Not
 * for use outside kernels/. */
#ifndef ET_MODEL_INTERNAL_H
#define ET_MODEL_INTERNAL_H 1

#include "model.h"

enum mn_unit_kind { MN_UNIT_STEM, MN_UNIT_DW, MN_UNIT_PW };

/* One conv + BN + ReLU6 of a block. Input (N,H,W,Cin), output
 * (N,Ho,Wo,Cout). Pointers point into the stage's flat buffers. */
struct mn_unit {
    enum mn_unit_kind kind;
    int block;
    size_t H, W, Cin, Ho, Wo, Cout, stride;
    float *w, *gamma, *beta;          /* parameters */
    float *dw, *dgamma, *dbeta;       /* their gradients */
    float *run_mean, *run_var;        /* running statistics */
    float *y;                         /* conv output, pre-BN (cap,Ho,Wo,Cout) */
    float *a;                         /* after BN + ReLU6, same shape; NULL
                                       * when a depthwise conv follows: it
                                       * applies BN + ReLU6 to y itself */
    float *mean, *invstd;             /* batch statistics (Cout) */
    float *scale, *shift;             /* BN + ReLU6 folded (Cout) */
};

#define MN_MAX_TENSORS (4 * 3 * 2 * MN_BLOCKS + 8)

struct mn_stage {
    struct mn_config cfg;
    int first, last;
    struct mn_unit *units;
    size_t n_units;
    size_t in_h, in_w, in_c;          /* stage input */
    size_t out_h, out_w, out_c;       /* last unit's output */
    size_t pool;                      /* head P */
    size_t feat;                      /* P*P*out_c */
    size_t classes;
    float *head_w, *head_b, *head_dw, *head_db;

    /* Flat buffers: params and grads (n_params: the first n_decay get
     * weight decay), running statistics (n_bufs), optimiser state
     * (opt_floats, allocated on the first step). */
    float *params, *grads, *bufs, *opt;
    size_t n_params, n_decay, n_bufs, opt_floats;
    int opt_kind;                     /* enum mn_optim_kind, -1 before */
    long opt_step;

    /* Activations and scratch, allocated at capacity. */
    float *act;                       /* one allocation for y, a, stats */
    float *g1, *g2;                   /* backward ping-pong (max activation) */
    float *pooled, *dpooled;          /* (cap, feat) */
    float *logits, *probs, *dlogits;  /* (cap, classes) */

    const float *input;               /* borrowed from the last forward */
    size_t n;                         /* rows in the last forward */
    bool trained_forward;             /* last forward was in train mode */

    struct mn_tensor tensors[MN_MAX_TENSORS];
    char names[MN_MAX_TENSORS][32];
    size_t n_tensors;
};

#endif /* ET_MODEL_INTERNAL_H */
