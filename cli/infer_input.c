#include "infer_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "dataset.h"
#include "image_io.h"

bool
infer_arg_is_record(const char *arg)
{
    return !strncmp(arg, "train:", 6) || !strncmp(arg, "test:", 5);
}

int
infer_input_load(const char *arg, const struct dataset *ds, uint32_t input,
                 float mean, float std, bool invert, float *x,
                 const char **label)
{
    *label = NULL;
    if (infer_arg_is_record(arg)) {
        const struct dataset_split *sp = !strncmp(arg, "train:", 6)
                                         ? &ds->train : &ds->test;
        const char *num = strchr(arg, ':') + 1;
        char *end;
        unsigned long long i = strtoull(num, &end, 10);
        if (*end || end == num || i >= sp->n) {
            fprintf(stderr, "edgetrain infer: %s: no such record (the "
                    "split has %zu)\n", arg, sp->n);
            return 1;
        }
        batch_image_to_input(dataset_image(sp, i), sp->h, sp->w, input,
                             mean, std, x);
        if (sp->labels[i] < ds->n_classes) {
            *label = ds->class_names[sp->labels[i]];
        }
        return 0;
    }
    uint8_t *px;
    uint32_t h, w;
    char *ierr = NULL;
    if (image_io_read_gray(arg, &px, &h, &w, &ierr)) {
        fprintf(stderr, "edgetrain infer: %s\n", ierr);
        free(ierr);
        return 1;
    }
    if (invert) {
        image_io_auto_invert(px, h, w);
    }
    batch_image_to_input(px, h, w, input, mean, std, x);
    free(px);
    return 0;
}
