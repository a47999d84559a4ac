/* 3x3 stride-2 stem convolution: im2col, then one sgemm over the batch.
 * The stem has 1 or 3 input channels, so its im2col (K = 9*Cin <= 27) is
 * small and turns the layer into a GEMM OpenBLAS runs at full width. */
#include <string.h>

#include "gemm.h"
#include "layers.h"

/* col (N*Ho*Wo, 9*Cin) <- in (N,H,W,Cin); zero where the window leaves the
 * image (padding 1). Column index = (ky*3+kx)*Cin + ci. */
static void
im2col_3x3s2(float *col, const float *in, size_t N, size_t H, size_t W,
             size_t Cin)
{
    size_t Ho = (H + 1) / 2, Wo = (W + 1) / 2, K = 9 * Cin;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        for (size_t oy = 0; oy < Ho; oy++) {
            for (size_t ox = 0; ox < Wo; ox++) {
                float *c = col + ((n * Ho + oy) * Wo + ox) * K;
                for (size_t ky = 0; ky < 3; ky++) {
                    long iy = (long) (oy * 2 + ky) - 1;
                    for (size_t kx = 0; kx < 3; kx++) {
                        long ix = (long) (ox * 2 + kx) - 1;
                        float *dst = c + (ky * 3 + kx) * Cin;
                        if (iy < 0 || iy >= (long) H || ix < 0
                            || ix >= (long) W) {
                            memset(dst, 0, Cin * sizeof *dst);
                        } else {
                            const float *src
                                = in + ((n * H + iy) * W + ix) * Cin;
                            for (size_t ci = 0; ci < Cin; ci++) {
                                dst[ci] = src[ci];
                            }
                        }
                    }
                }
            }
        }
    }
}

void
stemconv3x3s2_forward(float *out, float *col, const float *in, const float *w,
                      size_t N, size_t H, size_t W, size_t Cin, size_t Cout)
{
    size_t M = N * ((H + 1) / 2) * ((W + 1) / 2), K = 9 * Cin;
    im2col_3x3s2(col, in, N, H, W, Cin);
    /* out (M,Cout) = col (M,K) w^T (K,Cout) */
    gemm_rows(true, M, Cout, K, col, K, w, K, 0.0f, out, Cout);
}

void
stemconv3x3s2_backward(float *dw, const float *dout, const float *col,
                       size_t N, size_t H, size_t W, size_t Cin, size_t Cout)
{
    size_t M = N * ((H + 1) / 2) * ((W + 1) / 2), K = 9 * Cin;
    /* dw (Cout,K) = dout^T (Cout,M) col (M,K) */
    gemm_atb(Cout, K, M, dout, Cout, col, K, dw, K);
}
