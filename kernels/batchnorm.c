/* Batch norm + ReLU6, fused: the affine transform and the clip happen in
 * the same pass (or inside the next depthwise conv's input copy, see
 * bnrelu6_fold()), and the backward recomputes the clip mask from y
 * instead of storing it. Channel sums run over M = N*H*W (262144 at batch
 * 256): float over 64 rows, then double per chunk (parallel.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "parallel.h"

/* Rows summed in float before the sums move to double: short enough for
 * float's precision, long enough to keep the inner loop vectorised. */
#define ROWS_PER_FLUSH 64

void
bnrelu6_fold(float *scale, float *shift, const float *gamma,
             const float *beta, const float *mean, const float *invstd,
             size_t C)
{
    for (size_t c = 0; c < C; c++) {
        scale[c] = gamma[c] * invstd[c];
        shift[c] = beta[c] - mean[c] * scale[c];
    }
}

void
bnrelu6_eval_invstd(float *invstd, const float *run_var, size_t C, float eps)
{
    for (size_t c = 0; c < C; c++) {
        invstd[c] = 1.0f / sqrtf(run_var[c] + eps);
    }
}

/* a (M,C) = bnrelu6_apply(y, scale, shift). */
static void
apply(float *a, const float *y, const float *scale, const float *shift,
      size_t M, size_t C)
{
#pragma omp parallel for schedule(dynamic, 256)
    for (size_t m = 0; m < M; m++) {
        const float *row = y + m * C;
        float *out = a + m * C;
        for (size_t c = 0; c < C; c++) {
            out[c] = bnrelu6_apply(row[c], scale[c], shift[c]);
        }
    }
}

void
bnrelu6_forward_train(float *a, float *mean, float *invstd, float *run_mean,
                      float *run_var, const float *y, const float *gamma,
                      const float *beta, size_t M, size_t C, float momentum,
                      float eps)
{
    size_t chunks = par_chunks(M, 1024);
    double *part = calloc(chunks * 2 * C, sizeof *part);
    double *sum = calloc(2 * C, sizeof *sum);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < chunks; i++) {
        double *s = part + i * 2 * C, *q = s + C;
        float *fs = malloc(2 * C * sizeof *fs), *fq = fs + C;
        size_t m0, m1;
        par_range(M, chunks, i, &m0, &m1);
        for (size_t b = m0; b < m1; b += ROWS_PER_FLUSH) {
            size_t e = b + ROWS_PER_FLUSH < m1 ? b + ROWS_PER_FLUSH : m1;
            memset(fs, 0, 2 * C * sizeof *fs);
            for (size_t m = b; m < e; m++) {
                const float *row = y + m * C;
                for (size_t c = 0; c < C; c++) {
                    fs[c] += row[c];
                    fq[c] += row[c] * row[c];
                }
            }
            for (size_t c = 0; c < C; c++) {
                s[c] += fs[c];
                q[c] += fq[c];
            }
        }
        free(fs);
    }
    par_reduce(sum, part, chunks, 2 * C);
    for (size_t c = 0; c < C; c++) {
        double mu = sum[c] / (double) M;
        double var = sum[C + c] / (double) M - mu * mu;
        if (var < 0.0) {
            var = 0.0;
        }
        mean[c] = (float) mu;
        invstd[c] = (float) (1.0 / sqrt(var + eps));
        double unbiased = M > 1 ? var * (double) M / (double) (M - 1) : var;
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * (float) mu;
        run_var[c] = (1.0f - momentum) * run_var[c]
                     + momentum * (float) unbiased;
    }
    free(sum);
    free(part);
    if (!a) {
        return;
    }
    float *scale = malloc(2 * C * sizeof *scale), *shift = scale + C;
    bnrelu6_fold(scale, shift, gamma, beta, mean, invstd, C);
    apply(a, y, scale, shift, M, C);
    free(scale);
}

void
bnrelu6_forward_eval(float *a, const float *y, const float *gamma,
                     const float *beta, const float *run_mean,
                     const float *run_var, size_t M, size_t C, float eps)
{
    float *scale = malloc(3 * C * sizeof *scale), *shift = scale + C;
    float *invstd = shift + C;
    bnrelu6_eval_invstd(invstd, run_var, C, eps);
    bnrelu6_fold(scale, shift, gamma, beta, run_mean, invstd, C);
    apply(a, y, scale, shift, M, C);
    free(scale);
}

void
bnrelu6_backward(float *dy, float *dgamma, float *dbeta, const float *da,
                 const float *y, const float *mean, const float *invstd,
                 const float *gamma, const float *beta, size_t M, size_t C)
{
    size_t chunks = par_chunks(M, 1024);
    double *part = calloc(chunks * 2 * C, sizeof *part);
    double *sum = calloc(2 * C, sizeof *sum);
    /* Same scale and shift as the forward, so the mask matches it. */
    float *scale = malloc(2 * C * sizeof *scale), *shift = scale + C;
    bnrelu6_fold(scale, shift, gamma, beta, mean, invstd, C);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < chunks; i++) {
        double *sb = part + i * 2 * C, *sg = sb + C;
        float *fb = malloc(2 * C * sizeof *fb), *fg = fb + C;
        size_t m0, m1;
        par_range(M, chunks, i, &m0, &m1);
        for (size_t b = m0; b < m1; b += ROWS_PER_FLUSH) {
            size_t e = b + ROWS_PER_FLUSH < m1 ? b + ROWS_PER_FLUSH : m1;
            memset(fb, 0, 2 * C * sizeof *fb);
            for (size_t m = b; m < e; m++) {
                const float *g = da + m * C, *row = y + m * C;
                for (size_t c = 0; c < C; c++) {
                    float z = row[c] * scale[c] + shift[c];
                    float gm = (z > 0.0f && z < 6.0f) ? g[c] : 0.0f;
                    fb[c] += gm;
                    fg[c] += gm * (row[c] - mean[c]);
                }
            }
            for (size_t c = 0; c < C; c++) {
                sb[c] += fb[c];
                sg[c] += fg[c];
            }
        }
        free(fb);
    }
    par_reduce(sum, part, chunks, 2 * C);
    float *k = malloc(3 * C * sizeof *k), *kb = k + C, *kg = kb + C;
    for (size_t c = 0; c < C; c++) {
        dbeta[c] = (float) sum[c];
        sum[C + c] *= invstd[c];   /* sum of gm * xhat */
        dgamma[c] = (float) sum[C + c];
        k[c] = gamma[c] * invstd[c];
        kb[c] = (float) (sum[c] / (double) M);
        kg[c] = (float) (sum[C + c] / (double) M);
    }
#pragma omp parallel for schedule(dynamic, 256)
    for (size_t m = 0; m < M; m++) {
        const float *g = da + m * C, *row = y + m * C;
        float *d = dy + m * C;
        for (size_t c = 0; c < C; c++) {
            float z = row[c] * scale[c] + shift[c];
            float gm = (z > 0.0f && z < 6.0f) ? g[c] : 0.0f;
            float xhat = (row[c] - mean[c]) * invstd[c];
            d[c] = k[c] * (gm - kb[c] - xhat * kg[c]);
        }
    }
    free(k);
    free(scale);
    free(sum);
    free(part);
}
