/* Softmax cross-entropy over the head's logits, mean over the batch. */
#include <math.h>

#include "layers.h"

float
softmax_xent_forward(float *probs, const float *logits,
                     const uint32_t *labels, size_t N, size_t K,
                     size_t *correct, size_t *correct_top3)
{
    double loss = 0.0;
    size_t top1 = 0, top3 = 0;
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * K;
        float *p = probs + n * K;
        float zmax = z[0];
        for (size_t k = 1; k < K; k++) {
            zmax = fmaxf(zmax, z[k]);
        }
        double s = 0.0;
        for (size_t k = 0; k < K; k++) {
            p[k] = expf(z[k] - zmax);
            s += p[k];
        }
        float inv = (float) (1.0 / s);
        for (size_t k = 0; k < K; k++) {
            p[k] *= inv;
        }
        uint32_t y = labels[n];
        loss += -((double) (z[y] - zmax) - log(s));
        /* Rank of the label: how many classes score strictly higher (ties
         * go to the label's favour only for lower class indices). */
        size_t above = 0;
        for (size_t k = 0; k < K; k++) {
            above += z[k] > z[y] || (z[k] == z[y] && k < y);
        }
        top1 += above < 1;
        top3 += above < 3;
    }
    if (correct) {
        *correct = top1;
    }
    if (correct_top3) {
        *correct_top3 = top3;
    }
    return (float) (loss / (double) N);
}

void
softmax_xent_backward(float *dlogits, const float *probs,
                      const uint32_t *labels, size_t N, size_t K)
{
    float inv = 1.0f / (float) N;
    for (size_t n = 0; n < N; n++) {
        for (size_t k = 0; k < K; k++) {
            dlogits[n * K + k] = probs[n * K + k] * inv;
        }
        dlogits[n * K + labels[n]] -= inv;
    }
}
