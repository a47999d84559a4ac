/* 3x3 depthwise convolution, padding 1, stride 1 or 2.
 *
 * NHWC puts a pixel's channels side by side, so the kernels work on
 * chunks of 16 (then 8, then 1) channels whose accumulators stay in
 * vector registers (one AVX-512 register, four NEON ones); the compiler
 * vectorises the fixed-width loops, no intrinsics. Threads take images
 * (chunks of images in the backward). Each thread copies its image into a zero-padded buffer first, so
 * the 9-tap loops have no border tests.
 *
 * The backward handles one image at a time, so its dout and input stay in
 * cache between the two gradients: dw from the padded input (9 register
 * accumulators per channel chunk), then din as a stride-1 forward pass of
 * the flipped kernel over dout zero-upsampled and padded (each din pixel
 * written once; scattering it nine times chains stores through memory and
 * was 5x slower). dw sums run over ~1024 pixels in float, then in double
 * per chunk of images (parallel.h). */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "parallel.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Copies image 'img' (H,W,C) into 'pad' (H+2,W+2,C) with a zero border;
 * with 'scale', each value v becomes bnrelu6_apply(v, scale, shift): the
 * previous layer's batch norm + ReLU6, applied on the way in. */
static void
pad_image(float *pad, const float *img, const float *scale,
          const float *shift, size_t H, size_t W, size_t C)
{
    size_t Wp = W + 2;
    memset(pad, 0, Wp * C * sizeof *pad);
    memset(pad + (H + 1) * Wp * C, 0, Wp * C * sizeof *pad);
    for (size_t y = 0; y < H; y++) {
        float *row = pad + (y + 1) * Wp * C;
        memset(row, 0, C * sizeof *row);
        if (scale) {
            for (size_t x = 0; x < W; x++) {
                const float *src = img + (y * W + x) * C;
                float *dst = row + (x + 1) * C;
                for (size_t c = 0; c < C; c++) {
                    dst[c] = bnrelu6_apply(src[c], scale[c], shift[c]);
                }
            }
        } else {
            memcpy(row + C, img + y * W * C, W * C * sizeof *row);
        }
        memset(row + (W + 1) * C, 0, C * sizeof *row);
    }
}

/* out (Ho,Wo,C) channels [c0, c0+VL) of one image from its padded copy. */
ALWAYS_INLINE void
dw_forward_chunk(float *out, const float *xp, const float *w, size_t c0,
                 const size_t VL, size_t Ho, size_t Wo, size_t Wp, size_t C,
                 size_t stride)
{
    float k[9][16];
    for (size_t t = 0; t < 9; t++) {
        for (size_t v = 0; v < VL; v++) {
            k[t][v] = w[t * C + c0 + v];
        }
    }
    for (size_t oy = 0; oy < Ho; oy++) {
        for (size_t ox = 0; ox < Wo; ox++) {
            const float *x = xp + ((oy * stride) * Wp + ox * stride) * C + c0;
            float acc[16] = {0};
#pragma GCC unroll 3
            for (size_t ky = 0; ky < 3; ky++) {
#pragma GCC unroll 3
                for (size_t kx = 0; kx < 3; kx++) {
                    const float *xv = x + (ky * Wp + kx) * C;
                    for (size_t v = 0; v < VL; v++) {
                        acc[v] += xv[v] * k[ky * 3 + kx][v];
                    }
                }
            }
            float *o = out + (oy * Wo + ox) * C + c0;
            for (size_t v = 0; v < VL; v++) {
                o[v] = acc[v];
            }
        }
    }
}

void
dwconv3x3_forward(float *out, const float *in, const float *w, size_t N,
                  size_t H, size_t W, size_t C, size_t stride)
{
    dwconv3x3_bnrelu6_forward(out, in, NULL, NULL, w, N, H, W, C, stride);
}

