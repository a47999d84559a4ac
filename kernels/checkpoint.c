/* Stage checkpoints: a self-describing little-endian blob with a CRC32.
 *
 *   "ETCKPT\r\n"  version u32  flags u32 (bit 0: optimiser state)
 *   alpha f32  input u32  in_channels u32  classes u32  head_pool u32
 *   first u32  last u32  opt_kind u32  opt_step u64  opt_floats u64
 *   n_params u64  n_bufs u64  n_tensors u32
 *   n_tensors x { name char[32], ndim u32, dims u32[4] }
 *   params f32[n_params]  bufs f32[n_bufs]  opt f32[opt_floats]
 *   crc32 u32 (zlib CRC-32 of every byte before it)
 *
 * The reader checks bounds before every read, so any byte string is safe
 * to hand to it (the fuzz target does). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "model_internal.h"

#define CKPT_MAGIC "ETCKPT\r\n"
#define CKPT_VERSION 1u
#define CKPT_NAME 32

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

/* ---- writer ------------------------------------------------------------------*/

struct wbuf {
    uint8_t *p;
    size_t len;
};

static void
put_bytes(struct wbuf *w, const void *src, size_t n)
{
    if (n) {                    /* src may be NULL (no optimiser state) */
        memcpy(w->p + w->len, src, n);
    }
    w->len += n;
}

static void
put_u32(struct wbuf *w, uint32_t v)
{
    uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};
    put_bytes(w, b, 4);
}

static void
put_u64(struct wbuf *w, uint64_t v)
{
    put_u32(w, (uint32_t) v);
    put_u32(w, (uint32_t) (v >> 32));
}

static void
put_floats(struct wbuf *w, const float *f, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    put_bytes(w, f, n * 4);
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, &f[i], 4);
        put_u32(w, v);
    }
#endif
}

static size_t
header_size(size_t n_tensors)
{
    return 8 + 4 * 2 + 4 * 5 + 4 * 3 + 8 * 2 + 8 * 2 + 4
           + n_tensors * (CKPT_NAME + 4 + 16);
}

int
mn_stage_save_buf(const struct mn_stage *s, bool with_optim, uint8_t **buf,
                  size_t *len)
{
    size_t opt = with_optim && s->opt ? s->opt_floats : 0;
    size_t total = header_size(s->n_tensors)
                   + 4 * (s->n_params + s->n_bufs + opt) + 4;
    struct wbuf w = {malloc(total), 0};
    if (!w.p) {
        return ENOMEM;
    }
    put_bytes(&w, CKPT_MAGIC, 8);
    put_u32(&w, CKPT_VERSION);
    put_u32(&w, opt ? 1 : 0);
    uint32_t alpha;
    memcpy(&alpha, &s->cfg.alpha, 4);
    put_u32(&w, alpha);
    put_u32(&w, (uint32_t) s->cfg.input_size);
    put_u32(&w, (uint32_t) s->cfg.in_channels);
    put_u32(&w, (uint32_t) s->cfg.classes);
    put_u32(&w, (uint32_t) s->cfg.head_pool);
    put_u32(&w, (uint32_t) s->first);
    put_u32(&w, (uint32_t) s->last);
    put_u32(&w, opt ? (uint32_t) s->opt_kind : 0);
    put_u64(&w, opt ? (uint64_t) s->opt_step : 0);
    put_u64(&w, opt);
    put_u64(&w, s->n_params);
    put_u64(&w, s->n_bufs);
    put_u32(&w, (uint32_t) s->n_tensors);
    for (size_t i = 0; i < s->n_tensors; i++) {
        const struct mn_tensor *t = &s->tensors[i];
        char name[CKPT_NAME] = {0};
        strncpy(name, t->name, CKPT_NAME - 1);
        put_bytes(&w, name, CKPT_NAME);
        put_u32(&w, (uint32_t) t->ndim);
        for (int d = 0; d < 4; d++) {
            put_u32(&w, (uint32_t) t->dims[d]);
        }
    }
    put_floats(&w, s->params, s->n_params);
    put_floats(&w, s->bufs, s->n_bufs);
    put_floats(&w, s->opt, opt);
    put_u32(&w, (uint32_t) crc32(0L, w.p, (uInt) w.len));
    *buf = w.p;
    *len = w.len;
    return 0;
}

uint32_t
mn_checkpoint_crc(const uint8_t *buf, size_t len)
{
    return len < 4 ? 0 : (uint32_t) crc32(0L, buf, (uInt) (len - 4));
}

/* ---- reader ------------------------------------------------------------------*/

struct rbuf {
    const uint8_t *p;
    size_t len, off;
};

