/* Activation encodings on the wire: f32 (as is), f16 (IEEE binary16) and
 * int8 (symmetric, one scale per chunk). Portable C; the loops are plain so
 * the compiler can vectorise them on x86 and aarch64 alike.
 *
 * Error bounds (tests/unit/test_codec.c checks them):
 *   f16: |x - dec(enc(x))| <= 2^-11 |x| for normal halves (|x| in
 *        [6.1e-5, 65504]); values beyond 65504 saturate to +-65504, NaN
 *        stays NaN.
 *   int8: scale = max|x| / 127, |x - dec(enc(x))| <= scale / 2. */
#ifndef ET_CODEC_H
#define ET_CODEC_H 1

#include <stddef.h>
#include <stdint.h>

/* Converts one float to binary16 bits, round to nearest even; finite values
 * over the f16 range saturate to the largest finite half. */
uint16_t et_f32_to_f16(float x);
float et_f16_to_f32(uint16_t h);

/* Encodes 'n' floats at 'src' as 'dtype' (an Edgetrain__DType) into 'dst',
 * which holds n * et_dtype_size(dtype) bytes. For int8 stores the chunk's
 * scale in '*scale' (always > 0); otherwise sets it to 0. Returns 0 or
 * EINVAL for an unknown dtype. */
int et_codec_encode(int dtype, const float *src, size_t n, void *dst,
                    float *scale);

/* Decodes 'n' elements of 'dtype' at 'src' into floats at 'dst'. 'scale' is
 * the int8 scale. Returns 0 or EINVAL. */
int et_codec_decode(int dtype, const void *src, size_t n, float scale,
                    float *dst);

#endif /* ET_CODEC_H */
