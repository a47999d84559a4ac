/* libFuzzer target: the dataset readers (.npy, QuickDraw .bin, simplified
 * .ndjson, IDX) on arbitrary file contents.  The first byte picks the
 * reader; the rest is the file.  Readers must refuse bad input with an
 * error, never over-read or abort.
 * fuzz-sources: train/dataset.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dataset.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], lpath[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/et-fuzz-ds-%d", (int) getpid());
        snprintf(lpath, sizeof lpath, "/tmp/et-fuzz-ds-%d.lab", (int) getpid());
    }
    if (size < 1) {
        return 0;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        return 0;
    }
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    struct dataset_split s = {0};
    char *err = NULL;
    switch (data[0] % 4) {
    case 0:
        dataset_read_npy(path, 1, 64, &s, &err);
        break;
    case 1:
        dataset_read_qdbin(path, 1, 64, 16, 2.0f, &s, &err);
        break;
    case 2:
        dataset_read_ndjson(path, 1, 64, 16, 2.0f, &s, &err);
        break;
    default:
        /* The same bytes as images and labels: headers must agree. */
        f = fopen(lpath, "wb");
        if (f) {
            fwrite(data + 1, 1, size - 1, f);
            fclose(f);
            dataset_read_idx(path, lpath, &s, &err);
        }
        break;
    }
    free(err);
    dataset_split_free(&s);
    return 0;
}
