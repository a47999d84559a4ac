/* Activation encodings: see codec.h. */
#include "codec.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "edgetrain.pb-c.h"

uint16_t
et_f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t) ((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;

    if (abs > 0x7f800000u) {                  /* NaN: keep it quiet NaN */
        return sign | 0x7e00;
    }
    if (abs >= 0x477ff000u) {                 /* rounds to >= 65520: saturate */
        return abs == 0x7f800000u ? (sign | 0x7c00) : (sign | 0x7bff);
    }
    if (abs < 0x38800000u) {                  /* below 2^-14: subnormal half */
        /* Add 0.5 in the half's subnormal ulp (2^-24) via float arithmetic:
         * x + 0.5 rounds to nearest even at exactly that ulp. */
        float f;
        memcpy(&f, &abs, 4);
        f += 0.5f;
        uint32_t v;
        memcpy(&v, &f, 4);
        return sign | (uint16_t) (v - 0x3f000000u);
    }
    /* Normal: rebias the exponent (127 -> 15) and round the mantissa from
     * 23 to 10 bits, to nearest even. */
    uint32_t mant_odd = (abs >> 13) & 1;
    abs += 0xc8000fffu + mant_odd;            /* -(112 << 23) + 0xfff + odd */
    return sign | (uint16_t) (abs >> 13);
}

float
et_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {                        /* inf or NaN */
        u = sign | 0x7f800000u | (mant << 13);
    } else if (exp) {                         /* normal */
        u = sign | ((exp + 112) << 23) | (mant << 13);
    } else {                                  /* zero or subnormal: m * 2^-24 */
        float f = (float) mant * 5.9604644775390625e-8f;
        memcpy(&u, &f, 4);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int
et_codec_encode(int dtype, const float *src, size_t n, void *dst,
                float *scale)
{
    *scale = 0.0f;
    switch (dtype) {
    case EDGETRAIN__DTYPE__DTYPE_F32:
        if (dst != src) {
            memcpy(dst, src, n * sizeof *src);
        }
        return 0;
    case EDGETRAIN__DTYPE__DTYPE_F16: {
        uint16_t *h = dst;
        for (size_t i = 0; i < n; i++) {
            h[i] = et_f32_to_f16(src[i]);
        }
        return 0;
    }
    case EDGETRAIN__DTYPE__DTYPE_INT8: {
        /* max |x| over the bit patterns (non-negative floats order as
         * their bits): an integer reduction the compiler vectorises, where
         * the float one with its NaN rule is not. NaNs are ignored. */
        uint32_t umax = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &src[i], sizeof u);
            u &= 0x7fffffffu;
            u &= -(uint32_t) (u <= 0x7f800000u);   /* NaN -> 0 */
            umax = u > umax ? u : umax;
        }
        float amax;
        memcpy(&amax, &umax, sizeof amax);
        float s = amax > 0.0f && amax < 1e30f ? amax / 127.0f : 1.0f;
        float inv = 1.0f / s;
        int8_t *q = dst;
        /* Round to nearest even by adding and removing 1.5 * 2^23 (exact
         * for |v| <= 127) rather than lrintf(), which the compiler cannot
         * vectorise: this loop ran at 3 ns per value and took 15 % of a
         * pipeline stage's time (docs/placement.md). */
        for (size_t i = 0; i < n; i++) {
            float v = src[i] * inv;
            v = v == v ? v : 0.0f;
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[i] = (int8_t) (int32_t) ((v + 0x1.8p23f) - 0x1.8p23f);
        }
        *scale = s;
        return 0;
    }
    default:
        return EINVAL;
    }
}

int
et_codec_decode(int dtype, const void *src, size_t n, float scale,
                float *dst)
{
    switch (dtype) {
    case EDGETRAIN__DTYPE__DTYPE_F32:
        if (dst != src) {
            memcpy(dst, src, n * sizeof *dst);
        }
        return 0;
    case EDGETRAIN__DTYPE__DTYPE_F16: {
        const uint16_t *h = src;
        for (size_t i = 0; i < n; i++) {
            dst[i] = et_f16_to_f32(h[i]);
        }
        return 0;
    }
    case EDGETRAIN__DTYPE__DTYPE_INT8: {
        const int8_t *q = src;
        for (size_t i = 0; i < n; i++) {
            dst[i] = (float) q[i] * scale;
        }
        return 0;
    }
    default:
        return EINVAL;
    }
}
