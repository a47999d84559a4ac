/* Batch norm + ReLU6, fused: the affine transform and the clip happen in
 * the same pass, and the backward recomputes the clip mask from y instead
 * of storing it. Channel sums are per thread in double (M = N*H*W reaches
 * 262144 at batch 256) and reduced in thread order, so results do not
 * depend on scheduling. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include <string.h>

#include "layers.h"

/* Rows summed in float before the sums move to double: short enough for
 * float's precision, long enough to keep the inner loop vectorised. */
#define ROWS_PER_FLUSH 64

/* min(max(z, 0), 6) without libm's NaN handling, so it vectorises. */
static inline float
clip6(float z)
{
    z = z < 0.0f ? 0.0f : z;
    return z > 6.0f ? 6.0f : z;
}

/* Adds the per-thread rows [t*C, (t+1)*C) of 'part' into 'out' (C). */
static void
reduce_threads(double *out, const double *part, int nt, size_t C)
{
    for (size_t c = 0; c < C; c++) {
        double s = 0.0;
        for (int t = 0; t < nt; t++) {
            s += part[(size_t) t * C + c];
        }
        out[c] = s;
    }
}

void
bnrelu6_forward_train(float *a, float *mean, float *invstd, float *run_mean,
                      float *run_var, const float *y, const float *gamma,
                      const float *beta, size_t M, size_t C, float momentum,
                      float eps)
{
    int nt = omp_get_max_threads();
    double *part = calloc((size_t) nt * 2 * C, sizeof *part);
    double *sum = calloc(2 * C, sizeof *sum);
#pragma omp parallel num_threads(nt)
    {
        /* The team may be smaller than asked (nested, no OpenMP build):
         * split over the threads that really run. */
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        double *s = part + (size_t) t * 2 * C, *q = s + C;
        float *fs = malloc(2 * C * sizeof *fs), *fq = fs + C;
        size_t m0 = M * t / nth, m1 = M * (t + 1) / nth;
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
    reduce_threads(sum, part, nt, 2 * C);
    float *scale = malloc(2 * C * sizeof *scale), *shift = scale + C;
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
        scale[c] = gamma[c] * invstd[c];
        shift[c] = beta[c] - mean[c] * scale[c];
    }
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++) {
        const float *row = y + m * C;
        float *out = a + m * C;
        for (size_t c = 0; c < C; c++) {
            float z = row[c] * scale[c] + shift[c];
            out[c] = clip6(z);
        }
    }
    free(scale);
    free(sum);
    free(part);
}

void
bnrelu6_forward_eval(float *a, const float *y, const float *gamma,
                     const float *beta, const float *run_mean,
                     const float *run_var, size_t M, size_t C, float eps)
{
    float *scale = malloc(2 * C * sizeof *scale), *shift = scale + C;
    for (size_t c = 0; c < C; c++) {
        scale[c] = gamma[c] / sqrtf(run_var[c] + eps);
        shift[c] = beta[c] - run_mean[c] * scale[c];
    }
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++) {
        const float *row = y + m * C;
        float *out = a + m * C;
        for (size_t c = 0; c < C; c++) {
            float z = row[c] * scale[c] + shift[c];
            out[c] = clip6(z);
        }
    }
    free(scale);
}

void
bnrelu6_backward(float *dy, float *dgamma, float *dbeta, const float *da,
                 const float *y, const float *mean, const float *invstd,
                 const float *gamma, const float *beta, size_t M, size_t C)
{
    int nt = omp_get_max_threads();
    double *part = calloc((size_t) nt * 2 * C, sizeof *part);
    double *sum = calloc(2 * C, sizeof *sum);
    /* Same scale and shift as the forward, so the mask matches it. */
    float *scale = malloc(2 * C * sizeof *scale), *shift = scale + C;
    for (size_t c = 0; c < C; c++) {
        scale[c] = gamma[c] * invstd[c];
        shift[c] = beta[c] - mean[c] * scale[c];
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        double *sb = part + (size_t) t * 2 * C, *sg = sb + C;
        float *fb = malloc(2 * C * sizeof *fb), *fg = fb + C;
        size_t m0 = M * t / nth, m1 = M * (t + 1) / nth;
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
    reduce_threads(sum, part, nt, 2 * C);
    float *k = malloc(3 * C * sizeof *k), *kb = k + C, *kg = kb + C;
    for (size_t c = 0; c < C; c++) {
        dbeta[c] = (float) sum[c];
        sum[C + c] *= invstd[c];   /* sum of gm * xhat */
        dgamma[c] = (float) sum[C + c];
        k[c] = gamma[c] * invstd[c];
        kb[c] = (float) (sum[c] / (double) M);
        kg[c] = (float) (sum[C + c] / (double) M);
    }
#pragma omp parallel for schedule(static)
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
