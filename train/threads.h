/* Thread settings for training processes.
 *
 * Our layers run on libgomp (OpenMP) and the GEMMs on Debian's pthread
 * OpenBLAS: two thread pools on the same cores.  By default both spin while
 * idle, so each steals the cores the other needs: on this 2-core machine a
 * training step at 2 threads ran 3-4x slower than at 1 thread.  Measured
 * (fashion-mnist subset, batch 128, 2 threads, machine shared):
 *
 *   config              default  passive  passive + BLAS 1 thread
 *   input 32 alpha 0.5  190      551      704   images/s
 *   input 64 alpha 1.0   60      133      164   images/s
 *
 * so training processes make idle OpenMP threads sleep (OMP_WAIT_POLICY=
 * passive, read by libgomp only at start-up, hence the re-exec) and run
 * OpenBLAS single-threaded inside the OpenMP-parallel step. */
#ifndef ET_THREADS_H
#define ET_THREADS_H 1

/* If OMP_WAIT_POLICY is unset, sets it to "passive" and re-executes the
 * program (/proc/self/exe) with 'main_argv' (main's argv, NULL-terminated);
 * returns only if it is already set or the exec failed. */
void train_threads_passive_wait(char **main_argv);

/* Sets the OpenMP thread count to 'threads' (<= 0: all CPUs) and OpenBLAS's
 * to 'blas_threads' (<= 0: same as threads). */
void train_threads_set(int threads, int blas_threads);

#endif /* ET_THREADS_H */
