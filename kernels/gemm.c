/* GEMMs split across OpenMP threads; see gemm.h. */
#include <cblas.h>
#include <omp.h>

#include "gemm.h"

/* How many threads to split over: one if OpenBLAS was given threads of
 * its own (then it parallelises the call itself and must not be entered
 * from several threads at once), if we are already inside a parallel
 * region, or if there are too few rows to share. */
static int
split_threads(size_t rows, size_t min_rows)
{
    int nt = omp_get_max_threads();
    if (nt <= 1 || omp_in_parallel() || openblas_get_num_threads() > 1
        || rows < (size_t) nt * min_rows) {
        return 1;
    }
    return nt;
}

/* Below this many rows per thread the split costs more than it gains. */
#define MIN_ROWS 32

/* Share [*lo, *hi) of n rows for thread t of nt, in multiples of 16 so
 * the BLAS kernels see full register tiles. nt is the team's real size
 * (omp_get_num_threads()), which may be smaller than asked for. */
static void
share(size_t n, int t, int nt, size_t *lo, size_t *hi)
{
    size_t blocks = (n + 15) / 16;
    size_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
    *lo = b0 * 16 < n ? b0 * 16 : n;
    *hi = b1 * 16 < n ? b1 * 16 : n;
}

void
gemm_rows(bool trans_b, size_t M, size_t N, size_t K, const float *A,
          size_t lda, const float *B, size_t ldb, float beta, float *C,
          size_t ldc)
{
    int nt = split_threads(M, MIN_ROWS);
#pragma omp parallel num_threads(nt)
    {
        size_t lo, hi;
        share(M, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
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
    int nt = split_threads(M, 16);
#pragma omp parallel num_threads(nt)
    {
        size_t lo, hi;
        share(M, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        (int) (hi - lo), (int) N, (int) R, 1.0f, A + lo,
                        (int) lda, B, (int) ldb, 0.0f, C + lo * ldc,
                        (int) ldc);
        }
    }
}
