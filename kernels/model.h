/* MobileNet v1 split into blocks, stages of blocks with their heads,
 * optimisers, learning-rate schedules and checkpoints.
 *
 * Blocks (numbered from 1; "dwN" is MobileNet v1's N-th depthwise-separable
 * layer: 3x3 depthwise + BN + ReLU6, then 1x1 pointwise + BN + ReLU6):
 *
 *   block  layers                 stride  out channels (x alpha)
 *   1      stem 3x3 conv + dw1    2, 1    64      (the paper's first block)
 *   2      dw2                    2       128
 *   3      dw3                    1       128
 *   4      dw4                    2       256
 *   5      dw5                    1       256
 *   6      dw6                    2       512
 *   7-11   dw7 .. dw11            1       512
 *   12     dw12                   2       1024
 *   13     dw13                   1       1024
 *
 * So MN_BLOCKS = 13 and "1,2-3,4-5,6-11,12-13" covers the network. Channel
 * counts are round(c * alpha) (at least 1, like the paper's width
 * multiplier). At 64x64 input the block outputs are 32, 16, 16, 8, 8, 4,
 * 4.., 2, 2 pixels on a side.
 *
 * A stage is a contiguous block range [first, last] and its head: adaptive
 * average pooling to P x P (P = min(config head_pool, output side)) and a
 * dense layer to the classes, trained with softmax cross-entropy. A stage
 * over 1..13 is the whole network with one head (end-to-end training).
 * Gradients never leave a stage: its input is treated as constant.
 *
 * Everything is NHWC float32. A stage owns its parameters, gradients,
 * optimiser state, running statistics (flat buffers) and its activations,
 * allocated once at create time for 'batch_capacity' images, so the
 * training step allocates nothing large.
 *
 * Functions return 0 or a positive errno value; where an error can come
 * from input (a config, a file, a buffer, labels) they also write a
 * one-line message to 'err' (errlen bytes, may be 0/NULL). */
#ifndef ET_MODEL_H
#define ET_MODEL_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MN_BLOCKS 13

struct mn_config {
    float alpha;          /* Width multiplier (0 < alpha <= 4), e.g. 1.0. */
    int input_size;       /* Input height = width, e.g. 64 (>= 8). */
    int in_channels;      /* 1 (grey) or 3 (RGB). */
    int classes;          /* Head outputs, e.g. 340. */
    int head_pool;        /* Heads pool to P x P before the dense layer. */
    int batch_capacity;   /* Largest batch a stage accepts. */
    int threads;          /* For mn_set_threads(); stages do not read it. */
    uint64_t seed;        /* Deterministic initialisation. */
    float bn_momentum;    /* Running statistics update, PyTorch's 0.1. */
    float bn_eps;         /* 1e-5 like PyTorch's BatchNorm2d. */
};

/* Fills 'c' with the defaults: alpha 1, 64x64x1, 340 classes, head_pool 4,
 * batch 256, 1 thread, seed 1, BN momentum 0.1, eps 1e-5. */
void mn_config_default(struct mn_config *c);

/* Returns 0 if 'c' is usable, else EINVAL with the reason in 'err'. */
int mn_config_check(const struct mn_config *c, char *err, size_t errlen);

/* Shape (NHWC without N) of the activations after block 'block' (1..13);
 * block 0 is the network input. Returns EINVAL for a bad block. */
int mn_block_shape(const struct mn_config *c, int block, int *h, int *w,
                   int *ch);

/* Forward multiply-adds x 2 of one image through block 'block' (1..13), and
 * its parameter count (conv weights + BN). For placement and benchmarks. */
double mn_block_flops(const struct mn_config *c, int block);
size_t mn_block_params(const struct mn_config *c, int block);

/* Sets the threads of the whole step: n OpenMP threads (n <= 0: the
 * online CPUs) run every layer, and each GEMM is split across them with
 * OpenBLAS single-threaded inside each share, so OpenBLAS is set to 1
 * thread. (Two thread pools spinning on the same cores made a step 3x
 * slower on 2 cores; see docs/kernels.md.) If a caller later gives
 * OpenBLAS more threads, the GEMMs are left to OpenBLAS unsplit. Idle
 * OpenMP threads should sleep rather than spin on a shared machine:
 * OMP_WAIT_POLICY=passive, read by libgomp at program start. */
void mn_set_threads(int n);
/* OpenBLAS's kernel name ("SkylakeX", "ARMV8", ...), for logs. */
const char *mn_blas_corename(void);

/* ---- stages --------------------------------------------------------------*/

struct mn_stage;

/* Creates the stage of blocks [first, last] (1 <= first <= last <= 13)
 * with its head, parameters initialised from c->seed (block b's weights
 * depend only on the seed and b, so any split initialises alike). Returns
 * NULL with a message in 'err' on a bad config or range, or ENOMEM. */
struct mn_stage *mn_stage_create(const struct mn_config *c, int first,
                                 int last, char *err, size_t errlen);
void mn_stage_destroy(struct mn_stage *s);   /* Accepts NULL. */

