/* Datasets: IDX and QuickDraw readers, stroke rendering, splits.  See
 * dataset.h for the public contract. */
#define _GNU_SOURCE 1
#include "dataset.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "rng.h"

/* Seed of the QuickDraw train/test split and of the --train-limit /
 * --test-limit subsets.  Fixed (not --seed) so that every run, whatever its
 * training seed, is measured on the same held-out images. */
#define DATASET_SPLIT_SEED 0x5eed0f7e57ull

static int
set_err(char **errp, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
set_err(char **errp, int error, const char *fmt, ...)
{
    if (errp) {
        va_list args;
        char *msg = NULL;
        va_start(args, fmt);
        if (vasprintf(&msg, fmt, args) < 0) {
            msg = NULL;
        }
        va_end(args);
        free(*errp);
        *errp = msg;
    }
    return error;
}

void
dataset_options_init(struct dataset_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->test_fraction = 0.1;
    opts->render_size = 64;
    opts->line_width = 2.5f;
    opts->format = DATASET_FORMAT_AUTO;
}

int
dataset_format_from_string(const char *s)
{
    static const char *const names[] = {"auto", "npy", "ndjson", "bin"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, names[i])) {
            return i;
        }
    }
    return -1;
}

/* --- Reader: zlib gz stream (reads plain files transparently) that tracks
 * the byte offset of the uncompressed stream for error messages. --------- */

struct reader {
    gzFile gz;
    const char *path;
    uint64_t off;
};

static int
reader_open(struct reader *r, const char *path, char **errp)
{
    r->path = path;
    r->off = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz) {
        int error = errno ? errno : EIO;
        return set_err(errp, error, "%s: cannot open: %s", path,
                       strerror(error));
    }
    gzbuffer(r->gz, 1 << 17);
    return 0;
}

static void
reader_close(struct reader *r)
{
    if (r->gz) {
        gzclose(r->gz);
        r->gz = NULL;
    }
}

/* Called when gzread()/gzgets() returned nothing at stream offset 'off':
 * returns 0 at a clean end of file, or -1 with *errp set for a read or
 * decompression error or a gzip stream that ends early (truncated .gz). */
static int
reader_at_end(struct reader *r, uint64_t off, char **errp)
{
    int zerr;
    const char *msg = gzerror(r->gz, &zerr);
    if (zerr == Z_BUF_ERROR) {
        set_err(errp, EIO, "%s: truncated gzip stream at byte %llu", r->path,
                (unsigned long long) off);
        return -1;
    }
    if (zerr != Z_OK) {
        set_err(errp, EIO, "%s: read error at byte %llu: %s", r->path,
                (unsigned long long) off, msg);
        return -1;
    }
    return 0;
}

/* Reads up to 'n' bytes; returns the count read (short at end of file) or
 * -1 on a decompression/IO error (with *errp set). */
static long long
reader_read_some(struct reader *r, void *buf, size_t n, char **errp)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        int got = gzread(r->gz, (char *) buf + done, (unsigned) want);
        if (got <= 0) {
            if (reader_at_end(r, r->off + done, errp)) {
                return -1;
            }
            if (got < 0) {
                set_err(errp, EIO, "%s: read error at byte %llu", r->path,
                        (unsigned long long) (r->off + done));
                return -1;
            }
            break;
        }
        done += (size_t) got;
    }
    r->off += done;
    return (long long) done;
}

/* Reads exactly 'n' bytes of 'what'. */
static int
reader_read(struct reader *r, void *buf, size_t n, const char *what,
            char **errp)
{
    uint64_t start = r->off;
    long long got = reader_read_some(r, buf, n, errp);
    if (got < 0) {
        return EIO;
    }
    if ((size_t) got != n) {
        return set_err(errp, EINVAL,
                       "%s: truncated at byte %llu: %s needs %zu bytes, "
                       "only %lld left", r->path, (unsigned long long) start,
                       what, n, got);
    }
    return 0;
}

/* Reads one line (without the newline) into *bufp (grown as needed).
 * Returns 1 for a line, 0 at end of file, -1 on error. */
static int
reader_getline(struct reader *r, char **bufp, size_t *capp, size_t *lenp,
               char **errp)
{
    size_t len = 0;
    for (;;) {
        if (*capp - len < 2) {
            size_t cap = *capp ? *capp * 2 : 4096;
            char *p = realloc(*bufp, cap);
            if (!p) {
                set_err(errp, ENOMEM, "%s: out of memory", r->path);
                return -1;
            }
            *bufp = p;
            *capp = cap;
        }
        char *s = gzgets(r->gz, *bufp + len, (int) (*capp - len));
        if (!s) {
            if (reader_at_end(r, r->off + len, errp)) {
                return -1;
            }
            break;
        }
        size_t l = strlen(*bufp + len);
        len += l;
        if (len && (*bufp)[len - 1] == '\n') {
            break;
        }
        if (l == 0) {
            break;
        }
    }
    r->off += len;
    if (len == 0) {
        return 0;
    }
    while (len && ((*bufp)[len - 1] == '\n' || (*bufp)[len - 1] == '\r')) {
        len--;
    }
    (*bufp)[len] = '\0';
    *lenp = len;
    return 1;
}

/* --- Splits ------------------------------------------------------------- */

void
dataset_split_free(struct dataset_split *split)
{
    if (split) {
        free(split->pixels);
        free(split->labels);
        memset(split, 0, sizeof *split);
    }
}

