/* Batches for training and evaluation: images of a dataset split resized
 * once to input x input, then served as normalised NHWC float batches
 * (C = 1) with labels, in a deterministic order and with deterministic
 * light augmentation.
 *
 * Determinism contract (the distributed agents rely on it): for the same
 * split, options and epoch, batch i holds the same images with the same
 * augmentation whichever process fills it and in whatever order batches are
 * filled.  The order is a permutation drawn from (seed, epoch); the
 * augmentation of an image from (seed, epoch, image index). */
#ifndef ET_BATCH_H
#define ET_BATCH_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dataset;
struct dataset_split;

struct batch_options {
    uint32_t input;             /* Output image size (square). */
    size_t batch;               /* Images per batch. */
    bool shuffle;               /* Permute every epoch (training). */
    bool drop_last;             /* Drop the final partial batch. */
    uint64_t seed;
    uint32_t shift;             /* Augmentation: random translation of up
                                 * to +-shift pixels, zero (background)
                                 * fill.  0: off. */
    bool flip;                  /* Augmentation: random horizontal flip. */
};

struct batcher;

/* Creates a batcher over 'split' of 'ds' (which must outlive it; mean and
 * std come from 'ds').  Returns 0 or an errno with *errp set. */
int batcher_create(const struct dataset *ds, const struct dataset_split *split,
                   const struct batch_options *opts, struct batcher **bp,
                   char **errp);
void batcher_destroy(struct batcher *b);

/* Number of batches per epoch. */
size_t batcher_n_batches(const struct batcher *b);
/* Number of images served per epoch. */
size_t batcher_n_images(const struct batcher *b);

/* Selects the epoch (its shuffle and augmentation); epochs count from 0. */
void batcher_set_epoch(struct batcher *b, uint32_t epoch);

/* Fills batch 'index' of the current epoch: x (n, input, input, 1) floats
 * and labels (n).  Returns n (opts.batch, or less for a last partial batch),
 * 0 when index is past the end.  Thread-safe for distinct outputs. */
size_t batcher_fill(const struct batcher *b, size_t index, float *x,
                    uint32_t *labels);

/* Resizes an h x w uint8 image to size x size (area average when shrinking,
 * bilinear when enlarging). */
void batch_resize_u8(const uint8_t *src, uint32_t h, uint32_t w, uint8_t *dst,
                     uint32_t size);

/* Resizes and normalises one image into out (size, size, 1), as batches
 * are; for inference on single images. */
void batch_image_to_input(const uint8_t *img, uint32_t h, uint32_t w,
                          uint32_t size, float mean, float std, float *out);

#endif /* ET_BATCH_H */
