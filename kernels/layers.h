/* The layers of MobileNet v1 training, one file per layer kind.
 *
 * Every tensor is float32 NHWC, contiguous. A layer is a _forward/_backward
 * pair (llm.c style): outputs first, then inputs, then parameters, then
 * shapes. Shapes are in the comments. Backward functions overwrite (never
 * accumulate into) their gradient outputs. Functions parallelise with
 * OpenMP over the batch or rows; GEMMs go through gemm.c, which splits
 * them across the same OpenMP threads (mn_set_threads() in model.h).
 *
 *   file            layer                         fused with
 *   stemconv.c      3x3 stride-2 conv, Cin 1|3    direct, register chunks
 *   dwconv.c        3x3 depthwise, stride 1|2     previous BN+ReLU6 on input;
 *                                                 dW, dX per image in cache
 *   pwconv.c        1x1 pointwise                 one GEMM per direction
 *   batchnorm.c     batch norm + ReLU6            BN stats, affine, clip
 *   pool.c          adaptive average pooling      (global = side 1)
 *   dense.c         fully connected + bias        sgemm
 *   softmax_xent.c  softmax cross-entropy         loss, accuracy, dlogits
 */
#ifndef ET_LAYERS_H
#define ET_LAYERS_H 1

#include <stddef.h>
#include <stdint.h>

/* ---- stemconv.c ---------------------------------------------------------
 * 3x3 conv, stride 2, padding 1, no bias (batch norm follows).
 * in (N,H,W,Cin), w (Cout,3,3,Cin), out (N,Ho,Wo,Cout),
 * Ho = (H+1)/2, Wo = (W+1)/2. Cin is 1 or 3 (at most 3).
 * There is no input gradient: the stem always reads the data. */
void stemconv3x3s2_forward(float *out, const float *in, const float *w,
                           size_t N, size_t H, size_t W, size_t Cin,
                           size_t Cout);
/* dw (Cout,3,3,Cin) <- dout (N,Ho,Wo,Cout), in (N,H,W,Cin). */
void stemconv3x3s2_backward(float *dw, const float *dout, const float *in,
                            size_t N, size_t H, size_t W, size_t Cin,
                            size_t Cout);

/* ---- dwconv.c -----------------------------------------------------------
 * 3x3 depthwise conv, padding 1, stride 1 or 2, no bias.
 * in (N,H,W,C), w (3,3,C), out (N,Ho,Wo,C), Ho = (H-1)/stride+1. */
void dwconv3x3_forward(float *out, const float *in, const float *w,
                       size_t N, size_t H, size_t W, size_t C, size_t stride);
/* din (N,H,W,C) (NULL: not wanted), dw (3,3,C) <- dout (N,Ho,Wo,C).
 * Both gradients come out of one pass over dout and in. */
void dwconv3x3_backward(float *din, float *dw, const float *dout,
                        const float *in, const float *w, size_t N, size_t H,
                        size_t W, size_t C, size_t stride);

/* The same with the previous layer's batch norm + ReLU6 applied to 'in'
 * on the fly (in is that layer's pre-BN output y; scale, shift (C) from
 * bnrelu6_fold()), so its activations need not be stored: din is then
 * the gradient with respect to the BN+ReLU6 output. */
void dwconv3x3_bnrelu6_forward(float *out, const float *in,
                               const float *scale, const float *shift,
                               const float *w, size_t N, size_t H, size_t W,
                               size_t C, size_t stride);
void dwconv3x3_bnrelu6_backward(float *din, float *dw, const float *dout,
                                const float *in, const float *scale,
                                const float *shift, const float *w, size_t N,
                                size_t H, size_t W, size_t C, size_t stride);

/* ---- pwconv.c -----------------------------------------------------------
 * 1x1 conv, no bias: in NHWC it is one GEMM with M = N*H*W rows.
 * in (M,Cin), w (Cout,Cin), out (M,Cout). */
void pwconv_forward(float *out, const float *in, const float *w, size_t M,
                    size_t Cin, size_t Cout);
/* din (M,Cin) (NULL: not wanted), dw (Cout,Cin) <- dout (M,Cout). */
void pwconv_backward(float *din, float *dw, const float *dout,
                     const float *in, const float *w, size_t M, size_t Cin,
                     size_t Cout);

