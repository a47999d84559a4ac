/* 3x3 depthwise convolution, padding 1, stride 1 or 2.
 *
 * NHWC puts a pixel's channels side by side, so the inner loop runs over C
 * with unit stride and the compiler vectorises it. Threads split the batch;
 * the backward makes the input and the weight gradient in one pass (each
 * thread owns whole images of din, and sums its own dw, reduced at the
 * end), so dout and in are read once. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

void
dwconv3x3_forward(float *out, const float *in, const float *w, size_t N,
                  size_t H, size_t W, size_t C, size_t stride)
{
    size_t Ho = (H - 1) / stride + 1, Wo = (W - 1) / stride + 1;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *img = in + n * H * W * C;
        for (size_t oy = 0; oy < Ho; oy++) {
            for (size_t ox = 0; ox < Wo; ox++) {
                float *o = out + ((n * Ho + oy) * Wo + ox) * C;
                for (size_t c = 0; c < C; c++) {
                    o[c] = 0.0f;
                }
                for (size_t ky = 0; ky < 3; ky++) {
                    long iy = (long) (oy * stride + ky) - 1;
                    if (iy < 0 || iy >= (long) H) {
                        continue;
                    }
                    for (size_t kx = 0; kx < 3; kx++) {
                        long ix = (long) (ox * stride + kx) - 1;
                        if (ix < 0 || ix >= (long) W) {
                            continue;
                        }
                        const float *x = img + ((size_t) iy * W + ix) * C;
                        const float *k = w + (ky * 3 + kx) * C;
                        for (size_t c = 0; c < C; c++) {
                            o[c] += x[c] * k[c];
                        }
                    }
                }
            }
        }
    }
}

void
dwconv3x3_backward(float *din, float *dw, const float *dout, const float *in,
                   const float *w, size_t N, size_t H, size_t W, size_t C,
                   size_t stride)
{
    size_t Ho = (H - 1) / stride + 1, Wo = (W - 1) / stride + 1;
    /* dw sums run over N*Ho*Wo terms: per image in float, per thread in
     * double, then the threads' sums in thread order (deterministic). */
    int nt = omp_get_max_threads();
    double *tsum = calloc((size_t) nt * 9 * C, sizeof *tsum);
#pragma omp parallel num_threads(nt)
    {
        float *acc = malloc(9 * C * sizeof *acc);
        double *tacc = tsum + (size_t) omp_get_thread_num() * 9 * C;
#pragma omp for schedule(static)
        for (size_t n = 0; n < N; n++) {
            const float *img = in + n * H * W * C;
            float *dimg = din ? din + n * H * W * C : NULL;
            if (dimg) {
                memset(dimg, 0, H * W * C * sizeof *dimg);
            }
            memset(acc, 0, 9 * C * sizeof *acc);
            for (size_t oy = 0; oy < Ho; oy++) {
                for (size_t ox = 0; ox < Wo; ox++) {
                    const float *g = dout + ((n * Ho + oy) * Wo + ox) * C;
                    for (size_t ky = 0; ky < 3; ky++) {
                        long iy = (long) (oy * stride + ky) - 1;
                        if (iy < 0 || iy >= (long) H) {
                            continue;
                        }
                        for (size_t kx = 0; kx < 3; kx++) {
                            long ix = (long) (ox * stride + kx) - 1;
                            if (ix < 0 || ix >= (long) W) {
                                continue;
                            }
                            size_t off = ((size_t) iy * W + ix) * C;
                            const float *x = img + off;
                            float *a = acc + (ky * 3 + kx) * C;
                            for (size_t c = 0; c < C; c++) {
                                a[c] += x[c] * g[c];
                            }
                            if (dimg) {
                                const float *k = w + (ky * 3 + kx) * C;
                                float *dx = dimg + off;
                                for (size_t c = 0; c < C; c++) {
                                    dx[c] += k[c] * g[c];
                                }
                            }
                        }
                    }
                }
            }
            for (size_t i = 0; i < 9 * C; i++) {
                tacc[i] += acc[i];
            }
        }
        free(acc);
    }
    for (size_t i = 0; i < 9 * C; i++) {
        double s = 0.0;
        for (int t = 0; t < nt; t++) {
            s += tsum[(size_t) t * 9 * C + i];
        }
        dw[i] = (float) s;
    }
    free(tsum);
}
