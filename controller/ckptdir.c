/* ckptdir: the controller's checkpoint copies on disk. See ckptdir.h. */
#include "ckptdir.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckptstore.h"
#include "log.h"
#include "model.h"
#include "wire.h"

#define SUFFIX ".ckpt"

/* "<digits>" as a uint32_t, no sign, no leading '+', at most 9 digits so it
 * never overflows; advances '*p'. */
static bool
take_u32(const char **p, uint32_t *v)
{
    const char *s = *p;
    uint32_t x = 0;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 9) {
        x = x * 10 + (uint32_t) (s[n] - '0');
        n++;
    }
    if (!n || (s[n] >= '0' && s[n] <= '9')) {
        return false;
    }
    *p = s + n;
    *v = x;
    return true;
}

/* The tail "-<16 hex>-b<F>-<L>-e<E>" starting at 's' (which must end
 * there, suffix already cut). */
static bool
parse_tail(const char *s, uint64_t *run_id, uint32_t *first, uint32_t *last,
           uint32_t *epoch)
{
    uint64_t run = 0;
    if (*s++ != '-') {
        return false;
    }
    for (int i = 0; i < 16; i++, s++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0'
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
        if (d < 0) {
            return false;
        }
        run = run << 4 | (uint64_t) d;
    }
    if (strncmp(s, "-b", 2)) {
        return false;
    }
    s += 2;
    if (!take_u32(&s, first) || *s++ != '-' || !take_u32(&s, last)
        || strncmp(s, "-e", 2)) {
        return false;
    }
    s += 2;
    if (!take_u32(&s, epoch) || *s) {
        return false;
    }
    *run_id = run;
    return true;
}

int
ckptdir_parse_name(const char *fname, char *producer, size_t producer_size,
                   uint64_t *run_id, uint32_t *first, uint32_t *last,
                   uint32_t *epoch)
{
    size_t n = strlen(fname), sl = strlen(SUFFIX);
    if (n <= sl || strcmp(fname + n - sl, SUFFIX) || n - sl >= 256) {
        return EINVAL;
    }
    char base[256];
    memcpy(base, fname, n - sl);
    base[n - sl] = '\0';
    /* The producer may hold '-': the first '-' where the whole tail
     * parses ends it. */
    for (const char *p = strchr(base + 1, '-'); p; p = strchr(p + 1, '-')) {
        if (parse_tail(p, run_id, first, last, epoch)) {
            size_t pl = (size_t) (p - base);
            if (pl >= producer_size || !*first || *last < *first
                || !*epoch) {
                return EINVAL;
            }
            memcpy(producer, base, pl);
            producer[pl] = '\0';
            return 0;
        }
    }
    return EINVAL;
}

/* Reads 'path' whole (at most the wire's payload limit, what a Checkpoint
 * frame can carry). Returns 0 with a malloc'd '*buf', or an errno with the
 * reason in 'err'. */
static int
read_whole(const char *path, uint8_t **buf, size_t *len, char *err,
           size_t err_size)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb)) {
        int e = errno;
        snprintf(err, err_size, "cannot read: %s", strerror(e));
        if (f) {
            fclose(f);
        }
        return e;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size > ET_WIRE_MAX_PAYLOAD) {
        snprintf(err, err_size, "%s", S_ISREG(sb.st_mode)
                 ? "larger than any checkpoint frame" : "not a regular file");
        fclose(f);
        return EINVAL;
    }
    size_t n = (size_t) sb.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b || fread(b, 1, n, f) != n) {
        snprintf(err, err_size, "%s", b ? "short read" : "no memory");
        free(b);
        fclose(f);
        return b ? EIO : ENOMEM;
    }
    fclose(f);
    *buf = b;
    *len = n;
    return 0;
}

/* Deletes the files of run 'run_id', blocks first..last, with an epoch
 * below 'below'. */
static void
prune(const char *dir, uint64_t run_id, uint32_t first, uint32_t last,
      uint32_t below)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char producer[64];
        uint64_t r;
        uint32_t f, l, e;
        if (ckptdir_parse_name(de->d_name, producer, sizeof producer, &r, &f,
                               &l, &e)
            || r != run_id || f != first || l != last || e >= below) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path)) {
            ET_WARN("checkpoints: cannot delete %s: %s", path,
                    strerror(errno));
        } else {
            ET_INFO("checkpoints: deleted %s (older than the newest epochs "
                    "kept)", path);
        }
    }
    closedir(d);
}

int
ckptdir_write(const char *dir, const char *producer, uint64_t run_id,
              uint32_t first, uint32_t last, uint32_t epoch,
              const uint8_t *buf, size_t len, size_t keep, char *err,
              size_t err_size)
{
    char path[1024], tmp[1040];
    snprintf(path, sizeof path, "%s/%s-%016" PRIx64 "-b%u-%u-e%u" SUFFIX, dir,
             producer, run_id, first, last, epoch);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int e = 0;
    if (!f || fwrite(buf, 1, len, f) != len) {
        e = errno ? errno : EIO;
    }
    if (f && fclose(f) && !e) {
        e = errno ? errno : EIO;
    }
    if (!e && rename(tmp, path)) {
        e = errno;
    }
    if (e) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(e));
        unlink(tmp);
        return e;
    }
    if (keep && epoch > keep) {
        prune(dir, run_id, first, last, epoch - (uint32_t) keep + 1);
    }
    return 0;
}

