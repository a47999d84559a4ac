/* Reader of the PyTorch reference files tests/golden/NAME.bin (format in
 * tests/golden/gen_golden.py). Tests run from the repository root; the
 * ET_GOLDEN_DIR environment variable overrides the directory. */
#ifndef ET_GOLDEN_H
#define ET_GOLDEN_H 1

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct golden_tensor {
    char name[64];
    int ndim;
    uint32_t dims[4];
    size_t count;
    float *data;
};

struct golden {
    struct golden_tensor *t;
    size_t n;
};

static inline uint32_t
golden_u32(const uint8_t *p)
{
    return p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}

/* Loads 'file' (a name under the golden directory). Returns 0 or -1 with a
 * message on stderr. */
static inline int
golden_load(struct golden *g, const char *file)
{
    const char *dir = getenv("ET_GOLDEN_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/golden", file);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "golden: cannot open %s\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t) len : 1);
    size_t got = fread(buf, 1, (size_t) len, f);
    fclose(f);
    if (len < 12 || got != (size_t) len || memcmp(buf, "ETGOLD1\n", 8)) {
        fprintf(stderr, "golden: %s is not a golden file\n", path);
        free(buf);
        return -1;
    }
    size_t off = 8, n = golden_u32(buf + off);
    off += 4;
    g->t = calloc(n, sizeof *g->t);
    g->n = n;
    for (size_t i = 0; i < n; i++) {
        struct golden_tensor *t = &g->t[i];
        uint32_t nl = golden_u32(buf + off);
        off += 4;
        memcpy(t->name, buf + off, nl < 63 ? nl : 63);
        off += nl;
        t->ndim = (int) golden_u32(buf + off);
        off += 4;
        t->count = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->dims[d] = golden_u32(buf + off);
            t->count *= t->dims[d];
            off += 4;
        }
        t->data = malloc((t->count ? t->count : 1) * sizeof(float));
        memcpy(t->data, buf + off, t->count * sizeof(float));
        off += t->count * sizeof(float);
    }
    free(buf);
    return 0;
}

/* The tensor named 'name'; NULL (and a message) if missing. */
static inline struct golden_tensor *
golden_get(struct golden *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++) {
        if (!strcmp(g->t[i].name, name)) {
            return &g->t[i];
        }
    }
    fprintf(stderr, "golden: no tensor '%s'\n", name);
    return NULL;
}

static inline float *
golden_data(struct golden *g, const char *name)
{
    struct golden_tensor *t = golden_get(g, name);
    return t ? t->data : NULL;
}

static inline void
golden_free(struct golden *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->t[i].data);
    }
    free(g->t);
    g->t = NULL;
    g->n = 0;
}

#endif /* ET_GOLDEN_H */
