/* How the layers share work between threads (internal to kernels/).
 *
 * Work is cut into chunks whose number depends only on the problem size,
 * never on the thread count, and threads take chunks dynamically: on a
 * shared machine a thread that loses its core no longer holds up the
 * others at the next barrier, they take its share. Sums are kept per chunk
 * (float over short runs, then double) and added in chunk order, so results
 * are bit-identical for every thread count and every schedule: a stage on
 * a 4-core Pi computes what the 2-core trainer computes. */
#ifndef ET_PARALLEL_H
#define ET_PARALLEL_H 1

#include <stddef.h>

#define PAR_MAX_CHUNKS 32

/* Number of chunks for n items, at least min_items each, at most
 * PAR_MAX_CHUNKS, at least 1. */
static inline size_t
par_chunks(size_t n, size_t min_items)
{
    size_t c = n / (min_items ? min_items : 1);
    return c < 1 ? 1 : c > PAR_MAX_CHUNKS ? PAR_MAX_CHUNKS : c;
}

/* Items [*lo, *hi) of chunk i of 'chunks' over n items. */
static inline void
par_range(size_t n, size_t chunks, size_t i, size_t *lo, size_t *hi)
{
    *lo = n * i / chunks;
    *hi = n * (i + 1) / chunks;
}

/* out[j] = sum over chunks of part[chunk * len + j], in chunk order. */
static inline void
par_reduce(double *out, const double *part, size_t chunks, size_t len)
{
    for (size_t j = 0; j < len; j++) {
        double s = 0.0;
        for (size_t i = 0; i < chunks; i++) {
            s += part[i * len + j];
        }
        out[j] = s;
    }
}

#endif /* ET_PARALLEL_H */