/* Makes room for 'extra' more h x w images in 'split'. */
static int
split_reserve(struct dataset_split *split, uint32_t h, uint32_t w,
              size_t extra, const char *path, char **errp)
{
    if (split->n && (split->h != h || split->w != w)) {
        return set_err(errp, EINVAL, "%s: images are %ux%u but earlier "
                       "files gave %ux%u (choose one --format)", path,
                       h, w, split->h, split->w);
    }
    split->h = h;
    split->w = w;
    size_t per = (size_t) h * w;
    size_t n = split->n + extra;
    if (extra && (n < split->n || n > SIZE_MAX / per)) {
        return set_err(errp, ENOMEM, "%s: too many images", path);
    }
    size_t bytes = n * per;
    uint8_t *px = realloc(split->pixels, bytes ? bytes : 1);
    if (!px) {
        return set_err(errp, ENOMEM, "%s: out of memory for %zu images",
                       path, n);
    }
    split->pixels = px;
    uint32_t *lb = realloc(split->labels, (n ? n : 1) * sizeof *lb);
    if (!lb) {
        return set_err(errp, ENOMEM, "%s: out of memory for %zu labels",
                       path, n);
    }
    split->labels = lb;
    return 0;
}

/* Growth in chunks for readers that do not know the record count. */
static int
split_push(struct dataset_split *split, size_t *cap, uint32_t h, uint32_t w,
           const uint8_t *img, uint32_t label, const char *path, char **errp)
{
    if (split->n == *cap) {
        size_t more = *cap < 1024 ? 1024 : *cap;
        int error = split_reserve(split, h, w, *cap + more - split->n, path,
                                  errp);
        if (error) {
            return error;
        }
        *cap += more;
    } else if (split->h != h || split->w != w) {
        return split_reserve(split, h, w, 0, path, errp);
    }
    memcpy(split->pixels + split->n * (size_t) h * w, img, (size_t) h * w);
    split->labels[split->n++] = label;
    return 0;
}

/* --- IDX (MNIST, Fashion-MNIST) ------------------------------------------ */

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}

/* Reads an IDX header of 'len' bytes and checks its magic ('magic' low
 * byte = number of dimensions; type 0x08 = unsigned bytes). */
static int
idx_header(struct reader *r, uint8_t *hdr, size_t len, uint32_t magic,
           char **errp)
{
    int error = reader_read(r, hdr, len, "IDX header", errp);
    if (!error && be32(hdr) != magic) {
        error = set_err(errp, EINVAL, "%s: byte 0: bad IDX magic 0x%08x "
                        "(want 0x%08x: unsigned bytes, %u dimension%s)",
                        r->path, be32(hdr), magic, magic & 0xff,
                        (magic & 0xff) > 1 ? "s" : "");
    }
    return error;
}

int
dataset_read_idx(const char *images_path, const char *labels_path,
                 struct dataset_split *split, char **errp)
{
    struct reader ri = {0}, rl = {0};
    uint8_t hdr[16];
    int error;

    if ((error = reader_open(&ri, images_path, errp))
        || (error = reader_open(&rl, labels_path, errp))) {
        goto out;
    }
    if ((error = idx_header(&ri, hdr, 16, 0x00000803, errp))) {
        goto out;
    }
    uint32_t n = be32(hdr + 4), h = be32(hdr + 8), w = be32(hdr + 12);
    if (!h || !w || h > 4096 || w > 4096 || n > 100000000) {
        error = set_err(errp, EINVAL, "%s: byte 4: implausible IDX shape "
                        "%u x %u x %u", images_path, n, h, w);
        goto out;
    }
    if ((error = idx_header(&rl, hdr, 8, 0x00000801, errp))) {
        goto out;
    }
    if (be32(hdr + 4) != n) {
        error = set_err(errp, EINVAL, "%s: byte 4: %u labels but %s has %u "
                        "images", labels_path, be32(hdr + 4), images_path, n);
        goto out;
    }
    /* Allocate only what the file can hold: deflate expands at most
     * ~1032:1, so a header claiming more is a lie (or a truncated file),
     * refused before reserving n x h x w bytes. */
    struct stat sb;
    if (!stat(images_path, &sb) && sb.st_size >= 0
        && (double) n * h * w > 1100.0 * (double) sb.st_size + 65536.0) {
        error = set_err(errp, EINVAL, "%s: byte 4: header claims %u images "
                        "of %u x %u but the file has only %lld bytes",
                        images_path, n, h, w, (long long) sb.st_size);
        goto out;
    }
    size_t base = split->n;
    if ((error = split_reserve(split, h, w, n, images_path, errp))) {
        goto out;
    }
    uint8_t *dst = split->pixels + base * (size_t) h * w;
    if ((error = reader_read(&ri, dst, (size_t) n * h * w, "image data",
                             errp))) {
        goto out;
    }
    uint8_t *lb = malloc(n ? n : 1);
    if (!lb) {
        error = set_err(errp, ENOMEM, "%s: out of memory", labels_path);
        goto out;
    }
    error = reader_read(&rl, lb, n, "label data", errp);
    for (uint32_t i = 0; !error && i < n; i++) {
        if (lb[i] >= 100) {
            error = set_err(errp, EINVAL, "%s: byte %u: label %u out of "
                            "range", labels_path, 8 + i, lb[i]);
        }
        split->labels[base + i] = lb[i];
    }
    free(lb);
    if (!error) {
        split->n = base + n;
    }
out:
    reader_close(&ri);
    reader_close(&rl);
    return error;
}