/* ---- batchnorm.c --------------------------------------------------------
 * Batch norm followed by ReLU6, fused: a = min(max(gamma*xhat+beta,0),6),
 * xhat = (y-mean)*invstd. y, a (M,C) with M = N*H*W; per-channel (C)
 * gamma, beta, mean, invstd, running mean and variance.
 * Training: batch statistics (biased variance for normalising, unbiased
 * for the running variance, as PyTorch does), running stats updated with
 * 'momentum' (PyTorch convention: run = (1-m)*run + m*batch). */
void bnrelu6_forward_train(float *a, float *mean, float *invstd,
                           float *run_mean, float *run_var, const float *y,
                           const float *gamma, const float *beta, size_t M,
                           size_t C, float momentum, float eps);
/* With a == NULL only the statistics (and running statistics) are
 * computed: a consumer that applies BN+ReLU6 itself uses bnrelu6_fold(). */
/* Inference: running statistics. */
void bnrelu6_forward_eval(float *a, const float *y, const float *gamma,
                          const float *beta, const float *run_mean,
                          const float *run_var, size_t M, size_t C, float eps);
/* Per-channel scale = gamma*invstd and shift = beta - mean*scale, so that
 * the layer's output is bnrelu6_apply(y, scale, shift). */
void bnrelu6_fold(float *scale, float *shift, const float *gamma,
                  const float *beta, const float *mean, const float *invstd,
                  size_t C);
/* invstd (C) = 1/sqrt(run_var + eps): the eval-mode statistics to fold. */
void bnrelu6_eval_invstd(float *invstd, const float *run_var, size_t C,
                         float eps);

static inline float
bnrelu6_apply(float y, float scale, float shift)
{
    float z = y * scale + shift;
    z = z < 0.0f ? 0.0f : z;
    return z > 6.0f ? 6.0f : z;
}

/* dy (M,C), dgamma, dbeta (C) <- da (M,C); dy may alias da. The ReLU6
 * mask is recomputed from y (0 < z < 6, PyTorch's hardtanh rule). */
void bnrelu6_backward(float *dy, float *dgamma, float *dbeta, const float *da,
                      const float *y, const float *mean, const float *invstd,
                      const float *gamma, const float *beta, size_t M,
                      size_t C);

/* ---- pool.c -------------------------------------------------------------
 * Adaptive average pooling to P x P with PyTorch's bins (row i covers
 * [floor(i*H/P), ceil((i+1)*H/P))). P = 1 is global average pooling.
 * in (N,H,W,C), out (N,P,P,C). */
void avgpool_adaptive_forward(float *out, const float *in, size_t N, size_t H,
                              size_t W, size_t C, size_t P);
/* din (N,H,W,C) <- dout (N,P,P,C). */
void avgpool_adaptive_backward(float *din, const float *dout, size_t N,
                               size_t H, size_t W, size_t C, size_t P);

/* ---- dense.c ------------------------------------------------------------
 * in (N,F), w (K,F), b (K), out (N,K) = in w^T + b. */
void dense_forward(float *out, const float *in, const float *w,
                   const float *b, size_t N, size_t F, size_t K);
/* din (N,F) (NULL: not wanted), dw (K,F), db (K) <- dout (N,K). */
void dense_backward(float *din, float *dw, float *db, const float *dout,
                    const float *in, const float *w, size_t N, size_t F,
                    size_t K);

/* ---- softmax_xent.c -----------------------------------------------------
 * logits (N,K), labels (N) each < K -> probs (N,K); returns the mean
 * cross-entropy over the batch. '*correct' gets the number of rows whose
 * arg-max is the label, '*correct_top3' those with the label in the top 3
 * (either may be NULL). */
float softmax_xent_forward(float *probs, const float *logits,
                           const uint32_t *labels, size_t N, size_t K,
                           size_t *correct, size_t *correct_top3);
/* dlogits (N,K) = (probs - onehot(labels)) / N: the gradient of the mean. */
void softmax_xent_backward(float *dlogits, const float *probs,
                           const uint32_t *labels, size_t N, size_t K);

#endif /* ET_LAYERS_H */
