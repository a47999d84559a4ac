/* libFuzzer target: the controller's checkpoint directory reader
 * (controller/ckptdir.c): the file name parser, then scanning a directory
 * holding that one file and loading it into a ckptstore, as after a
 * controller restart. An input is "NAME\nCONTENT": NAME goes to
 * ckptdir_parse_name() and, if it is a plain file name, CONTENT is written
 * under it into a private directory that ckptdir_scan() and
 * ckptdir_load() then read. Names must parse or be refused, files load
 * or be skipped with a reason, never crash. ET_FUZZ_SEEDS=DIR writes
 * seeds (a valid checkpoint under a valid name, a name whose producer
 * holds dashes, a truncated file, a foreign file) and exits.
 * fuzz-sources: controller/ckptdir.c controller/ckptstore.c common/log.c kernels/batchnorm.c kernels/checkpoint.c kernels/dense.c kernels/dwconv.c kernels/gemm.c kernels/model.c kernels/optim.c kernels/pool.c kernels/pwconv.c kernels/softmax_xent.c kernels/stemconv.c */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckptdir.h"
#include "ckptstore.h"
#include "fuzz_seeds.h"
#include "log.h"
#include "model.h"

static char fz_dir[64];

static void
fz_seed(const char *dir, const char *seed, const char *name,
        const uint8_t *buf, size_t len)
{
    size_t n = strlen(name);
    uint8_t *in = malloc(n + 1 + len);
    memcpy(in, name, n);
    in[n] = '\n';
    memcpy(in + n + 1, buf, len);
    fz_seed_write(dir, seed, in, n + 1 + len);
    free(in);
}

static void
write_seeds(const char *dir)
{
    struct mn_config c;
    char err[256];
    mn_config_default(&c);
    c.alpha = 0.25f;
    c.input_size = 8;
    c.in_channels = 1;
    c.classes = 2;
    c.batch_capacity = 2;
    struct mn_stage *s = mn_stage_create(&c, 1, 2, err, sizeof err);
    uint8_t *buf;
    size_t len;
    if (!s || mn_stage_save_buf(s, true, &buf, &len)) {
        abort();
    }
    fz_seed(dir, "valid", "pi1-00000000000000ab-b1-2-e3.ckpt", buf, len);
    fz_seed(dir, "dashes", "pi-1-x-00000000000000ab-b1-2-e1.ckpt", buf, len);
    fz_seed(dir, "truncated", "pi1-00000000000000ab-b1-2-e2.ckpt", buf,
            len / 2);
    fz_seed(dir, "wrong-blocks", "pi1-00000000000000ab-b1-3-e2.ckpt", buf,
            len);
    fz_seed(dir, "foreign", "notes.txt", (const uint8_t *) "hello", 5);
    fz_seed(dir, "tmp", "pi1-00000000000000ab-b1-2-e4.ckpt.tmp", buf, 9);
    free(buf);
    mn_stage_destroy(s);
}

static void
fz_rmdir_files(void)
{
    DIR *d = opendir(fz_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", fz_dir, de->d_name);
            unlink(path);
        }
    }
    if (d) {
        closedir(d);
    }
}

static void
fz_cleanup(void)
{
    fz_rmdir_files();
    rmdir(fz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_seeds_main(write_seeds);
    FZ_LOG_LEVEL();
    snprintf(fz_dir, sizeof fz_dir, "/tmp/et-fuzz-ckptdir-XXXXXX");
    if (!mkdtemp(fz_dir)) {
        abort();
    }
    atexit(fz_cleanup);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 300 ? size : 300);
    size_t nlen = nl ? (size_t) (nl - data) : (size < 300 ? size : 300);
    char name[301], producer[64];
    memcpy(name, data, nlen);
    name[nlen] = '\0';
    uint64_t run = 0;
    uint32_t first = 0, last = 0, epoch = 0;
    if (!ckptdir_parse_name(name, producer, sizeof producer, &run, &first,
                            &last, &epoch)
        && (!first || last < first || !epoch || !producer[0])) {
        abort();                /* accepted what it must refuse */
    }
    if (!nl || !nlen || strlen(name) != nlen || strchr(name, '/')
        || !strcmp(name, ".") || !strcmp(name, "..")) {
        return 0;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fz_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        return 0;               /* a name the file system refuses */
    }
    size_t clen = size - nlen - 1;
    fwrite(nl + 1, 1, clen, f);
    fclose(f);
    struct ckptdir_index ix;
    memset(&ix, 0, sizeof ix);
    if (!ckptdir_scan(fz_dir, &ix)) {
        if (ix.n + ix.skipped > 1) {
            abort();            /* one file, counted once */
        }
        struct ckptstore *st = ckptstore_create(2);
        size_t n = ckptdir_load(&ix, st, run, 2);
        if (n != ckptstore_count(st, NULL) || n > ix.n) {
            abort();
        }
        ckptstore_destroy(st);
    }
    ckptdir_index_clear(&ix);
    fz_rmdir_files();
    return 0;
}