/* --- numpy_bitmap .npy --------------------------------------------------- */

/* Finds "'key':" in the npy header dict and returns a pointer after it. */
static const char *
npy_field(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) {
        return NULL;
    }
    p += strlen(pat);
    while (*p == ' ' || *p == ':') {
        p++;
    }
    return p;
}

int
dataset_read_npy(const char *path, uint32_t label, size_t max,
                 struct dataset_split *split, char **errp)
{
    struct reader r = {0};
    uint8_t pre[12];
    char *hdr = NULL;
    int error;

    if ((error = reader_open(&r, path, errp))) {
        return error;
    }
    if ((error = reader_read(&r, pre, 10, "npy preamble", errp))) {
        goto out;
    }
    if (memcmp(pre, "\x93NUMPY", 6)) {
        error = set_err(errp, EINVAL, "%s: byte 0: not a .npy file (bad "
                        "magic)", path);
        goto out;
    }
    uint32_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (uint32_t) pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if ((error = reader_read(&r, pre + 10, 2, "npy header length",
                                 errp))) {
            goto out;
        }
        hlen = pre[8] | (uint32_t) pre[9] << 8 | (uint32_t) pre[10] << 16
               | (uint32_t) pre[11] << 24;
    } else {
        error = set_err(errp, EINVAL, "%s: byte 6: unsupported .npy "
                        "version %u.%u", path, pre[6], pre[7]);
        goto out;
    }
    if (hlen > 65536) {
        error = set_err(errp, EINVAL, "%s: byte 8: .npy header length %u "
                        "too large", path, hlen);
        goto out;
    }
    uint64_t hoff = r.off;
    hdr = malloc(hlen + 1);
    if (!hdr) {
        error = set_err(errp, ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((error = reader_read(&r, hdr, hlen, "npy header", errp))) {
        goto out;
    }
    hdr[hlen] = '\0';
    const char *descr = npy_field(hdr, "descr");
    if (!descr || (strncmp(descr, "'|u1'", 5) && strncmp(descr, "'<u1'", 5)
                   && strncmp(descr, "'u1'", 4) && strncmp(descr, "'|b1'", 5)
                   && strncmp(descr, "'>u1'", 5))) {
        error = set_err(errp, EINVAL, "%s: byte %llu: dtype must be uint8 "
                        "('|u1'), header is: %s", path,
                        (unsigned long long) hoff, hdr);
        goto out;
    }
    const char *fo = npy_field(hdr, "fortran_order");
    if (!fo || strncmp(fo, "False", 5)) {
        error = set_err(errp, EINVAL, "%s: byte %llu: only C-order arrays "
                        "are supported", path, (unsigned long long) hoff);
        goto out;
    }
    const char *sh = npy_field(hdr, "shape");
    unsigned long long dims[4];
    int nd = 0;
    if (sh && *sh == '(') {
        const char *p = sh + 1;
        while (nd < 4) {
            while (*p == ' ') {
                p++;
            }
            if (!isdigit((unsigned char) *p)) {
                break;
            }
            char *end;
            dims[nd++] = strtoull(p, &end, 10);
            p = end;
            while (*p == ' ' || *p == ',' || *p == 'L') {
                p++;
            }
        }
    }
    uint32_t h, w;
    if (nd == 2 && dims[1] == 784) {
        h = w = 28;
    } else if (nd == 2) {
        unsigned long long s = (unsigned long long) sqrt((double) dims[1]);
        if (s * s != dims[1] || s == 0 || s > 4096) {
            error = set_err(errp, EINVAL, "%s: byte %llu: rows of %llu "
                            "pixels are not square images", path,
                            (unsigned long long) hoff, dims[1]);
            goto out;
        }
        h = w = (uint32_t) s;
    } else if (nd == 3 && dims[1] && dims[2] && dims[1] <= 4096
               && dims[2] <= 4096) {
        h = (uint32_t) dims[1];
        w = (uint32_t) dims[2];
    } else {
        error = set_err(errp, EINVAL, "%s: byte %llu: shape must be (N, "
                        "784) or (N, H, W), header is: %s", path,
                        (unsigned long long) hoff, hdr);
        goto out;
    }
    unsigned long long n = dims[0];
    if (max && n > max) {
        n = max;
    }
    if (n > 100000000ull) {
        error = set_err(errp, EINVAL, "%s: byte %llu: %llu records is "
                        "implausible", path, (unsigned long long) hoff, n);
        goto out;
    }
    size_t base = split->n;
    if ((error = split_reserve(split, h, w, (size_t) n, path, errp))) {
        goto out;
    }
    uint8_t *dst = split->pixels + base * (size_t) h * w;
    size_t per = (size_t) h * w;
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "record %zu", i);
        if ((error = reader_read(&r, dst + i * per, per, what, errp))) {
            goto out;
        }
        split->labels[base + i] = label;
    }
    split->n = base + n;
out:
    free(hdr);
    reader_close(&r);
    return error;
}

/* --- Stroke rendering ---------------------------------------------------- */

/* Draws the segment (x0,y0)-(x1,y1) (pixel units) with half width 'hw';
 * coverage falls off linearly over one pixel at the edge (anti-aliasing).
 * Overlapping strokes take the maximum, so crossings do not saturate. */