/* Bytes a stage of blocks [first, last] allocates for config 'c' (at its
 * batch capacity, with Adam's state), without creating it: for placing
 * stages on devices by memory. 0 for a bad config or range. */
size_t mn_stage_bytes(const struct mn_config *c, int first, int last);

const struct mn_config *mn_stage_config(const struct mn_stage *s);
void mn_stage_range(const struct mn_stage *s, int *first, int *last);
/* NHWC shape (without N) of what the stage consumes and of what it
 * produces (its last block's output, the next stage's input). */
void mn_stage_input_shape(const struct mn_stage *s, int *h, int *w, int *c);
void mn_stage_output_shape(const struct mn_stage *s, int *h, int *w, int *c);
/* The head's pooling side P (after clamping) and its feature count. */
int mn_stage_head_pool(const struct mn_stage *s);

/* Runs the blocks and the head on 'in' (n, H, W, C) NHWC, n <= capacity.
 * train: batch statistics (and running-stat updates) and keep what
 * backward needs; !train: running statistics (inference/eval). 'in' is
 * borrowed: it must stay unchanged until mn_stage_backward() returns.
 * Returns EINVAL if n is 0 or above capacity. */
int mn_stage_forward(struct mn_stage *s, const float *in, size_t n,
                     bool train);

/* After a forward: the last block's activations (n, h, w, c) (detached,
 * ready to send downstream) and the head's logits (n, classes). Valid
 * until the next forward. */
const float *mn_stage_output(const struct mn_stage *s);
const float *mn_stage_logits(const struct mn_stage *s);

struct mn_metrics {
    float loss;           /* Mean softmax cross-entropy over the batch. */
    size_t correct;       /* Rows whose top-1 class is the label. */
    size_t correct_top3;  /* Rows with the label among the top 3. */
    size_t n;             /* Rows in the batch. */
};

/* Loss and accuracy of the last forward's logits against 'labels' (n of
 * them, each < classes), without gradients (for evaluation). EINVAL with
 * a message for a label out of range. */
int mn_stage_loss(struct mn_stage *s, const uint32_t *labels,
                  struct mn_metrics *m, char *err, size_t errlen);

/* After a training forward: loss and accuracy as mn_stage_loss(), then the
 * gradients of the mean loss for every parameter of the stage (they
 * replace the previous ones). EINVAL for a bad label or if the last
 * forward was not in training mode. */
int mn_stage_backward(struct mn_stage *s, const uint32_t *labels,
                      struct mn_metrics *m, char *err, size_t errlen);

/* ---- optimisers and schedules ---------------------------------------------*/

enum mn_optim_kind {
    MN_SGD,     /* momentum SGD, L2 weight decay in the gradient (PyTorch) */
    MN_ADAM,    /* Adam, L2 weight decay in the gradient (torch.optim.Adam) */
    MN_ADAMW,   /* Adam with decoupled weight decay (torch.optim.AdamW) */
};

struct mn_optim {
    enum mn_optim_kind kind;
    float momentum;       /* SGD, e.g. 0.9 (0 = plain SGD). */
    bool nesterov;        /* SGD. */
    float beta1, beta2, eps;   /* Adam, e.g. 0.9, 0.999, 1e-8. */
    float weight_decay;   /* Conv and dense weights only; not BN, biases. */
};

/* Defaults: Adam, betas 0.9/0.999, eps 1e-8, momentum 0.9, no decay. */
void mn_optim_default(struct mn_optim *o);
/* Parses "sgd", "adam" or "adamw"; returns -1 otherwise. */
int mn_optim_kind_from_string(const char *s);

/* One update of every parameter of the stage from its gradients, with
 * learning rate 'lr' (take it from mn_lr_at()). The optimiser state is
 * allocated on the first call (ENOMEM) and counts steps for Adam. */
int mn_stage_step(struct mn_stage *s, const struct mn_optim *o, float lr);
/* Optimiser steps taken so far (restored by loading a checkpoint saved
 * with its optimiser state): the schedule position of a resumed stage.
 * 0 without optimiser state. */
long mn_stage_optim_steps(const struct mn_stage *s);

enum mn_lr_kind {
    MN_LR_CONSTANT,
    MN_LR_WARMUP_COSINE,  /* linear 0 -> lr_max over warmup_steps, then
                             cosine to lr_min at total_steps */
    MN_LR_ONECYCLE,       /* torch OneCycleLR (cos): lr_max/div_factor ->
                             lr_max over pct_start of total_steps, then
                             cosine to lr_max/(div_factor*final_div) */
};

struct mn_lr_schedule {
    enum mn_lr_kind kind;
    float lr_max;
    float lr_min;         /* WARMUP_COSINE floor. */
    long warmup_steps;    /* WARMUP_COSINE. */
    long total_steps;     /* Both; steps past it keep the last value. */
    float pct_start;      /* ONECYCLE, e.g. 0.3. */
    float div_factor;     /* ONECYCLE, e.g. 25. */
    float final_div;      /* ONECYCLE, e.g. 1e4. */
};

/* Learning rate for step 'step' (0-based). */
float mn_lr_at(const struct mn_lr_schedule *s, long step);
/* Parses "constant", "cosine" (warm-up + cosine) or "onecycle"; -1 else. */
int mn_lr_kind_from_string(const char *s);

