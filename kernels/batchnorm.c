/* Batch norm + ReLU6, fused: the affine transform and the clip happen in
 * the same pass, and the backward recomputes the clip mask from y instead
 * of storing it. Channel sums are per thread in double (M = N*H*W reaches
 * 262144 at batch 256) and reduced in thread order, so results do not
 * depend on scheduling. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "layers.h"

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
        double *s = part + (size_t) omp_get_thread_num() * 2 * C;
        double *q = s + C;
#pragma omp for schedule(static)
        for (size_t m = 0; m < M; m++) {
            const float *row = y + m * C;
            for (size_t c = 0; c < C; c++) {
                double v = row[c];
                s[c] += v;
                q[c] += v * v;
            }
        }
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
            out[c] = fminf(fmaxf(z, 0.0f), 6.0f);
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
            out[c] = fminf(fmaxf(z, 0.0f), 6.0f);
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
        double *sb = part + (size_t) omp_get_thread_num() * 2 * C;
        double *sg = sb + C;
#pragma omp for schedule(static)
        for (size_t m = 0; m < M; m++) {
            const float *g = da + m * C, *row = y + m * C;
            for (size_t c = 0; c < C; c++) {
                float z = row[c] * scale[c] + shift[c];
                float gm = (z > 0.0f && z < 6.0f) ? g[c] : 0.0f;
                float xhat = (row[c] - mean[c]) * invstd[c];
                sb[c] += gm;
                sg[c] += gm * xhat;
            }
        }
    }
    reduce_threads(sum, part, nt, 2 * C);
    float *k = malloc(3 * C * sizeof *k), *kb = k + C, *kg = kb + C;
    for (size_t c = 0; c < C; c++) {
        dbeta[c] = (float) sum[c];
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