static void
draw_segment(uint8_t *img, uint32_t size, float x0, float y0, float x1,
             float y1, float hw)
{
    float r = hw + 1.0f;
    int xa = (int) floorf(fminf(x0, x1) - r), xb = (int) ceilf(fmaxf(x0, x1) + r);
    int ya = (int) floorf(fminf(y0, y1) - r), yb = (int) ceilf(fmaxf(y0, y1) + r);
    xa = xa < 0 ? 0 : xa;
    ya = ya < 0 ? 0 : ya;
    xb = xb >= (int) size ? (int) size - 1 : xb;
    yb = yb >= (int) size ? (int) size - 1 : yb;
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = ya; y <= yb; y++) {
        for (int x = xa; x <= xb; x++) {
            float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            float d = sqrtf(ex * ex + ey * ey);
            float c = hw + 0.5f - d;
            if (c > 0) {
                c = c > 1 ? 1 : c;
                uint8_t v = (uint8_t) lrintf(c * 255.0f);
                uint8_t *p = &img[(size_t) y * size + x];
                if (v > *p) {
                    *p = v;
                }
            }
        }
    }
}

void
dataset_render_strokes(uint8_t *img, uint32_t size, float line_width,
                       size_t n_strokes, const size_t *n_points,
                       const float *const *xs, const float *const *ys)
{
    memset(img, 0, (size_t) size * size);
    /* Simplified coordinates span [0,255]; keep a margin of half a line so
     * strokes on the border stay whole. */
    float margin = line_width * 0.5f + 0.5f;
    float scale = (size - 2 * margin) / 255.0f;
    float hw = line_width * 0.5f;
    for (size_t s = 0; s < n_strokes; s++) {
        for (size_t i = 0; i < n_points[s]; i++) {
            size_t j = i + 1 < n_points[s] ? i + 1 : i;
            draw_segment(img, size, margin + xs[s][i] * scale,
                         margin + ys[s][i] * scale, margin + xs[s][j] * scale,
                         margin + ys[s][j] * scale, hw);
        }
    }
}

/* Strokes of one drawing in a reusable buffer. */
struct strokes {
    size_t n, cap;
    size_t *n_points;
    float **xs, **ys;
};

static void
strokes_free(struct strokes *st)
{
    for (size_t i = 0; i < st->cap; i++) {
        free(st->xs[i]);
        free(st->ys[i]);
    }
    free(st->xs);
    free(st->ys);
    free(st->n_points);
    memset(st, 0, sizeof *st);
}

/* Makes stroke 'st->n' hold 'np' points and returns 0, or ENOMEM. */
static int
strokes_add(struct strokes *st, size_t np)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        size_t *npp = realloc(st->n_points, cap * sizeof *npp);
        float **xs = realloc(st->xs, cap * sizeof *xs);
        float **ys = xs ? realloc(st->ys, cap * sizeof *ys) : NULL;
        if (npp) {
            st->n_points = npp;
        }
        if (xs) {
            st->xs = xs;
        }
        if (ys) {
            st->ys = ys;
        }
        if (!npp || !xs || !ys) {
            return ENOMEM;
        }
        for (size_t i = st->cap; i < cap; i++) {
            st->xs[i] = st->ys[i] = NULL;
        }
        st->cap = cap;
    }
    float *x = realloc(st->xs[st->n], (np ? np : 1) * sizeof *x);
    if (x) {
        st->xs[st->n] = x;
    }
    float *y = realloc(st->ys[st->n], (np ? np : 1) * sizeof *y);
    if (y) {
        st->ys[st->n] = y;
    }
    if (!x || !y) {
        return ENOMEM;
    }
    st->n_points[st->n++] = np;
    return 0;
}

/* Coordinates outside [0,255] (QuickDraw "raw" data) are rescaled to fit,
 * keeping the aspect ratio, as the simplified data was produced. */
static void
strokes_normalise(struct strokes *st)
{
    float lo_x = INFINITY, lo_y = INFINITY, hi_x = -INFINITY, hi_y = -INFINITY;
    for (size_t s = 0; s < st->n; s++) {
        for (size_t i = 0; i < st->n_points[s]; i++) {
            lo_x = fminf(lo_x, st->xs[s][i]);
            hi_x = fmaxf(hi_x, st->xs[s][i]);
            lo_y = fminf(lo_y, st->ys[s][i]);
            hi_y = fmaxf(hi_y, st->ys[s][i]);
        }
    }
    if (lo_x >= 0 && lo_y >= 0 && hi_x <= 255 && hi_y <= 255) {
        return;
    }
    float span = fmaxf(hi_x - lo_x, hi_y - lo_y);
    float k = span > 0 ? 255.0f / span : 1.0f;
    for (size_t s = 0; s < st->n; s++) {
        for (size_t i = 0; i < st->n_points[s]; i++) {
            st->xs[s][i] = (st->xs[s][i] - lo_x) * k;
            st->ys[s][i] = (st->ys[s][i] - lo_y) * k;
        }
    }
}

static void
strokes_render(struct strokes *st, uint8_t *img, uint32_t size, float lw)
{
    strokes_normalise(st);
    dataset_render_strokes(img, size, lw, st->n, st->n_points,
                           (const float *const *) st->xs,
                           (const float *const *) st->ys);
}

/* --- simplified .ndjson -------------------------------------------------- */

/* Parses the "drawing" member of one ndjson record into 'st'.  Returns NULL
 * or a static description of what is wrong. */
