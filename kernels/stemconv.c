/* 3x3 stride-2 stem convolution, computed directly.
 *
 * The stem has only 1 or 3 input channels, so as a GEMM (im2col) its
 * inner dimension would be K = 9*Cin <= 27: too thin for OpenBLAS's
 * kernels, and the im2col buffer costs 9x the input. Directly, each output
 * pixel gathers its K inputs and accumulates K broadcast-times-vector
 * products over chunks of 16 (8, 1) output channels held in registers; the
 * weights are transposed once per call to (K, Cout) for that. The weight
 * gradient accumulates K x Cout outer products per pixel in an L1-resident
 * buffer, per image in float, then in double per chunk of images
 * (parallel.h). Zero inputs (padding, blank canvas) are
 * skipped there. */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "parallel.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* pad (H+2, W+2, Cin) <- img (H, W, Cin) with a zero border. */
static void
pad_image(float *pad, const float *img, size_t H, size_t W, size_t Cin)
{
    size_t Wp = W + 2;
    memset(pad, 0, (H + 2) * Wp * Cin * sizeof *pad);
    for (size_t y = 0; y < H; y++) {
        memcpy(pad + ((y + 1) * Wp + 1) * Cin, img + y * W * Cin,
               W * Cin * sizeof *pad);
    }
}

/* xv (9*Cin) <- the 3x3 window of output pixel (oy, ox) in 'pad'. */
static inline void
gather(float *xv, const float *pad, size_t oy, size_t ox, size_t Wp,
       size_t Cin)
{
    for (size_t ky = 0; ky < 3; ky++) {
        const float *row = pad + ((oy * 2 + ky) * Wp + ox * 2) * Cin;
        for (size_t j = 0; j < 3 * Cin; j++) {
            xv[ky * 3 * Cin + j] = row[j];
        }
    }
}

/* o[c0 .. c0+VL) = sum_k xv[k] * wt[k][c0 ..]. */
ALWAYS_INLINE void
stem_chunk(float *o, const float *xv, const float *wt, size_t K, size_t Cout,
           size_t c0, const size_t VL)
{
    float acc[16] = {0};
    for (size_t k = 0; k < K; k++) {
        const float *wk = wt + k * Cout + c0;
        for (size_t v = 0; v < VL; v++) {
            acc[v] += xv[k] * wk[v];
        }
    }
    for (size_t v = 0; v < VL; v++) {
        o[c0 + v] = acc[v];
    }
}

void
stemconv3x3s2_forward(float *out, const float *in, const float *w, size_t N,
                      size_t H, size_t W, size_t Cin, size_t Cout)
{
    size_t Ho = (H + 1) / 2, Wo = (W + 1) / 2, K = 9 * Cin;
    float *wt = malloc(K * Cout * sizeof *wt);
    for (size_t c = 0; c < Cout; c++) {
        for (size_t k = 0; k < K; k++) {
            wt[k * Cout + c] = w[c * K + k];
        }
    }
    size_t Wp = W + 2;
#pragma omp parallel
    {
    float *pad = malloc((H + 2) * Wp * Cin * sizeof *pad);
#pragma omp for schedule(dynamic, 1)
    for (size_t n = 0; n < N; n++) {
        pad_image(pad, in + n * H * W * Cin, H, W, Cin);
        float xv[27];
        for (size_t oy = 0; oy < Ho; oy++) {
            for (size_t ox = 0; ox < Wo; ox++) {
                float *o = out + ((n * Ho + oy) * Wo + ox) * Cout;
                gather(xv, pad, oy, ox, Wp, Cin);
                size_t c0 = 0;
                for (; c0 + 16 <= Cout; c0 += 16) {
                    stem_chunk(o, xv, wt, K, Cout, c0, 16);
                }
                for (; c0 + 8 <= Cout; c0 += 8) {
                    stem_chunk(o, xv, wt, K, Cout, c0, 8);
                }
                for (; c0 < Cout; c0++) {
                    stem_chunk(o, xv, wt, K, Cout, c0, 1);
                }
            }
        }
    }
    free(pad);
    }
    free(wt);
}

void
stemconv3x3s2_backward(float *dw, const float *dout, const float *in,
                       size_t N, size_t H, size_t W, size_t Cin, size_t Cout)
{
    size_t Ho = (H + 1) / 2, Wo = (W + 1) / 2, K = 9 * Cin;
    size_t chunks = par_chunks(N, 1);
    double *tsum = calloc(chunks * K * Cout, sizeof *tsum);
    double *dsum = malloc(K * Cout * sizeof *dsum);
#pragma omp parallel
    {
        float *acc = malloc(K * Cout * sizeof *acc);    /* (K, Cout) */
        float *pad = malloc((H + 2) * (W + 2) * Cin * sizeof *pad);
#pragma omp for schedule(dynamic, 1)
        for (size_t ci = 0; ci < chunks; ci++) {
        double *tacc = tsum + ci * K * Cout;
        size_t n0, n1;
        par_range(N, chunks, ci, &n0, &n1);
        for (size_t n = n0; n < n1; n++) {
            pad_image(pad, in + n * H * W * Cin, H, W, Cin);
            float xv[27];
            memset(acc, 0, K * Cout * sizeof *acc);
            for (size_t oy = 0; oy < Ho; oy++) {
                for (size_t ox = 0; ox < Wo; ox++) {
                    const float *g = dout + ((n * Ho + oy) * Wo + ox) * Cout;
                    gather(xv, pad, oy, ox, W + 2, Cin);
                    for (size_t k = 0; k < K; k++) {
                        float xk = xv[k];
                        if (xk == 0.0f) {
                            continue;
                        }
                        float *a = acc + k * Cout;
                        for (size_t c = 0; c < Cout; c++) {
                            a[c] += xk * g[c];
                        }
                    }
                }
            }
            for (size_t i = 0; i < K * Cout; i++) {
                tacc[i] += acc[i];
            }
        }
        }
        free(acc);
        free(pad);
    }
    par_reduce(dsum, tsum, chunks, K * Cout);
    for (size_t c = 0; c < Cout; c++) {
        for (size_t k = 0; k < K; k++) {
            dw[c * K + k] = (float) dsum[k * Cout + c];
        }
    }
    free(dsum);
    free(tsum);
}
