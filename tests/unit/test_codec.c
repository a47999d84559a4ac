/* Activation codecs: f16 and int8 round trips stay inside the error bounds
 * stated in proto/codec.h, special values survive, bad dtypes are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "edgetrain.pb-c.h"

/* Deterministic pseudo-random floats spanning many magnitudes. */
static float
rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t r = (uint32_t) (*s >> 33);
    float m = (float) (r & 0xffff) / 65536.0f * 2.0f - 1.0f;
    int e = (int) ((r >> 16) % 30) - 14;           /* 2^-14 .. 2^15 */
    return ldexpf(m, e);
}

static void
test_f16_round_trip_bound(void **state)
{
    uint64_t s = 1;
    float worst = 0.0f;
    for (int i = 0; i < 200000; i++) {
        float x = rnd(&s);
        float y = et_f16_to_f32(et_f32_to_f16(x));
        if (fabsf(x) >= 6.104e-5f && fabsf(x) <= 65504.0f) {
            float rel = fabsf(x - y) / fabsf(x);
            worst = rel > worst ? rel : worst;
            assert_true(rel <= 0x1p-11f);
        } else if (fabsf(x) < 6.104e-5f) {
            assert_true(fabsf(x - y) <= 0x1p-25f);  /* half a subnormal ulp */
        }
    }
    printf("f16 worst relative error %.3g (bound %.3g)\n", worst, 0x1p-11);
}

static void
test_f16_exact_and_special(void **state)
{
    /* Every half converts to a float and back to itself (NaNs stay NaN). */
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = et_f16_to_f32((uint16_t) h);
        uint16_t back = et_f32_to_f16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            assert_true(isnan(f));
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        } else {
            assert_int_equal(back, h);
        }
    }
    assert_int_equal(et_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(et_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(et_f32_to_f16(1e6f), 0x7bff);      /* saturates */
    assert_int_equal(et_f32_to_f16(-1e6f), 0xfbff);
    assert_int_equal(et_f32_to_f16(INFINITY), 0x7c00);
    /* Ties round to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10. */
    assert_int_equal(et_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(et_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
}

static void
test_int8_round_trip_bound(void **state)
{
    enum { N = 4096 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    int8_t *q = malloc(N);
    uint64_t s = 7;
    for (int trial = 0; trial < 20; trial++) {
        float amp = ldexpf(1.0f, trial - 10);
        float amax = 0.0f;
        for (int i = 0; i < N; i++) {
            x[i] = rnd(&s) * amp * 1e-4f;
            amax = fmaxf(amax, fabsf(x[i]));
        }
        float scale;
        assert_int_equal(et_codec_encode(EDGETRAIN__DTYPE__DTYPE_INT8, x, N,
                                         q, &scale), 0);
        assert_true(scale > 0.0f);
        assert_true(fabsf(scale - amax / 127.0f) <= 1e-6f * amax);
        assert_int_equal(et_codec_decode(EDGETRAIN__DTYPE__DTYPE_INT8, q, N,
                                         scale, y), 0);
        for (int i = 0; i < N; i++) {
            assert_true(fabsf(x[i] - y[i]) <= scale * 0.5f * 1.0001f);
        }
    }
    /* All zeros: a positive scale (the wire requires one), zeros back. */
    memset(x, 0, N * sizeof *x);
    float scale;
    et_codec_encode(EDGETRAIN__DTYPE__DTYPE_INT8, x, N, q, &scale);
    assert_true(scale > 0.0f);
    et_codec_decode(EDGETRAIN__DTYPE__DTYPE_INT8, q, N, scale, y);
    for (int i = 0; i < N; i++) {
        assert_true(y[i] == 0.0f);
    }
    free(x), free(y), free(q);
}

/* The vectorised int8 path: NaN ignored by the scale and sent as 0,
 * round half to even, the extremes at +-127, infinity not a scale. */
static void
test_int8_special_values(void **state)
{
    float x[8] = {NAN, 127.0f, -127.0f, 0.5f, 1.5f, -2.5f, 63.49f, -0.0f};
    int8_t q[8];
    float scale;
    assert_int_equal(et_codec_encode(EDGETRAIN__DTYPE__DTYPE_INT8, x, 8, q,
                                     &scale), 0);
    assert_true(scale == 1.0f);
    static const int8_t want[8] = {0, 127, -127, 0, 2, -2, 63, 0};
    assert_memory_equal(q, want, sizeof want);
    x[0] = INFINITY;     /* no finite scale: 1, the rest clipped */
    assert_int_equal(et_codec_encode(EDGETRAIN__DTYPE__DTYPE_INT8, x, 8, q,
                                     &scale), 0);
    assert_true(scale == 1.0f);
    assert_int_equal(q[0], 127);
}

static void
test_f32_and_bad_dtype(void **state)
{
    float x[5] = {1, -2, 3.5f, 0, 1e-30f}, y[5], scale;
    uint8_t buf[20];
    assert_int_equal(et_codec_encode(EDGETRAIN__DTYPE__DTYPE_F32, x, 5, buf,
                                     &scale), 0);
    assert_int_equal(et_codec_decode(EDGETRAIN__DTYPE__DTYPE_F32, buf, 5, 0,
                                     y), 0);
    assert_memory_equal(x, y, sizeof x);
    assert_int_equal(et_codec_encode(9, x, 5, buf, &scale), EINVAL);
    assert_int_equal(et_codec_decode(-1, buf, 5, 1, y), EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_round_trip_bound),
        cmocka_unit_test(test_f16_exact_and_special),
        cmocka_unit_test(test_int8_round_trip_bound),
        cmocka_unit_test(test_int8_special_values),
        cmocka_unit_test(test_f32_and_bad_dtype),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