static const char *
ndjson_strokes(const cJSON *rec, struct strokes *st)
{
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(rec, "drawing");
    if (!cJSON_IsArray(dr)) {
        return "no \"drawing\" array";
    }
    st->n = 0;
    const cJSON *stroke;
    cJSON_ArrayForEach(stroke, dr) {
        if (!cJSON_IsArray(stroke) || cJSON_GetArraySize(stroke) < 2) {
            return "a stroke is not an array of [x[], y[]]";
        }
        const cJSON *ax = cJSON_GetArrayItem(stroke, 0);
        const cJSON *ay = cJSON_GetArrayItem(stroke, 1);
        int np = cJSON_GetArraySize(ax);
        if (!cJSON_IsArray(ax) || !cJSON_IsArray(ay)
            || cJSON_GetArraySize(ay) != np) {
            return "stroke x and y arrays differ in length";
        }
        if (strokes_add(st, (size_t) np)) {
            return "out of memory";
        }
        size_t s = st->n - 1, i = 0;
        const cJSON *vx, *vy = ay->child;
        cJSON_ArrayForEach(vx, ax) {
            if (!cJSON_IsNumber(vx) || !vy || !cJSON_IsNumber(vy)
                || !isfinite(vx->valuedouble) || !isfinite(vy->valuedouble)) {
                return "stroke coordinate is not a number";
            }
            /* Beyond this a float overflows when rescaled (NaN pixels). */
            if (fabs(vx->valuedouble) > 1e6 || fabs(vy->valuedouble) > 1e6) {
                return "stroke coordinate out of range (|v| > 1e6)";
            }
            st->xs[s][i] = (float) vx->valuedouble;
            st->ys[s][i] = (float) vy->valuedouble;
            i++;
            vy = vy->next;
        }
    }
    return NULL;
}

int
dataset_read_ndjson(const char *path, uint32_t label, size_t max,
                    uint32_t size, float line_width,
                    struct dataset_split *split, char **errp)
{
    struct reader r = {0};
    struct strokes st = {0};
    char *line = NULL;
    size_t cap = 0, len, count = 0, split_cap = split->n;
    uint8_t *img = malloc((size_t) size * size);
    int error = img ? reader_open(&r, path, errp)
                    : set_err(errp, ENOMEM, "%s: out of memory", path);
    if (error) {
        free(img);
        return error;
    }
    for (size_t lineno = 1; !max || count < max; lineno++) {
        uint64_t off = r.off;
        int rc = reader_getline(&r, &line, &cap, &len, errp);
        if (rc < 0) {
            error = EIO;
            break;
        }
        if (rc == 0) {
            break;
        }
        if (len == 0) {
            continue;
        }
        cJSON *rec = cJSON_ParseWithLength(line, len);
        const char *bad = rec ? ndjson_strokes(rec, &st) : "invalid JSON";
        cJSON_Delete(rec);
        if (bad) {
            error = set_err(errp, EINVAL, "%s: line %zu (byte %llu): %s",
                            path, lineno, (unsigned long long) off, bad);
            break;
        }
        strokes_render(&st, img, size, line_width);
        if ((error = split_push(split, &split_cap, size, size, img, label,
                                path, errp))) {
            break;
        }
        count++;
    }
    free(line);
    free(img);
    strokes_free(&st);
    reader_close(&r);
    return error;
}

/* --- binary .bin --------------------------------------------------------
 * Per drawing, little-endian: key_id u64, countrycode 2 bytes, recognized
 * u8, timestamp u32, n_strokes u16, then per stroke n_points u16, x[n_points]
 * u8, y[n_points] u8. */

static uint16_t
le16(const uint8_t *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}

int
dataset_read_qdbin(const char *path, uint32_t label, size_t max,
                   uint32_t size, float line_width,
                   struct dataset_split *split, char **errp)
{
    struct reader r = {0};
    struct strokes st = {0};
    size_t count = 0, split_cap = split->n;
    uint8_t hdr[17], xy[2 * 65535];
    uint8_t *img = malloc((size_t) size * size);
    int error = img ? reader_open(&r, path, errp)
                    : set_err(errp, ENOMEM, "%s: out of memory", path);
    if (error) {
        free(img);
        return error;
    }
    while (!max || count < max) {
        uint64_t start = r.off;
        long long got = reader_read_some(&r, hdr, sizeof hdr, errp);
        if (got < 0) {
            error = EIO;
            break;
        }
        if (got == 0) {
            break;
        }
        if (got != sizeof hdr) {
            error = set_err(errp, EINVAL, "%s: truncated at byte %llu: "
                            "drawing %zu header needs 17 bytes, only %lld "
                            "left", path, (unsigned long long) start, count,
                            got);
            break;
        }
        size_t n_strokes = le16(hdr + 15);
        st.n = 0;
        for (size_t s = 0; !error && s < n_strokes; s++) {
            uint8_t npb[2];
            char what[96];
            snprintf(what, sizeof what, "drawing %zu stroke %zu point count",
                     count, s);
            if ((error = reader_read(&r, npb, 2, what, errp))) {
                break;
            }
            size_t np = le16(npb);
            snprintf(what, sizeof what, "drawing %zu stroke %zu coordinates",
                     count, s);
            if ((error = reader_read(&r, xy, 2 * np, what, errp))) {
                break;
            }
            if (strokes_add(&st, np)) {
                error = set_err(errp, ENOMEM, "%s: out of memory", path);
                break;
            }
            for (size_t i = 0; i < np; i++) {
                st.xs[s][i] = xy[i];
                st.ys[s][i] = xy[np + i];
            }
        }
        if (error) {
            break;
        }
        strokes_render(&st, img, size, line_width);
        if ((error = split_push(split, &split_cap, size, size, img, label,
                                path, errp))) {
            break;
        }
        count++;
    }
    free(img);
    strokes_free(&st);
    reader_close(&r);
    return error;
}

