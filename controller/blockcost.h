/* blockcost: what each MobileNet v1 block costs, for placement.
 *
 * Computed in the controller from the model configuration alone (the same
 * architecture the kernels implement, kernels/model.h; docs/placement.md
 * gives the formulas). Blocks are numbered 1..13; block 1 is the 3x3
 * stride-2 stem plus the first depthwise-separable layer:
 *
 *   block   1    2    3    4    5    6    7-11  12    13
 *   stride  2,1  2    1    2    1    2    1     2     1
 *   out c   64   128  128  256  256  512  512   1024  1024   (x alpha)
 *
 * Per image, with a block's input (H, W, Ci), output (Ho, Wo, Co) and the
 * multiply-add counted as 2 FLOPs:
 *   depthwise 3x3:   2 * 9 * Ho*Wo*Ci
 *   pointwise 1x1:   2 * Ho*Wo*Ci*Co
 *   BN + ReLU6:      4 per element of each of the two outputs
 *   stem (block 1):  2 * 9 * Ho*Wo*Cin*C0 + 4 * Ho*Wo*C0
 *   training step ~= 3x forward (forward, input gradient, weight gradient)
 * A stage ending at block j adds its head: average pooling to P x P
 * (P = min(head_pool, Ho)) and a dense layer P*P*Co -> classes.
 *
 * FLOPs alone misjudge the early, high-resolution blocks: they move many
 * activation bytes per FLOP and run memory-bound (block 1 at a third of
 * the FLOP rate of block 7 on one core). What placement divides by an
 * agent's GFLOP/s is therefore a training *cost* in FLOP-equivalents:
 *   train_cost = train_flops + BLOCKCOST_BYTE_FLOPS * saved_bytes
 * saved_bytes (the activations a step writes forward and reads back in
 * backward) stands for the block's memory traffic; the weight was fitted
 * to measured per-block times (tests/bench/blockcost_fit.sh,
 * docs/placement.md). */
#ifndef ET_BLOCKCOST_H
#define ET_BLOCKCOST_H 1

#include <stddef.h>
#include <stdint.h>

#define BLOCKCOST_BLOCKS 13

/* FLOP-equivalents per byte of saved activations (least squares over the
 * 13 blocks' measured training times, one core; docs/placement.md). */
#define BLOCKCOST_BYTE_FLOPS 18.0

struct blockcost_config {
    double alpha;             /* width multiplier */
    uint32_t input_size;      /* H = W of the input */
    uint32_t in_channels;
    uint32_t classes;
    uint32_t head_pool;
    uint32_t batch;           /* images per training step */
};

/* Costs of one block, per image unless said otherwise. */
struct blockcost {
    uint32_t out_h, out_w, out_c;
    double fwd_flops;         /* forward */
    double train_flops;       /* forward + backward, ~3x forward */
    double train_cost;        /* train_flops + memory term, FLOP-equiv. */
    double out_bytes;         /* f32 output activations (to the next stage) */
    double params;            /* conv weights + BN (gamma, beta, mean, var) */
    double saved_bytes;       /* activations kept for backward */
    /* The head a stage ending here adds. */
    double head_train_flops;
    double head_params;
};

/* Fills 'blocks[0..12]' for 'cfg'. Returns 0 or EINVAL (bad config). */
int blockcost_mobilenet_v1(const struct blockcost_config *cfg,
                           struct blockcost blocks[BLOCKCOST_BLOCKS]);

/* Training memory (bytes) of a stage over blocks [first, last] (1-based)
 * with 'batch' images: parameters with gradients and Adam state (16 bytes
 * per parameter), saved activations, and two input buffers. */
double blockcost_stage_memory(const struct blockcost *blocks, uint32_t first,
                              uint32_t last, uint32_t batch,
                              double input_bytes_per_image);

#endif /* ET_BLOCKCOST_H */
