#include "threads.h"

#include <stdlib.h>
#include <unistd.h>

#include "model.h"

void openblas_set_num_threads(int);

void
train_threads_passive_wait(char **main_argv)
{
    if (getenv("OMP_WAIT_POLICY")) {
        return;
    }
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", main_argv);
    /* Exec failed: carry on with spinning threads. */
}

void
train_threads_set(int threads, int blas_threads)
{
    mn_set_threads(threads);
    if (blas_threads > 0) {
        openblas_set_num_threads(blas_threads);
    }
}
