/* ckptstore: the controller's checkpoint copies. See ckptstore.h. */
#include "ckptstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

struct ckptstore {
    size_t keep;
    struct ckpt_entry *e;          /* n entries, unordered */
    size_t n, cap;
};

struct ckptstore *
ckptstore_create(size_t keep)
{
    struct ckptstore *st = calloc(1, sizeof *st);
    if (st) {
        st->keep = keep ? keep : 1;
    }
    return st;
}

static void
entry_remove(struct ckptstore *st, size_t i)
{
    free(st->e[i].buf);
    st->e[i] = st->e[--st->n];
}

void
ckptstore_destroy(struct ckptstore *st)
{
    if (!st) {
        return;
    }
    while (st->n) {
        entry_remove(st, st->n - 1);
    }
    free(st->e);
    free(st);
}

/* Drops other runs' entries and, per range, all but the newest 'keep'. */
static void
evict(struct ckptstore *st, uint64_t run_id, uint32_t first, uint32_t last)
{
    for (size_t i = 0; i < st->n;) {
        if (st->e[i].run_id != run_id) {
            entry_remove(st, i);
        } else {
            i++;
        }
    }
    for (;;) {
        size_t n = 0, oldest = 0;
        for (size_t i = 0; i < st->n; i++) {
            const struct ckpt_entry *x = &st->e[i];
            if (x->first == first && x->last == last) {
                if (!n++ || x->epoch < st->e[oldest].epoch) {
                    oldest = i;
                }
            }
        }
        if (n <= st->keep) {
            return;
        }
        entry_remove(st, oldest);
    }
}

int
ckptstore_check(const uint8_t *buf, size_t len, uint32_t first,
                uint32_t last, char *err, size_t err_size)
{
    struct mn_config cfg;
    int hf, hl;
    char why[200];
    if (mn_checkpoint_info(buf, len, &cfg, &hf, &hl, why, sizeof why)) {
        snprintf(err, err_size, "checkpoint of blocks %u-%u: %s", first,
                 last, why);
        return EINVAL;
    }
    if ((uint32_t) hf != first || (uint32_t) hl != last) {
        snprintf(err, err_size, "checkpoint said to hold blocks %u-%u holds "
                 "blocks %d-%d", first, last, hf, hl);
        return EINVAL;
    }
    return 0;
}

int
ckptstore_put(struct ckptstore *st, const char *producer, uint64_t run_id,
              uint32_t first, uint32_t last, uint32_t epoch, uint32_t crc,
              const uint8_t *buf, size_t len, char *err, size_t err_size)
{
    if (!epoch || !first || last < first) {
        snprintf(err, err_size, "checkpoint of blocks %u-%u epoch %u: no "
                 "such stage or epoch", first, last, epoch);
        return EINVAL;
    }
    uint32_t got = mn_checkpoint_crc(buf, len);
    if (got != crc) {
        snprintf(err, err_size, "checkpoint of blocks %u-%u epoch %u has "
                 "crc32 %08x, its header says %08x", first, last, epoch, got,
                 crc);
        return EINVAL;
    }
    int e = ckptstore_check(buf, len, first, last, err, err_size);
    if (e) {
        return e;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        snprintf(err, err_size, "no memory for a %zu-byte checkpoint", len);
        return ENOMEM;
    }
    memcpy(copy, buf, len);
    for (size_t i = 0; i < st->n; i++) {
        struct ckpt_entry *x = &st->e[i];
        if (x->run_id == run_id && x->first == first && x->last == last
            && x->epoch == epoch) {
            entry_remove(st, i);
            break;
        }
    }
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 8;
        struct ckpt_entry *ne = realloc(st->e, cap * sizeof *ne);
        if (!ne) {
            free(copy);
            snprintf(err, err_size, "no memory for the checkpoint table");
            return ENOMEM;
        }
        st->e = ne;
        st->cap = cap;
    }
    struct ckpt_entry *x = &st->e[st->n++];
    memset(x, 0, sizeof *x);
    x->run_id = run_id;
    x->first = first;
    x->last = last;
    x->epoch = epoch;
    snprintf(x->producer, sizeof x->producer, "%s", producer ? producer : "");
    x->buf = copy;
    x->len = len;
    x->crc32 = crc;
    evict(st, run_id, first, last);
    return 0;
}

void
ckptstore_set_registration(struct ckptstore *st, uint64_t run_id,
                           uint32_t first, uint32_t last, uint32_t epoch,
                           uint32_t registration)
{
    struct ckpt_entry *x = (struct ckpt_entry *)
        ckptstore_get(st, run_id, first, last, epoch);
    if (x) {
        x->registration = registration;
    }
}

const struct ckpt_entry *
ckptstore_get(const struct ckptstore *st, uint64_t run_id, uint32_t first,
              uint32_t last, uint32_t epoch)
{
    for (size_t i = 0; st && i < st->n; i++) {
        const struct ckpt_entry *x = &st->e[i];
        if (x->run_id == run_id && x->first == first && x->last == last
            && x->epoch == epoch) {
            return x;
        }
    }
    return NULL;
}

uint32_t
ckptstore_resume_epoch(const struct ckptstore *st, uint64_t run_id,
                       const uint32_t (*ranges)[2], size_t n,
                       uint32_t max_epoch)
{
    for (uint32_t e = max_epoch; e > 0 && n; e--) {
        bool all = true;
        for (size_t s = 0; s < n && all; s++) {
            all = ckptstore_get(st, run_id, ranges[s][0], ranges[s][1], e)
                  != NULL;
        }
        if (all) {
            return e;
        }
    }
    return 0;
}

size_t
ckptstore_count(const struct ckptstore *st, size_t *bytes)
{
    size_t b = 0;
    for (size_t i = 0; st && i < st->n; i++) {
        b += st->e[i].len;
    }
    if (bytes) {
        *bytes = b;
    }
    return st ? st->n : 0;
}
