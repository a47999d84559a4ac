/* Batches: resize once, then normalise + augment per batch.  See batch.h. */
#define _GNU_SOURCE 1
#include "batch.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "rng.h"

struct batcher {
    struct batch_options opts;
    size_t n;                   /* Images in the split. */
    uint8_t *pixels;            /* n * input * input, resized. */
    const uint32_t *labels;     /* The split's labels. */
    float mean, std;
    uint32_t epoch;
    size_t *order;              /* Permutation of the current epoch. */
};

/* Resamples along one axis: 'src' has n_in samples with stride 'sin', 'dst'
 * n_out with stride 'sout'. */
static void
resample_line(const float *src, size_t n_in, size_t sin, float *dst,
              size_t n_out, size_t sout)
{
    double k = (double) n_in / n_out;
    for (size_t o = 0; o < n_out; o++) {
        double v = 0;
        if (k > 1.0) {
            /* Area average over [o*k, (o+1)*k). */
            double a = o * k, b = (o + 1) * k;
            for (size_t i = (size_t) a; i < n_in && i < b; i++) {
                double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;
                v += src[i * sin] * (hi - lo);
            }
            v /= k;
        } else {
            double s = (o + 0.5) * k - 0.5;
            s = s < 0 ? 0 : s;
            size_t i = (size_t) s;
            size_t j = i + 1 < n_in ? i + 1 : i;
            double f = s - i;
            v = src[i * sin] * (1 - f) + src[j * sin] * f;
        }
        dst[o * sout] = (float) v;
    }
}

void
batch_resize_u8(const uint8_t *src, uint32_t h, uint32_t w, uint8_t *dst,
                uint32_t size)
{
    if (h == size && w == size) {
        memcpy(dst, src, (size_t) size * size);
        return;
    }
    float *a = malloc((size_t) h * w * sizeof *a);
    float *t = malloc((size_t) h * size * sizeof *t);
    float *o = malloc((size_t) size * size * sizeof *o);
    if (!a || !t || !o) {
        memset(dst, 0, (size_t) size * size);
        free(a), free(t), free(o);
        return;
    }
    for (size_t i = 0; i < (size_t) h * w; i++) {
        a[i] = src[i];
    }
    for (size_t y = 0; y < h; y++) {            /* rows: w -> size */
        resample_line(a + y * w, w, 1, t + y * size, size, 1);
    }
    for (size_t x = 0; x < size; x++) {         /* columns: h -> size */
        resample_line(t + x, h, size, o + x, size, size);
    }
    for (size_t i = 0; i < (size_t) size * size; i++) {
        float v = o[i] + 0.5f;
        dst[i] = v < 0 ? 0 : v > 255 ? 255 : (uint8_t) v;
    }
    free(a), free(t), free(o);
}

void
batch_image_to_input(const uint8_t *img, uint32_t h, uint32_t w,
                     uint32_t size, float mean, float std, float *out)
{
    uint8_t *r = malloc((size_t) size * size);
    if (!r) {
        return;
    }
    batch_resize_u8(img, h, w, r, size);
    for (size_t i = 0; i < (size_t) size * size; i++) {
        out[i] = (r[i] * (1.0f / 255.0f) - mean) / std;
    }
    free(r);
}

int
batcher_create(const struct dataset *ds, const struct dataset_split *split,
               const struct batch_options *opts, struct batcher **bp,
               char **errp)
{
    *bp = NULL;
    if (!opts->input || opts->input > 1024 || !opts->batch) {
        if (errp) {
            if (asprintf(errp, "bad batch options: input %u, batch %zu",
                         opts->input, opts->batch) < 0) {
                *errp = NULL;
            }
        }
        return EINVAL;
    }
    struct batcher *b = calloc(1, sizeof *b);
    size_t per = (size_t) opts->input * opts->input;
    if (b) {
        b->pixels = malloc((split->n ? split->n : 1) * per);
        b->order = malloc((split->n ? split->n : 1) * sizeof *b->order);
    }
    if (!b || !b->pixels || !b->order) {
        batcher_destroy(b);
        if (errp && asprintf(errp, "out of memory for %zu images",
                             split->n) < 0) {
            *errp = NULL;
        }
        return ENOMEM;
    }
    b->opts = *opts;
    b->n = split->n;
    b->labels = split->labels;
    b->mean = ds->mean;
    b->std = ds->std;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < split->n; i++) {
        batch_resize_u8(dataset_image(split, i), split->h, split->w,
                        b->pixels + i * per, opts->input);
    }
    batcher_set_epoch(b, 0);
    *bp = b;
    return 0;
}

void
batcher_destroy(struct batcher *b)
{
    if (b) {
        free(b->pixels);
        free(b->order);
        free(b);
    }
}

size_t
batcher_n_images(const struct batcher *b)
{
    return b->opts.drop_last ? b->n / b->opts.batch * b->opts.batch : b->n;
}

size_t
batcher_n_batches(const struct batcher *b)
{
    return b->opts.drop_last ? b->n / b->opts.batch
                             : (b->n + b->opts.batch - 1) / b->opts.batch;
}

void
batcher_set_epoch(struct batcher *b, uint32_t epoch)
{
    b->epoch = epoch;
    for (size_t i = 0; i < b->n; i++) {
        b->order[i] = i;
    }
    if (!b->opts.shuffle) {
        return;
    }
    uint64_t s = et_rng_hash(b->opts.seed, epoch, 0x5eedf1e1dull);
    for (size_t i = b->n; i > 1; i--) {
        size_t j = (size_t) (et_rng_next(&s) % i);
        size_t t = b->order[i - 1];
        b->order[i - 1] = b->order[j];
        b->order[j] = t;
    }
}

size_t
batcher_fill(const struct batcher *b, size_t index, float *x,
             uint32_t *labels)
{
    size_t bs = b->opts.batch, first = index * bs;
    size_t end = batcher_n_images(b);
    if (first >= end) {
        return 0;
    }
    size_t n = end - first < bs ? end - first : bs;
    uint32_t in = b->opts.input;
    size_t per = (size_t) in * in;
    float scale = 1.0f / (255.0f * b->std), bias = -b->mean / b->std;
    float lut[256];
    for (int v = 0; v < 256; v++) {
        lut[v] = v * scale + bias;
    }
    for (size_t k = 0; k < n; k++) {
        size_t idx = b->order[first + k];
        const uint8_t *src = b->pixels + idx * per;
        float *dst = x + k * per;
        labels[k] = b->labels[idx];
        int dx = 0, dy = 0;
        bool flip = false;
        if (b->opts.shift || b->opts.flip) {
            uint64_t s = et_rng_hash(b->opts.seed ^ 0xa5a5a5a5ull, b->epoch,
                                     idx);
            int span = 2 * (int) b->opts.shift + 1;
            dx = (int) (et_rng_next(&s) % (uint64_t) span) - (int) b->opts.shift;
            dy = (int) (et_rng_next(&s) % (uint64_t) span) - (int) b->opts.shift;
            flip = b->opts.flip && (et_rng_next(&s) & 1);
        }
        for (int y = 0; y < (int) in; y++) {
            int sy = y - dy;
            for (int xx = 0; xx < (int) in; xx++) {
                int sx = (flip ? (int) in - 1 - xx : xx) - dx;
                uint8_t v = 0;
                if (sy >= 0 && sy < (int) in && sx >= 0 && sx < (int) in) {
                    v = src[(size_t) sy * in + sx];
                }
                dst[(size_t) y * in + xx] = lut[v];
            }
        }
    }
    return n;
}
