/* GEMMs split across the OpenMP threads, each thread calling OpenBLAS
 * single-threaded on its share (see mn_set_threads()). One thread pool
 * (OpenMP's) then runs every layer: OpenBLAS's own pthreads and
 * OpenMP's spinning workers never compete for the cores. Row-major. */
#ifndef ET_GEMM_H
#define ET_GEMM_H 1

#include <stdbool.h>
#include <stddef.h>

/* C (M,N) = A (M,K) op(B) + beta C, op(B) = B^T (B is (N,K)) if trans_b,
 * else B (K,N). Threads take chunks of >= 512 rows of A and C. */
void gemm_rows(bool trans_b, size_t M, size_t N, size_t K, const float *A,
               size_t lda, const float *B, size_t ldb, float beta, float *C,
               size_t ldc);

/* C (M,N) = A^T B with A (R,M) and B (R,N): a sum over the R rows, as in
 * weight gradients. Two chunks of rows of C (columns of A), so there is
 * no reduction between threads and the result does not depend on the
 * thread count. */
void gemm_atb(size_t M, size_t N, size_t R, const float *A, size_t lda,
              const float *B, size_t ldb, float *C, size_t ldc);

#endif /* ET_GEMM_H */