/* ---- parameters -----------------------------------------------------------
 * A stage's tensors in flat-buffer order: all parameters (decayed weights
 * first, then BN gamma/beta and biases), then the running statistics.
 * Names look like "b3.dw.w", "b3.dw.bn.gamma", "b1.stem.w", "b3.pw.bn.rvar",
 * "head.w", "head.b". Layouts: stem w (Cout,3,3,Cin), dw w (3,3,C), pw w
 * (Cout,Cin), head w (classes, P*P*C) with features in (py,px,c) order,
 * BN vectors (C). */
struct mn_tensor {
    const char *name;
    float *data;          /* Points into the stage's flat buffers. */
    float *grad;          /* NULL for running statistics. */
    size_t count;
    int ndim;
    int dims[4];
};

size_t mn_stage_tensor_count(const struct mn_stage *s);
/* Tensor i (< count), or NULL. */
const struct mn_tensor *mn_stage_tensor(const struct mn_stage *s, size_t i);
/* Tensor by name, or NULL. */
const struct mn_tensor *mn_stage_tensor_by_name(const struct mn_stage *s,
                                                const char *name);
/* Flat parameter and gradient buffers ('*n' floats each). */
float *mn_stage_params(struct mn_stage *s, size_t *n);
float *mn_stage_grads(struct mn_stage *s, size_t *n);

/* Training FLOPs of one image through the stage (forward x 3, the usual
 * convention for forward + backward), for throughput reports. */
double mn_stage_train_flops(const struct mn_stage *s);

/* ---- checkpoints ------------------------------------------------------------
 * Little-endian file: magic "ETCKPT\r\n", format version, the config fields
 * that fix shapes (alpha, input size, channels, classes, head pool), block
 * range, tensor table (name and dims of each), optionally optimiser state,
 * then the data and a CRC32 of everything before it. Loading checks the
 * CRC, version, config, range and every tensor's shape, and refuses with a
 * message naming the first mismatch; the stage is unchanged on error. */

/* Serialises the stage into a malloc'd buffer the caller frees.
 * with_optim also saves the optimiser state (to resume training). */
int mn_stage_save_buf(const struct mn_stage *s, bool with_optim,
                      uint8_t **buf, size_t *len);
/* The CRC32 that names a serialised checkpoint on the wire and on disk:
 * the CRC of its content (all but the 4-byte trailer, so equal to the
 * trailer of an intact buffer). A CRC of the whole buffer would not do: a
 * buffer ending in its own CRC always sums to the same residue, so it
 * would tell two checkpoints apart by nothing. 0 if len < 4. */
uint32_t mn_checkpoint_crc(const uint8_t *buf, size_t len);
int mn_stage_load_buf(struct mn_stage *s, const uint8_t *buf, size_t len,
                      char *err, size_t errlen);
/* The same through a file (written to path.tmp, then renamed). */
int mn_stage_save(const struct mn_stage *s, const char *path,
                  bool with_optim, char *err, size_t errlen);
int mn_stage_load(struct mn_stage *s, const char *path, char *err,
                  size_t errlen);

/* Reads a checkpoint's header only: the config (shape fields; the others
 * get defaults) and block range it was saved with, so the caller can
 * create a matching stage and then load it. Checks the CRC too. */
int mn_checkpoint_info(const uint8_t *buf, size_t len, struct mn_config *c,
                       int *first, int *last, char *err, size_t errlen);

/* ---- merging stages ------------------------------------------------------
 * Fills 'dst' (a stage of blocks a..c) from 'parts', n stages of adjacent
 * ranges tiling a..c in order (a..b, b+1..c): every block's parameters
 * and running statistics from the part holding it, the head from the last
 * part (its head follows the same last block), and the optimiser state
 * slice of each parameter with them. The parts must be of the same model
 * (shape fields of the config), all with or all without optimiser state,
 * of one kind and at the same step count. Returns 0, or EINVAL (ENOMEM)
 * with a message naming the mismatch; 'dst' is to be discarded then. */
int mn_stage_merge(struct mn_stage *dst, const struct mn_stage *const *parts,
                   size_t n, char *err, size_t errlen);

/* The reverse: fills 'dst' (a stage of blocks a..b within src's range)
 * from 'src' (e.g. a merged stage): every block's parameters, running
 * statistics and optimiser state slice by name. The head: src's if dst
 * ends at src's last block (the same position), else 'head_src''s (a
 * stage ending at dst's last block, such as the part's own stage before
 * the merge; its optimiser slice too, zero if it has none), else dst's own
 * as created (fresh, zero optimiser state). The optimiser kind and step
 * count are src's (see merge.c for why). Refused with EINVAL and a
 * message: a range outside src's, another model, a head_src after
 * another block or with another optimiser kind; ENOMEM. 'dst' is to be
 * discarded on error. */
int mn_stage_split(struct mn_stage *dst, const struct mn_stage *src,
                   const struct mn_stage *head_src, char *err,
                   size_t errlen);

#endif /* ET_MODEL_H */