static bool
get_bytes(struct rbuf *r, void *dst, size_t n)
{
    if (r->len - r->off < n) {
        return false;
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return true;
}

static bool
get_u32(struct rbuf *r, uint32_t *v)
{
    uint8_t b[4];
    if (!get_bytes(r, b, 4)) {
        return false;
    }
    *v = b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16
         | (uint32_t) b[3] << 24;
    return true;
}

static bool
get_u64(struct rbuf *r, uint64_t *v)
{
    uint32_t lo, hi;
    if (!get_u32(r, &lo) || !get_u32(r, &hi)) {
        return false;
    }
    *v = lo | (uint64_t) hi << 32;
    return true;
}

static void
get_floats(struct rbuf *r, float *f, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(f, r->p + r->off, n * 4);
    r->off += n * 4;
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        get_u32(r, &v);
        memcpy(&f[i], &v, 4);
    }
#endif
}

struct ckpt_header {
    uint32_t version, flags, input, in_channels, classes, head_pool;
    uint32_t first, last, opt_kind, n_tensors;
    float alpha;
    uint64_t opt_step, opt_floats, n_params, n_bufs;
    size_t tensors_off;           /* where the tensor table starts */
    size_t data_off;              /* where the floats start */
};

/* Parses and checks magic, CRC, version and sizes. */
static int
parse_header(const uint8_t *buf, size_t len, struct ckpt_header *h,
             char *err, size_t errlen)
{
    struct rbuf r = {buf, len, 0};
    char magic[8];
    if (len < 12 || !get_bytes(&r, magic, 8) || memcmp(magic, CKPT_MAGIC, 8)) {
        set_err(err, errlen, "not an edgetrain checkpoint (bad magic)");
        return EINVAL;
    }
    uint32_t crc_stored = buf[len - 4] | (uint32_t) buf[len - 3] << 8
                          | (uint32_t) buf[len - 2] << 16
                          | (uint32_t) buf[len - 1] << 24;
    uint32_t crc = (uint32_t) crc32(0L, buf, (uInt) (len - 4));
    if (crc != crc_stored) {
        set_err(err, errlen, "checkpoint corrupt: CRC32 %08x, expected %08x "
                "(%zu bytes)", crc, crc_stored, len);
        return EINVAL;
    }
    uint32_t alpha;
    if (!get_u32(&r, &h->version) || h->version != CKPT_VERSION) {
        set_err(err, errlen, "checkpoint format version %u unsupported "
                "(this build reads %u)", h->version, CKPT_VERSION);
        return EINVAL;
    }
    if (!get_u32(&r, &h->flags) || !get_u32(&r, &alpha)
        || !get_u32(&r, &h->input) || !get_u32(&r, &h->in_channels)
        || !get_u32(&r, &h->classes) || !get_u32(&r, &h->head_pool)
        || !get_u32(&r, &h->first) || !get_u32(&r, &h->last)
        || !get_u32(&r, &h->opt_kind) || !get_u64(&r, &h->opt_step)
        || !get_u64(&r, &h->opt_floats) || !get_u64(&r, &h->n_params)
        || !get_u64(&r, &h->n_bufs) || !get_u32(&r, &h->n_tensors)) {
        set_err(err, errlen, "checkpoint truncated in its header");
        return EINVAL;
    }
    memcpy(&h->alpha, &alpha, 4);
    h->tensors_off = r.off;
    if (h->n_tensors > MN_MAX_TENSORS
        || h->n_params > len / 4 || h->n_bufs > len / 4
        || h->opt_floats > len / 4) {
        set_err(err, errlen, "checkpoint header has impossible sizes");
        return EINVAL;
    }
    h->data_off = h->tensors_off + h->n_tensors * (CKPT_NAME + 4 + 16);
    uint64_t need = h->data_off
                    + 4 * (h->n_params + h->n_bufs + h->opt_floats) + 4;
    if (need != len) {
        set_err(err, errlen, "checkpoint is %zu bytes, its header says %llu",
                len, (unsigned long long) need);
        return EINVAL;
    }
    return 0;
}

int
mn_checkpoint_info(const uint8_t *buf, size_t len, struct mn_config *c,
                   int *first, int *last, char *err, size_t errlen)
{
    struct ckpt_header h;
    int e = parse_header(buf, len, &h, err, errlen);
    if (e) {
        return e;
    }
    mn_config_default(c);
    c->alpha = h.alpha;
    c->input_size = (int) h.input;
    c->in_channels = (int) h.in_channels;
    c->classes = (int) h.classes;
    c->head_pool = (int) h.head_pool;
    *first = (int) h.first;
    *last = (int) h.last;
    return 0;
}

