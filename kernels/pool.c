/* Adaptive average pooling (the heads' pooling), PyTorch's bin rule. */
#include <string.h>

#include "layers.h"

/* Bin i of P over a side of L: [*lo, *hi). */
static void
bin(size_t i, size_t P, size_t L, size_t *lo, size_t *hi)
{
    *lo = i * L / P;
    *hi = ((i + 1) * L + P - 1) / P;
}

void
avgpool_adaptive_forward(float *out, const float *in, size_t N, size_t H,
                         size_t W, size_t C, size_t P)
{
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t n = 0; n < N; n++) {
        for (size_t py = 0; py < P; py++) {
            size_t y0, y1;
            bin(py, P, H, &y0, &y1);
            for (size_t px = 0; px < P; px++) {
                size_t x0, x1;
                bin(px, P, W, &x0, &x1);
                float *o = out + ((n * P + py) * P + px) * C;
                memset(o, 0, C * sizeof *o);
                for (size_t y = y0; y < y1; y++) {
                    for (size_t x = x0; x < x1; x++) {
                        const float *v = in + ((n * H + y) * W + x) * C;
                        for (size_t c = 0; c < C; c++) {
                            o[c] += v[c];
                        }
                    }
                }
                float inv = 1.0f / (float) ((y1 - y0) * (x1 - x0));
                for (size_t c = 0; c < C; c++) {
                    o[c] *= inv;
                }
            }
        }
    }
}

void
avgpool_adaptive_backward(float *din, const float *dout, size_t N, size_t H,
                          size_t W, size_t C, size_t P)
{
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t n = 0; n < N; n++) {
        memset(din + n * H * W * C, 0, H * W * C * sizeof *din);
        for (size_t py = 0; py < P; py++) {
            size_t y0, y1;
            bin(py, P, H, &y0, &y1);
            for (size_t px = 0; px < P; px++) {
                size_t x0, x1;
                bin(px, P, W, &x0, &x1);
                const float *g = dout + ((n * P + py) * P + px) * C;
                float inv = 1.0f / (float) ((y1 - y0) * (x1 - x0));
                for (size_t y = y0; y < y1; y++) {
                    for (size_t x = x0; x < x1; x++) {
                        float *d = din + ((n * H + y) * W + x) * C;
                        for (size_t c = 0; c < C; c++) {
                            d[c] += g[c] * inv;
                        }
                    }
                }
            }
        }
    }
}
