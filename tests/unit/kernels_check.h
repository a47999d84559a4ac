/* Helpers shared by the kernels tests: deterministic random tensors and
 * tolerance checks that print the worst difference. */
#ifndef ET_KERNELS_CHECK_H
#define ET_KERNELS_CHECK_H 1

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline float
kc_rand(uint64_t *s)   /* uniform in [-1, 1) */
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float) ((*s >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static inline float *
kc_randn(size_t n, uint64_t *s, float scale, float offset)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = offset + scale * kc_rand(s);
    }
    return p;
}

/* Largest |a-b| / (atol + rtol*|b|) over n values; <= 1 means within
 * tolerance. Prints the worst element with 'what'. */
static inline double
kc_compare(const char *what, const float *a, const float *b, size_t n,
           double atol, double rtol)
{
    double worst = 0.0, wd = 0.0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double) a[i] - b[i]);
        double r = d / (atol + rtol * fabs((double) b[i]));
        if (!(r <= worst)) {   /* catches NaN too */
            worst = isnan(r) ? INFINITY : r, wi = i, wd = d;
        }
    }
    printf("  %-28s n=%-6zu worst |diff| %.3g at %zu (got %.6g want %.6g)"
           " ratio %.3f\n", what, n, wd, wi, n ? a[wi] : 0.0,
           n ? b[wi] : 0.0, worst);
    return worst;
}

#endif /* ET_KERNELS_CHECK_H */
