/* Shared by the fuzz targets: seed writing (ET_FUZZ_SEEDS=DIR), log. */
#ifndef ET_FUZZ_SEEDS_H
#define ET_FUZZ_SEEDS_H 1

#include <stdio.h>
#include <stdlib.h>

static void
fz_seed_write(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "cannot write seed %s\n", path);
        exit(1);
    }
}

/* ET_FUZZ_SEEDS=DIR: the target writes its seeds there and the process
 * exits (call first in LLVMFuzzerInitialize). */
static void
fz_seeds_main(void (*write_seeds)(const char *dir))
{
    const char *dir = getenv("ET_FUZZ_SEEDS");
    if (dir) {
        write_seeds(dir);
        exit(0);
    }
}

/* The log of the code under test: errors only, everything with
 * ET_FUZZ_VERBOSE=1 (to see where an input goes). Needs log.h. */
#define FZ_LOG_LEVEL() \
    et_log_set_level(getenv("ET_FUZZ_VERBOSE") ? ET_LOG_DEBUG : ET_LOG_ERROR)

#endif