static bool
has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Checks one directory entry; adds it to 'ix' or logs why not. */
static void
scan_one(struct ckptdir_index *ix, const char *fname, size_t *cap)
{
    char path[1024], why[256];
    snprintf(path, sizeof path, "%s/%s", ix->dir, fname);
    struct ckptdir_file x;
    memset(&x, 0, sizeof x);
    uint8_t *buf = NULL;
    size_t len = 0;
    int e = EINVAL;
    if (strlen(fname) >= sizeof x.name
        || ckptdir_parse_name(fname, x.producer, sizeof x.producer,
                              &x.run_id, &x.first, &x.last, &x.epoch)) {
        snprintf(why, sizeof why, "not a checkpoint file name "
                 "(<agent>-<run id>-b<first>-<last>-e<epoch>" SUFFIX ")");
    } else if (!(e = read_whole(path, &buf, &len, why, sizeof why))) {
        e = ckptstore_check(buf, len, x.first, x.last, why, sizeof why);
    }
    free(buf);
    if (!e && ix->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        struct ckptdir_file *nf = realloc(ix->files, nc * sizeof *nf);
        if (!nf) {
            snprintf(why, sizeof why, "no memory for the file list");
            e = ENOMEM;
        } else {
            ix->files = nf;
            *cap = nc;
        }
    }
    if (e) {
        ET_WARN("checkpoints: %s skipped: %s", path, why);
        ix->skipped++;
        return;
    }
    snprintf(x.name, sizeof x.name, "%s", fname);
    ix->files[ix->n++] = x;
}

int
ckptdir_scan(const char *dir, struct ckptdir_index *ix)
{
    ix->dir = strdup(dir);
    DIR *d = ix->dir ? opendir(dir) : NULL;
    if (!d) {
        int e = ix->dir ? errno : ENOMEM;
        ET_WARN("checkpoints: cannot read %s: %s", dir, strerror(e));
        return e;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        if (has_suffix(de->d_name, SUFFIX ".tmp")) {
            /* A write the previous controller did not finish. */
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            ET_WARN("checkpoints: %s is a write cut short: deleted", path);
            unlink(path);
            continue;
        }
        scan_one(ix, de->d_name, &cap);
    }
    closedir(d);
    ET_INFO("checkpoints: %s holds %zu valid checkpoint files (%zu skipped)",
            dir, ix->n, ix->skipped);
    return 0;
}

/* The newest epoch of run 'run_id', blocks first..last, in 'ix'. */
static uint32_t
newest_epoch(const struct ckptdir_index *ix, uint64_t run_id, uint32_t first,
             uint32_t last)
{
    uint32_t e = 0;
    for (size_t i = 0; i < ix->n; i++) {
        const struct ckptdir_file *x = &ix->files[i];
        if (x->run_id == run_id && x->first == first && x->last == last
            && x->epoch > e) {
            e = x->epoch;
        }
    }
    return e;
}

size_t
ckptdir_load(const struct ckptdir_index *ix, struct ckptstore *st,
             uint64_t run_id, size_t keep)
{
    size_t loaded = 0;
    bool *done = calloc(ix->n + 1, sizeof *done);
    if (!done) {
        return 0;
    }
    for (size_t i = 0; i < ix->n; i++) {
        const struct ckptdir_file *x = &ix->files[i];
        if (x->run_id != run_id || done[i]) {
            continue;
        }
        uint32_t newest = newest_epoch(ix, run_id, x->first, x->last);
        uint32_t from = newest > keep ? newest - (uint32_t) keep + 1 : 1;
        /* Every file of this range at once, then its older files go. */
        for (size_t j = i; j < ix->n; j++) {
            const struct ckptdir_file *y = &ix->files[j];
            if (y->run_id != run_id || y->first != x->first
                || y->last != x->last) {
                continue;
            }
            done[j] = true;
            if (y->epoch < from) {
                continue;
            }
            char path[1024], err[256];
            snprintf(path, sizeof path, "%s/%s", ix->dir, y->name);
            uint8_t *buf = NULL;
            size_t len = 0;
            int e = read_whole(path, &buf, &len, err, sizeof err);
            if (!e) {
                bool had = ckptstore_get(st, run_id, y->first, y->last,
                                         y->epoch) != NULL;
                e = ckptstore_put(st, y->producer, run_id, y->first, y->last,
                                  y->epoch, mn_checkpoint_crc(buf, len),
                                  buf, len, err, sizeof err);
                loaded += !e && !had;
            }
            free(buf);
            if (e) {
                ET_WARN("checkpoints: %s not loaded: %s", path, err);
            }
        }
        prune(ix->dir, run_id, x->first, x->last, from);
    }
    free(done);
    return loaded;
}

void
ckptdir_index_clear(struct ckptdir_index *ix)
{
    free(ix->dir);
    free(ix->files);
    memset(ix, 0, sizeof *ix);
}