/* --- Directories and specs ----------------------------------------------- */

static bool
file_exists(const char *path)
{
    struct stat s;
    return !stat(path, &s) && S_ISREG(s.st_mode);
}

static bool
dir_exists(const char *path)
{
    struct stat s;
    return !stat(path, &s) && S_ISDIR(s.st_mode);
}

/* Finds DIR/BASE or DIR/BASE.gz (or dotted variants of IDX names). */
static char *
find_file(const char *dir, const char *base)
{
    static const char *const sfx[] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        char *p;
        if (asprintf(&p, "%s/%s%s", dir, base, sfx[i]) < 0) {
            return NULL;
        }
        if (file_exists(p)) {
            return p;
        }
        free(p);
    }
    return NULL;
}

static char *
find_idx(const char *dir, const char *prefix, const char *kind)
{
    char a[128];
    snprintf(a, sizeof a, "%s-%s-ubyte", prefix, kind);
    char *p = find_file(dir, a);
    if (!p) {
        /* Also "train-images.idx3-ubyte", as some mirrors name them. */
        char c[128];
        const char *dash = strchr(kind, '-');
        snprintf(c, sizeof c, "%s-%.*s.%s-ubyte", prefix,
                 (int) (dash - kind), kind, dash + 1);
        p = find_file(dir, c);
    }
    return p;
}

static const char *const fashion_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
    "Sneaker", "Bag", "Ankle boot"};

static int
open_idx(struct dataset *ds, const char *dir, bool fashion,
         const struct dataset_options *opts, char **errp)
{
    char *tri = find_idx(dir, "train", "images-idx3");
    char *trl = find_idx(dir, "train", "labels-idx1");
    char *tei = find_idx(dir, "t10k", "images-idx3");
    char *tel = find_idx(dir, "t10k", "labels-idx1");
    int error = 0;
    if (!tri || !trl || !tei || !tel) {
        error = set_err(errp, ENOENT, "%s: missing IDX files (want train-"
                        "images-idx3-ubyte, train-labels-idx1-ubyte, t10k-"
                        "images-idx3-ubyte, t10k-labels-idx1-ubyte, "
                        "optionally .gz)", dir);
        goto out;
    }
    if ((error = dataset_read_idx(tri, trl, &ds->train, errp))
        || (error = dataset_read_idx(tei, tel, &ds->test, errp))) {
        goto out;
    }
    if (ds->train.h != ds->test.h || ds->train.w != ds->test.w) {
        error = set_err(errp, EINVAL, "%s: train images are %ux%u but test "
                        "images %ux%u", dir, ds->train.h, ds->train.w,
                        ds->test.h, ds->test.w);
        goto out;
    }
    uint32_t maxl = 0;
    for (size_t i = 0; i < ds->train.n; i++) {
        maxl = ds->train.labels[i] > maxl ? ds->train.labels[i] : maxl;
    }
    for (size_t i = 0; i < ds->test.n; i++) {
        maxl = ds->test.labels[i] > maxl ? ds->test.labels[i] : maxl;
    }
    ds->n_classes = maxl + 1 < 10 ? 10 : maxl + 1;
    ds->class_names = calloc(ds->n_classes, sizeof *ds->class_names);
    if (!ds->class_names) {
        error = set_err(errp, ENOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < ds->n_classes; c++) {
        if (fashion && c < 10) {
            ds->class_names[c] = strdup(fashion_names[c]);
        } else if (asprintf(&ds->class_names[c], "%zu", c) < 0) {
            ds->class_names[c] = NULL;
        }
    }
    /* --per-class for IDX: the first N training images of each class. */
    if (opts->per_class) {
        size_t *seen = calloc(ds->n_classes, sizeof *seen), k = 0;
        size_t per = (size_t) ds->train.h * ds->train.w;
        for (size_t i = 0; seen && i < ds->train.n; i++) {
            uint32_t l = ds->train.labels[i];
            if (seen[l]++ < opts->per_class) {
                memmove(ds->train.pixels + k * per,
                        ds->train.pixels + i * per, per);
                ds->train.labels[k++] = l;
            }
        }
        free(seen);
        ds->train.n = k;
    }
out:
    free(tri);
    free(trl);
    free(tei);
    free(tel);
    return error;
}

/* QuickDraw file name patterns; '*' stands for the category. */
struct qd_pattern {
    const char *prefix, *suffix;
    enum dataset_format format;
};
static const struct qd_pattern qd_patterns[] = {
    {"full_numpy_bitmap_", ".npy", DATASET_FORMAT_NPY},
    {"", ".npy", DATASET_FORMAT_NPY},
    {"full_binary_", ".bin", DATASET_FORMAT_BIN},
    {"", ".bin", DATASET_FORMAT_BIN},
    {"full_simplified_", ".ndjson", DATASET_FORMAT_NDJSON},
    {"full_raw_", ".ndjson", DATASET_FORMAT_NDJSON},
    {"", ".ndjson", DATASET_FORMAT_NDJSON},
};
#define N_QD_PATTERNS (sizeof qd_patterns / sizeof *qd_patterns)

/* If 'name' matches a pattern (with or without .gz) returns the category
 * (malloc'd) and sets *fmt. */
static char *
qd_match(const char *name, enum dataset_format *fmt)
{
    size_t len = strlen(name);
    if (len > 3 && !strcmp(name + len - 3, ".gz")) {
        len -= 3;
    }
    for (size_t i = 0; i < N_QD_PATTERNS; i++) {
        const struct qd_pattern *p = &qd_patterns[i];
        size_t pl = strlen(p->prefix), sl = strlen(p->suffix);
        if (len > pl + sl && !strncmp(name, p->prefix, pl)
            && !strncmp(name + len - sl, p->suffix, sl)) {
            *fmt = p->format;
            return strndup(name + pl, len - pl - sl);
        }
    }
    return NULL;
}

/* Path of the file for 'cat' in 'dir', preferring formats in the order of
 * qd_patterns (npy, bin, ndjson) unless 'want' selects one. */
static char *
qd_category_file(const char *dir, const char *cat, enum dataset_format want,
                 enum dataset_format *fmt)
{
    for (size_t i = 0; i < N_QD_PATTERNS; i++) {
        const struct qd_pattern *p = &qd_patterns[i];
        if (want != DATASET_FORMAT_AUTO && want != p->format) {
            continue;
        }
        char base[512];
        snprintf(base, sizeof base, "%s%s%s", p->prefix, cat, p->suffix);
        char *path = find_file(dir, base);
        if (path) {
            *fmt = p->format;
            return path;
        }
    }
    return NULL;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Category names: categories.txt, else distinct names from the files. */
static int
qd_categories(const char *dir, char ***namesp, size_t *np, char **errp)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    char *txt;
    if (asprintf(&txt, "%s/categories.txt", dir) < 0) {
        return set_err(errp, ENOMEM, "out of memory");
    }
    FILE *f = fopen(txt, "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            size_t l = strcspn(line, "\r\n");
            line[l] = '\0';
            while (l && isspace((unsigned char) line[l - 1])) {
                line[--l] = '\0';
            }
            if (!l) {
                continue;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                names = realloc(names, cap * sizeof *names);
            }
            names[n++] = strdup(line);
        }
        fclose(f);
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            int error = errno;
            free(txt);
            return set_err(errp, error, "%s: cannot open directory: %s", dir,
                           strerror(error));
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            enum dataset_format fmt;
            char *cat = qd_match(de->d_name, &fmt);
            if (!cat) {
                continue;
            }
            bool dup = false;
            for (size_t i = 0; i < n && !dup; i++) {
                dup = !strcmp(names[i], cat);
            }
            if (dup) {
                free(cat);
                continue;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                names = realloc(names, cap * sizeof *names);
            }
            names[n++] = cat;
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp_str);
    }
    free(txt);
    if (!n) {
        free(names);
        return set_err(errp, ENOENT, "%s: no QuickDraw files (want "
                       "<category>.npy/.ndjson/.bin or full_numpy_bitmap_"
                       "<category>.npy ...) and no categories.txt", dir);
    }
    *namesp = names;
    *np = n;
    return 0;
}

