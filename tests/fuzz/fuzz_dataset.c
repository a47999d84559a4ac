/* libFuzzer target: the dataset file readers (train/dataset.c) on
 * arbitrary bytes. The first input byte picks the format: 0 IDX (images +
 * labels; byte 1 says how many of the remaining bytes are the labels
 * file), 1 npy, 2 QuickDraw ndjson, 3 QuickDraw .bin. The bytes go to
 * memfds read through /proc/self/fd, so the real file path is exercised.
 * Every input gives records or an error with a message, never a crash.
 * ET_FUZZ_SEEDS=DIR writes one valid file per format and exits.
 * fuzz-sources: train/dataset.c train/image_io.c common/log.c */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dataset.h"
#include "fuzz_seeds.h"

static void
fz_write_seeds(const char *dir)
{
    uint8_t b[512];
    size_t n = 0;
    /* IDX: labels file of 2 labels (8 + 2 bytes), images 2 x 4 x 4. */
    b[n++] = 0;
    b[n++] = 10;
    uint8_t lab[] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};
    memcpy(b + n, lab, sizeof lab), n += sizeof lab;
    uint8_t img[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 4};
    memcpy(b + n, img, sizeof img), n += sizeof img;
    for (int i = 0; i < 32; i++) {
        b[n++] = (uint8_t) (i * 8);
    }
    fz_seed_write(dir, "idx", b, n);

    n = 0;
    b[n++] = 1;
    char hdr[118];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '|u1', 'fortran_order': "
                      "False, 'shape': (2, 16), }");
    memset(hdr + hl, ' ', 117 - hl);
    hdr[117] = '\n';
    memcpy(b + n, "\x93NUMPY\x01\x00\x76\x00", 10), n += 10;
    memcpy(b + n, hdr, 118), n += 118;
    for (int i = 0; i < 32; i++) {
        b[n++] = (uint8_t) (255 - i * 8);
    }
    fz_seed_write(dir, "npy", b, n);

    const char *rec = "{\"word\":\"cat\",\"countrycode\":\"US\","
                      "\"recognized\":true,\"key_id\":\"123\",\"drawing\":"
                      "[[[0,255],[128,128]],[[40,40,40],[0,100,255]]]}\n";
    n = 0;
    b[n++] = 2;
    memcpy(b + n, rec, strlen(rec)), n += strlen(rec);
    fz_seed_write(dir, "ndjson", b, n);

    n = 0;
    b[n++] = 3;
    uint8_t h[17] = {123, 0, 0, 0, 0, 0, 0, 0, 'U', 'S', 1, 0, 0, 0, 0, 2, 0};
    memcpy(b + n, h, 17), n += 17;
    uint8_t s1[] = {2, 0, 0, 255, 128, 128};
    uint8_t s2[] = {3, 0, 40, 40, 40, 0, 100, 255};
    memcpy(b + n, s1, sizeof s1), n += sizeof s1;
    memcpy(b + n, s2, sizeof s2), n += sizeof s2;
    fz_seed_write(dir, "bin", b, n);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_seeds_main(fz_write_seeds);
    return 0;
}

static int
fz_memfd(const uint8_t *p, size_t n, char path[64])
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0 || (n && write(fd, p, n) != (ssize_t) n)) {
        abort();
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    struct dataset_split s;
    memset(&s, 0, sizeof s);
    char *err = NULL;
    char p1[64], p2[64];
    int e, fd2 = -1;
    int fd1 = fz_memfd(data + 1, size - 1, p1);
    switch (data[0] & 3) {
    case 0: {
        size_t ll = data[1] < size - 2 ? data[1] : size - 2;
        close(fd1);
        fd1 = fz_memfd(data + 2, ll, p1);
        fd2 = fz_memfd(data + 2 + ll, size - 2 - ll, p2);
        e = dataset_read_idx(p2, p1, &s, &err);
        break;
    }
    case 1:
        e = dataset_read_npy(p1, 1, 0, &s, &err);
        break;
    case 2:
        e = dataset_read_ndjson(p1, 1, 0, 28, 2.0f, &s, &err);
        break;
    default:
        e = dataset_read_qdbin(p1, 1, 0, 28, 2.0f, &s, &err);
        break;
    }
    if (e && (!err || !err[0])) {
        abort();                /* an error must say what and where */
    }
    if (!e) {
        /* Touch every pixel and label: they must all be there. */
        size_t sum = 0;
        for (size_t i = 0; i < s.n * s.h * s.w; i++) {
            sum += s.pixels[i];
        }
        for (size_t i = 0; i < s.n; i++) {
            sum += s.labels[i];
        }
        (void) sum;
    }
    free(err);
    dataset_split_free(&s);
    close(fd1);
    if (fd2 >= 0) {
        close(fd2);
    }
    return 0;
}
