/* GEMMs split across OpenMP threads; see gemm.h and parallel.h. */
#include <cblas.h>
#include <omp.h>

#include "gemm.h"
#include "parallel.h"

/* Whether to split at all: not if OpenBLAS was given threads of its own
 * (then it parallelises the call itself and must not be entered from
 * several threads at once) or if we are already inside a parallel
 * region. The split does not depend on our thread count (one thread runs
 * the same chunks in turn), so neither do the results. */
static bool
may_split(void)
{
    return !omp_in_parallel() && openblas_get_num_threads() <= 1;
}

/* Rows [*lo, *hi) of chunk i of n rows, in multiples of 16 so the BLAS
 * kernels see full register tiles. */
static void
rows16(size_t n, size_t chunks, size_t i, size_t *lo, size_t *hi)
{
    size_t blocks = (n + 15) / 16, b0, b1;
    par_range(blocks, chunks, i, &b0, &b1);
    *lo = b0 * 16 < n ? b0 * 16 : n;
    *hi = b1 * 16 < n ? b1 * 16 : n;
}

void
gemm_rows(bool trans_b, size_t M, size_t N, size_t K, const float *A,
          size_t lda, const float *B, size_t ldb, float beta, float *C,
          size_t ldc)
{
    /* Chunks of >= 512 rows: each call packs B again, so not too many. */
    size_t chunks = may_split() ? par_chunks((M + 15) / 16, 32) : 1;
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1)
    for (size_t i = 0; i < chunks; i++) {
        size_t lo, hi;
        rows16(M, chunks, i, &lo, &hi);
        if (hi > lo) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans,
                        trans_b ? CblasTrans : CblasNoTrans, (int) (hi - lo),
                        (int) N, (int) K, 1.0f, A + lo * lda, (int) lda, B,
                        (int) ldb, beta, C + lo * ldc, (int) ldc);
        }
    }
}

void
gemm_atb(size_t M, size_t N, size_t R, const float *A, size_t lda,
         const float *B, size_t ldb, float *C, size_t ldc)
{
    /* Each chunk of output rows re-reads and packs all of B (R rows), so
     * just two chunks; every output element still comes from one call
     * over all of R, whatever the split. */
    size_t chunks = may_split() && M >= 32 ? 2 : 1;
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1)
    for (size_t i = 0; i < chunks; i++) {
        size_t lo, hi;
        rows16(M, chunks, i, &lo, &hi);
        if (hi > lo) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        (int) (hi - lo), (int) N, (int) R, 1.0f, A + lo,
                        (int) lda, B, (int) ldb, 0.0f, C + lo * ldc,
                        (int) ldc);
        }
    }
}