/* Fisher-Yates permutation of 0..n-1 from 'seed'. */
static size_t *
permutation(size_t n, uint64_t seed)
{
    size_t *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        p[i] = i;
    }
    uint64_t s = seed;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t) (et_rng_next(&s) % i);
        size_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

static int
open_quickdraw(struct dataset *ds, const char *dir,
               const struct dataset_options *opts, char **errp)
{
    char **cats = NULL;
    size_t n_cats = 0;
    int error = qd_categories(dir, &cats, &n_cats, errp);
    if (error) {
        return error;
    }
    ds->n_classes = n_cats;
    ds->class_names = cats;
    struct dataset_split all = {0};
    for (size_t c = 0; c < n_cats && !error; c++) {
        enum dataset_format fmt;
        char *path = qd_category_file(dir, cats[c], opts->format, &fmt);
        if (!path) {
            error = set_err(errp, ENOENT, "%s: no file for category \"%s\"",
                            dir, cats[c]);
            break;
        }
        size_t before = all.n;
        switch (fmt) {
        case DATASET_FORMAT_NPY:
            error = dataset_read_npy(path, (uint32_t) c, opts->per_class,
                                     &all, errp);
            break;
        case DATASET_FORMAT_BIN:
            error = dataset_read_qdbin(path, (uint32_t) c, opts->per_class,
                                       opts->render_size, opts->line_width,
                                       &all, errp);
            break;
        case DATASET_FORMAT_NDJSON:
        case DATASET_FORMAT_AUTO:
        default:
            error = dataset_read_ndjson(path, (uint32_t) c, opts->per_class,
                                        opts->render_size, opts->line_width,
                                        &all, errp);
            break;
        }
        if (!error && all.n == before) {
            error = set_err(errp, EINVAL, "%s: no drawings", path);
        }
        free(path);
        if (error) {
            break;
        }
        /* Per-category held-out split, so every class is in the test set in
         * proportion. */
        size_t nc = all.n - before;
        size_t nt = (size_t) llround(nc * opts->test_fraction);
        if (opts->test_fraction > 0 && nt == 0 && nc > 1) {
            nt = 1;
        }
        size_t *perm = permutation(nc, DATASET_SPLIT_SEED ^ (c * 0x9e37ull));
        if (!perm) {
            error = set_err(errp, ENOMEM, "out of memory");
            break;
        }
        uint32_t h = all.h, w = all.w;
        size_t per = (size_t) h * w;
        if ((error = split_reserve(&ds->test, h, w, nt, dir, errp))
            || (error = split_reserve(&ds->train, h, w, nc - nt, dir,
                                      errp))) {
            free(perm);
            break;
        }
        /* Keep file order within each side: test = records whose permuted
         * rank is below nt. */
        bool *is_test = calloc(nc ? nc : 1, 1);
        for (size_t i = 0; is_test && i < nt; i++) {
            is_test[perm[i]] = true;
        }
        for (size_t i = 0; is_test && i < nc; i++) {
            struct dataset_split *dst = is_test[i] ? &ds->test : &ds->train;
            memcpy(dst->pixels + dst->n * per,
                   all.pixels + (before + i) * per, per);
            dst->labels[dst->n++] = (uint32_t) c;
        }
        free(is_test);
        free(perm);
        /* The category's images are distributed; reuse the buffer. */
        all.n = before = 0;
    }
    dataset_split_free(&all);
    return error;
}

