/* Fully connected layer of the heads: logits = features w^T + b. */
#include <cblas.h>
#include <string.h>

#include "layers.h"

void
dense_forward(float *out, const float *in, const float *w, const float *b,
              size_t N, size_t F, size_t K)
{
    for (size_t n = 0; n < N; n++) {
        memcpy(out + n * K, b, K * sizeof *b);
    }
    /* out (N,K) += in (N,F) w^T (F,K) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int) N, (int) K,
                (int) F, 1.0f, in, (int) F, w, (int) F, 1.0f, out, (int) K);
}

void
dense_backward(float *din, float *dw, float *db, const float *dout,
               const float *in, const float *w, size_t N, size_t F, size_t K)
{
    /* dw (K,F) = dout^T (K,N) in (N,F) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int) K, (int) F,
                (int) N, 1.0f, dout, (int) K, in, (int) F, 0.0f, dw, (int) F);
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) N,
                    (int) F, (int) K, 1.0f, dout, (int) K, w, (int) F, 0.0f,
                    din, (int) F);
    }
}
