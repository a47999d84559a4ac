/* Seed writing shared by the fuzz targets (ET_FUZZ_SEEDS=DIR). */
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

#endif