/* Keeps a deterministic random subset of 'limit' images of 'split', in
 * their original order. */
static int
split_limit(struct dataset_split *split, size_t limit, uint64_t seed)
{
    if (!limit || split->n <= limit) {
        return 0;
    }
    size_t *perm = permutation(split->n, seed);
    bool *keep = calloc(split->n, 1);
    if (!perm || !keep) {
        free(perm);
        free(keep);
        return ENOMEM;
    }
    for (size_t i = 0; i < limit; i++) {
        keep[perm[i]] = true;
    }
    size_t per = (size_t) split->h * split->w, k = 0;
    for (size_t i = 0; i < split->n; i++) {
        if (keep[i]) {
            memmove(split->pixels + k * per, split->pixels + i * per, per);
            split->labels[k++] = split->labels[i];
        }
    }
    split->n = k;
    free(perm);
    free(keep);
    return 0;
}

int
dataset_open(const char *spec, const struct dataset_options *opts_,
             struct dataset **dsp, char **errp)
{
    struct dataset_options defaults;
    const struct dataset_options *opts = opts_;
    if (!opts) {
        dataset_options_init(&defaults);
        opts = &defaults;
    }
    *dsp = NULL;
    if (opts->test_fraction < 0 || opts->test_fraction >= 1) {
        return set_err(errp, EINVAL, "test fraction %g must be in [0, 1)",
                       opts->test_fraction);
    }
    if (opts->render_size < 8 || opts->render_size > 1024) {
        return set_err(errp, EINVAL, "render size %u must be in [8, 1024]",
                       opts->render_size);
    }
    struct dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        return set_err(errp, ENOMEM, "out of memory");
    }
    int error;
    bool quickdraw = !strncmp(spec, "quickdraw:", 10);
    const char *dir = quickdraw ? spec + 10 : spec;
    char *sys = NULL;
    if (!quickdraw && (!strcmp(spec, "fashion-mnist")
                       || !strcmp(spec, "mnist"))) {
        if (asprintf(&sys, "/usr/share/datasets/%s", spec) < 0) {
            sys = NULL;
        }
        dir = sys;
        if (!dir || !dir_exists(dir)) {
            error = set_err(errp, ENOENT, "%s: not found (install Debian's "
                            "dataset-%s package or give a directory)",
                            dir ? dir : spec, spec);
            free(sys);
            free(ds);
            return error;
        }
    }
    if (!dir_exists(dir)) {
        error = set_err(errp, ENOENT, "%s: no such dataset directory (want "
                        "fashion-mnist, mnist, a directory of IDX or "
                        "QuickDraw files, or quickdraw:DIR)", dir);
        free(ds);
        return error;
    }
    ds->path = strdup(dir);
    char *idx = quickdraw ? NULL : find_idx(dir, "train", "images-idx3");
    if (idx) {
        bool fashion = strstr(dir, "fashion") != NULL;
        ds->name = strdup(fashion ? "fashion-mnist" : "mnist");
        error = open_idx(ds, dir, fashion, opts, errp);
    } else {
        ds->name = strdup("quickdraw");
        error = open_quickdraw(ds, dir, opts, errp);
    }
    free(idx);
    free(sys);
    if (!error && (split_limit(&ds->train, opts->train_limit,
                               DATASET_SPLIT_SEED + 1)
                   || split_limit(&ds->test, opts->test_limit,
                                  DATASET_SPLIT_SEED + 2))) {
        error = set_err(errp, ENOMEM, "out of memory");
    }
    if (!error && (!ds->train.n || !ds->test.n)) {
        error = set_err(errp, EINVAL, "%s: %zu training and %zu test images "
                        "(need both)", dir, ds->train.n, ds->test.n);
    }
    if (error) {
        dataset_destroy(ds);
        return error;
    }
    /* Normalisation statistics over the training pixels. */
    double sum = 0, sq = 0;
    size_t total = ds->train.n * (size_t) ds->train.h * ds->train.w;
    for (size_t i = 0; i < total; i++) {
        double v = ds->train.pixels[i] * (1.0 / 255.0);
        sum += v;
        sq += v * v;
    }
    double mean = sum / (double) total;
    double var = sq / (double) total - mean * mean;
    ds->mean = (float) mean;
    ds->std = (float) (var > 1e-8 ? sqrt(var) : 1.0);
    *dsp = ds;
    return 0;
}

void
dataset_destroy(struct dataset *ds)
{
    if (!ds) {
        return;
    }
    for (size_t c = 0; ds->class_names && c < ds->n_classes; c++) {
        free(ds->class_names[c]);
    }
    free(ds->class_names);
    dataset_split_free(&ds->train);
    dataset_split_free(&ds->test);
    free(ds->name);
    free(ds->path);
    free(ds);
}