int
mn_stage_load_buf(struct mn_stage *s, const uint8_t *buf, size_t len,
                  char *err, size_t errlen)
{
    struct ckpt_header h;
    int e = parse_header(buf, len, &h, err, errlen);
    if (e) {
        return e;
    }
    const struct mn_config *c = &s->cfg;
    if (h.alpha != c->alpha || h.input != (uint32_t) c->input_size
        || h.in_channels != (uint32_t) c->in_channels
        || h.classes != (uint32_t) c->classes
        || h.head_pool != (uint32_t) c->head_pool) {
        set_err(err, errlen, "checkpoint is for alpha %g input %u x%u "
                "classes %u head_pool %u; stage has alpha %g input %d x%d "
                "classes %d head_pool %d", h.alpha, h.input, h.in_channels,
                h.classes, h.head_pool, c->alpha, c->input_size,
                c->in_channels, c->classes, c->head_pool);
        return EINVAL;
    }
    if (h.first != (uint32_t) s->first || h.last != (uint32_t) s->last) {
        set_err(err, errlen, "checkpoint holds blocks %u-%u, stage is "
                "blocks %d-%d", h.first, h.last, s->first, s->last);
        return EINVAL;
    }
    if (h.n_tensors != s->n_tensors || h.n_params != s->n_params
        || h.n_bufs != s->n_bufs) {
        set_err(err, errlen, "checkpoint has %u tensors / %llu parameters, "
                "stage has %zu / %zu", h.n_tensors,
                (unsigned long long) h.n_params, s->n_tensors, s->n_params);
        return EINVAL;
    }
    struct rbuf r = {buf, len, h.tensors_off};
    for (size_t i = 0; i < s->n_tensors; i++) {
        const struct mn_tensor *t = &s->tensors[i];
        char name[CKPT_NAME + 1] = {0};
        uint32_t ndim = 0, dims[4] = {0};
        get_bytes(&r, name, CKPT_NAME);
        get_u32(&r, &ndim);
        for (int d = 0; d < 4; d++) {
            get_u32(&r, &dims[d]);
        }
        bool same = !strcmp(name, t->name) && ndim == (uint32_t) t->ndim;
        for (int d = 0; d < 4 && same; d++) {
            same = dims[d] == (uint32_t) t->dims[d];
        }
        if (!same) {
            set_err(err, errlen, "checkpoint tensor %zu is '%.32s' (%u-d "
                    "%ux%ux%ux%u), stage expects '%s' (%d-d %dx%dx%dx%d)",
                    i, name, ndim, dims[0], dims[1], dims[2], dims[3],
                    t->name, t->ndim, t->dims[0], t->dims[1], t->dims[2],
                    t->dims[3]);
            return EINVAL;
        }
    }
    bool with_opt = (h.flags & 1) && h.opt_floats > 0;
    uint64_t want = h.opt_kind == MN_SGD ? s->n_params : 2 * s->n_params;
    if (with_opt && (h.opt_kind > MN_ADAMW || h.opt_floats != want)) {
        set_err(err, errlen, "checkpoint optimiser state (kind %u, %llu "
                "floats) does not fit the stage", h.opt_kind,
                (unsigned long long) h.opt_floats);
        return EINVAL;
    }
    float *opt = NULL;
    if (with_opt && !(opt = malloc(h.opt_floats * sizeof *opt))) {
        set_err(err, errlen, "out of memory for optimiser state");
        return ENOMEM;
    }
    /* Everything checked: now change the stage. */
    get_floats(&r, s->params, s->n_params);
    get_floats(&r, s->bufs, s->n_bufs);
    free(s->opt);
    s->opt = opt;
    s->opt_floats = with_opt ? h.opt_floats : 0;
    s->opt_kind = with_opt ? (int) h.opt_kind : -1;
    s->opt_step = with_opt ? (long) h.opt_step : 0;
    if (with_opt) {
        get_floats(&r, s->opt, s->opt_floats);
    }
    return 0;
}

int
mn_stage_save(const struct mn_stage *s, const char *path, bool with_optim,
              char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    int e = mn_stage_save_buf(s, with_optim, &buf, &len);
    if (e) {
        set_err(err, errlen, "%s: %s", path, strerror(e));
        return e;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        e = errno;
        set_err(err, errlen, "%s: %s", tmp, strerror(e));
        free(buf);
        return e;
    }
    bool ok = fwrite(buf, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    free(buf);
    if (!ok || rename(tmp, path)) {
        e = errno ? errno : EIO;
        set_err(err, errlen, "%s: write failed: %s", path, strerror(e));
        remove(tmp);
        return e;
    }
    return 0;
}

int
mn_stage_load(struct mn_stage *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        set_err(err, errlen, "%s: %s", path, strerror(e));
        return e;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                set_err(err, errlen, "%s: out of memory", path);
                return ENOMEM;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    bool rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        set_err(err, errlen, "%s: read error", path);
        return EIO;
    }
    char msg[256];
    int e = mn_stage_load_buf(s, buf, len, msg, sizeof msg);
    free(buf);
    if (e) {
        set_err(err, errlen, "%s: %s", path, msg);
    }
    return e;
}