void
dwconv3x3_bnrelu6_forward(float *out, const float *in, const float *scale,
                          const float *shift, const float *w, size_t N,
                          size_t H, size_t W, size_t C, size_t stride)
{
    size_t Ho = (H - 1) / stride + 1, Wo = (W - 1) / stride + 1;
    size_t Wp = W + 2;
#pragma omp parallel
    {
        float *xp = malloc((H + 2) * Wp * C * sizeof *xp);
#pragma omp for schedule(dynamic, 1)
        for (size_t n = 0; n < N; n++) {
            pad_image(xp, in + n * H * W * C, scale, shift, H, W, C);
            float *o = out + n * Ho * Wo * C;
            size_t c0 = 0;
            for (; c0 + 16 <= C; c0 += 16) {
                dw_forward_chunk(o, xp, w, c0, 16, Ho, Wo, Wp, C, stride);
            }
            for (; c0 + 8 <= C; c0 += 8) {
                dw_forward_chunk(o, xp, w, c0, 8, Ho, Wo, Wp, C, stride);
            }
            for (; c0 < C; c0++) {
                dw_forward_chunk(o, xp, w, c0, 1, Ho, Wo, Wp, C, stride);
            }
        }
        free(xp);
    }
}

/* 'nimg' consecutive images (padded copies 'npad' floats apart in xp,
 * their douts consecutive in g), channels [c0, c0+VL): dw partial sums
 * added to dwacc (9,C), the 9 accumulators held in registers over all
 * their output pixels (small late-layer images come several at a time, or
 * the accumulator traffic would outweigh the convolution). */
ALWAYS_INLINE void
dw_wgrad_chunk(float *dwacc, const float *gimg, const float *ximg,
               size_t nimg, size_t npad, size_t c0, const size_t VL,
               size_t Ho, size_t Wo, size_t Wp, size_t C, size_t stride)
{
    float a[9][16] = {{0}};
    for (size_t b = 0; b < nimg; b++) {
    const float *g = gimg + b * Ho * Wo * C, *xp = ximg + b * npad;
    for (size_t oy = 0; oy < Ho; oy++) {
        for (size_t ox = 0; ox < Wo; ox++) {
            const float *gv = g + (oy * Wo + ox) * C + c0;
            const float *x = xp + ((oy * stride) * Wp + ox * stride) * C + c0;
            /* Fully unrolled, so the 9 accumulators stay in registers. */
#pragma GCC unroll 3
            for (size_t ky = 0; ky < 3; ky++) {
#pragma GCC unroll 3
                for (size_t kx = 0; kx < 3; kx++) {
                    const float *xv = x + (ky * Wp + kx) * C;
                    for (size_t v = 0; v < VL; v++) {
                        a[ky * 3 + kx][v] += xv[v] * gv[v];
                    }
                }
            }
        }
    }
    }
    for (size_t t = 0; t < 9; t++) {
        for (size_t v = 0; v < VL; v++) {
            dwacc[t * C + c0 + v] += a[t][v];
        }
    }
}

/* up (H+2,W+2,C) <- dout image g (Ho,Wo,C) placed at (s*oy+1, s*ox+1),
 * zeros elsewhere: the input gradient is then a stride-1 forward pass
 * over 'up' with the kernel flipped, written once per pixel instead of
 * scattered nine times. */
static void
upsample_pad(float *up, const float *g, size_t H, size_t W, size_t Ho,
             size_t Wo, size_t C, size_t stride)
{
    size_t Wp = W + 2;
    memset(up, 0, (H + 2) * Wp * C * sizeof *up);
    for (size_t oy = 0; oy < Ho; oy++) {
        for (size_t ox = 0; ox < Wo; ox++) {
            memcpy(up + ((oy * stride + 1) * Wp + ox * stride + 1) * C,
                   g + (oy * Wo + ox) * C, C * sizeof *up);
        }
    }
}

/* dw partial sums stay in float for about this many output pixels, then
 * move to the thread's double sums (small late-layer images would
 * otherwise spend more time flushing than convolving). */
#define FLOAT_SUM_PIXELS 1024

static void
flush_sums(double *sum, float *part, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sum[i] += part[i];
        part[i] = 0.0f;
    }
}

