/* Fully connected layer of the heads: logits = features w^T + b. */
#include <string.h>

#include "gemm.h"
#include "layers.h"

void
dense_forward(float *out, const float *in, const float *w, const float *b,
              size_t N, size_t F, size_t K)
{
    for (size_t n = 0; n < N; n++) {
        memcpy(out + n * K, b, K * sizeof *b);
    }
    /* out (N,K) += in (N,F) w^T (F,K) */
    gemm_rows(true, N, K, F, in, F, w, F, 1.0f, out, K);
}

void
dense_backward(float *din, float *dw, float *db, const float *dout,
               const float *in, const float *w, size_t N, size_t F, size_t K)
{
    /* dw (K,F) = dout^T (K,N) in (N,F) */
    gemm_atb(K, F, N, dout, K, in, F, dw, F);
    for (size_t k = 0; k < K; k++) {
        db[k] = 0.0f;
    }
    for (size_t n = 0; n < N; n++) {
        for (size_t k = 0; k < K; k++) {
            db[k] += dout[n * K + k];
        }
    }
    if (din) {
        /* din (N,F) = dout (N,K) w (K,F) */
        gemm_rows(false, N, F, K, dout, K, w, F, 0.0f, din, F);
    }
}