void
dwconv3x3_backward(float *din, float *dw, const float *dout, const float *in,
                   const float *w, size_t N, size_t H, size_t W, size_t C,
                   size_t stride)
{
    dwconv3x3_bnrelu6_backward(din, dw, dout, in, NULL, NULL, w, N, H, W, C,
                               stride);
}

void
dwconv3x3_bnrelu6_backward(float *din, float *dw, const float *dout,
                           const float *in, const float *scale,
                           const float *shift, const float *w, size_t N,
                           size_t H, size_t W, size_t C, size_t stride)
{
    size_t Ho = (H - 1) / stride + 1, Wo = (W - 1) / stride + 1;
    size_t Wp = W + 2, npad = (H + 2) * Wp * C;
    size_t chunks = par_chunks(N, 1);
    double *tsum = calloc(chunks * 9 * C, sizeof *tsum);
    double *dsum = malloc(9 * C * sizeof *dsum);
    float *wflip = malloc(9 * C * sizeof *wflip);
    for (size_t t = 0; t < 9; t++) {
        memcpy(wflip + t * C, w + (8 - t) * C, C * sizeof *wflip);
    }
    /* Images per weight-gradient pass: up to ~256 KB of padded input. */
    size_t group = 65536 / npad;
    group = group < 1 ? 1 : group > 16 ? 16 : group;
#pragma omp parallel
    {
        float *xp = malloc(group * npad * sizeof *xp);
        float *up = din ? malloc(npad * sizeof *up) : NULL;
        float *acc = calloc(9 * C, sizeof *acc);
#pragma omp for schedule(dynamic, 1)
        for (size_t ci = 0; ci < chunks; ci++) {
        double *tacc = tsum + ci * 9 * C;
        size_t pending = 0, n0, n1;
        par_range(N, chunks, ci, &n0, &n1);
        for (size_t n = n0; n < n1; n++) {
            size_t ng = (n - n0) % group ? 0 : n1 - n < group ? n1 - n
                                                                : group;
            const float *g = dout + n * Ho * Wo * C;
            if (ng) {
                /* The group starting at image n: its dw sums. */
                for (size_t b = 0; b < ng; b++) {
                    pad_image(xp + b * npad, in + (n + b) * H * W * C, scale,
                              shift, H, W, C);
                }
                size_t c0 = 0;
                for (; c0 + 16 <= C; c0 += 16) {
                    dw_wgrad_chunk(acc, g, xp, ng, npad, c0, 16, Ho, Wo, Wp,
                                   C, stride);
                }
                for (; c0 + 8 <= C; c0 += 8) {
                    dw_wgrad_chunk(acc, g, xp, ng, npad, c0, 8, Ho, Wo, Wp,
                                   C, stride);
                }
                for (; c0 < C; c0++) {
                    dw_wgrad_chunk(acc, g, xp, ng, npad, c0, 1, Ho, Wo, Wp,
                                   C, stride);
                }
                pending += ng * Ho * Wo;
                if (pending >= FLOAT_SUM_PIXELS) {
                    flush_sums(tacc, acc, 9 * C);
                    pending = 0;
                }
            }
            size_t c0;
            if (up) {
                /* The same image's dout is still in cache. */
                upsample_pad(up, g, H, W, Ho, Wo, C, stride);
                float *d = din + n * H * W * C;
                for (c0 = 0; c0 + 16 <= C; c0 += 16) {
                    dw_forward_chunk(d, up, wflip, c0, 16, H, W, Wp, C, 1);
                }
                for (; c0 + 8 <= C; c0 += 8) {
                    dw_forward_chunk(d, up, wflip, c0, 8, H, W, Wp, C, 1);
                }
                for (; c0 < C; c0++) {
                    dw_forward_chunk(d, up, wflip, c0, 1, H, W, Wp, C, 1);
                }
            }
        }
        flush_sums(tacc, acc, 9 * C);
        }
        free(xp);
        free(up);
        free(acc);
    }
    par_reduce(dsum, tsum, chunks, 9 * C);
    for (size_t i = 0; i < 9 * C; i++) {
        dw[i] = (float) dsum[i];
    }
    free(dsum);
    free(wflip);
    free(tsum);
}
