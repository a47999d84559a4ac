/* Datasets: Fashion-MNIST / MNIST (IDX) and QuickDraw (numpy_bitmap .npy,
 * simplified .ndjson strokes, binary .bin), loaded into memory as one-channel
 * uint8 images with labels, split into train and test.
 *
 * The trainer, eval/infer and the source agent all read data through this
 * module, so the same spec and options give the same images in the same
 * order everywhere.
 *
 * Spec forms accepted by dataset_open():
 *   "fashion-mnist", "mnist"      Debian's copies under /usr/share/datasets/
 *   DIR                           a directory of IDX files (train-images-
 *                                 idx3-ubyte[.gz] ...) or of QuickDraw files
 *   quickdraw:DIR                 force QuickDraw interpretation of DIR
 * QuickDraw directories hold one file per category: <cat>.npy,
 * full_numpy_bitmap_<cat>.npy, <cat>.ndjson, full_simplified_<cat>.ndjson,
 * <cat>.bin, full_binary_<cat>.bin (each optionally .gz).  The category list
 * is categories.txt (one name per line) when present, otherwise the sorted
 * category names taken from the file names.  Strokes are rendered to
 * render_size x render_size (default 64, the paper's size) with thick
 * anti-aliased lines.
 *
 * Errors: functions return 0 or a positive errno and, on error, set *errp to
 * a malloc'd message naming the file and the byte offset (caller frees). */
#ifndef ET_DATASET_H
#define ET_DATASET_H 1

#include <stddef.h>
#include <stdint.h>

/* One split: 'n' images of h x w uint8 pixels (0 = background) and labels. */
struct dataset_split {
    size_t n;
    uint32_t h, w;
    uint8_t *pixels;            /* n * h * w, row-major. */
    uint32_t *labels;           /* n, each < dataset.n_classes. */
};

struct dataset {
    char *name;                 /* "fashion-mnist", "mnist", "quickdraw". */
    char *path;                 /* Directory the files came from. */
    size_t n_classes;
    char **class_names;         /* n_classes strings. */
    struct dataset_split train;
    struct dataset_split test;
    /* Mean and standard deviation of the training pixels scaled to [0,1];
     * batches are normalised with them. */
    float mean, std;
};

enum dataset_format {
    DATASET_FORMAT_AUTO,        /* Per category: npy, then bin, then ndjson. */
    DATASET_FORMAT_NPY,
    DATASET_FORMAT_NDJSON,
    DATASET_FORMAT_BIN,
};

struct dataset_options {
    size_t per_class;           /* 0: all.  QuickDraw: records read per
                                 * category before the split.  IDX: training
                                 * images kept per class. */
    size_t train_limit;         /* 0: all.  Deterministic subset of train. */
    size_t test_limit;          /* 0: all.  Deterministic subset of test. */
    double test_fraction;       /* QuickDraw held-out fraction (0.1). */
    uint32_t render_size;       /* Stroke rendering size (64). */
    float line_width;           /* Stroke width in rendered pixels (2.5). */
    enum dataset_format format;
};

/* Fills 'opts' with the defaults above. */
void dataset_options_init(struct dataset_options *opts);

/* Parses "auto", "npy", "ndjson", "bin"; returns -1 otherwise. */
int dataset_format_from_string(const char *s);

/* Loads the dataset named by 'spec'.  On success *dsp owns a new dataset
 * (free with dataset_destroy()). */
int dataset_open(const char *spec, const struct dataset_options *opts,
                 struct dataset **dsp, char **errp);
void dataset_destroy(struct dataset *ds);

/* Pointer to image 'i' of 'split'. */
static inline const uint8_t *
dataset_image(const struct dataset_split *split, size_t i)
{
    return split->pixels + i * (size_t) split->h * split->w;
}

/* --- Format readers, exposed for tests and for single files. ------------
 * Each appends up to 'max' records (0: all) with label 'label' to 'split'
 * (which must be empty or have the same image size) and returns 0, or an
 * errno with *errp naming 'path' and the byte offset of the bad record. */
int dataset_read_idx(const char *images_path, const char *labels_path,
                     struct dataset_split *split, char **errp);
int dataset_read_npy(const char *path, uint32_t label, size_t max,
                     struct dataset_split *split, char **errp);
int dataset_read_ndjson(const char *path, uint32_t label, size_t max,
                        uint32_t size, float line_width,
                        struct dataset_split *split, char **errp);
int dataset_read_qdbin(const char *path, uint32_t label, size_t max,
                       uint32_t size, float line_width,
                       struct dataset_split *split, char **errp);
void dataset_split_free(struct dataset_split *split);

/* Renders strokes with coordinates in [0,255] (QuickDraw "simplified") into
 * a size x size image with anti-aliased lines 'line_width' pixels wide.
 * Stroke s has n_points[s] points xs[s][i], ys[s][i]. */
void dataset_render_strokes(uint8_t *img, uint32_t size, float line_width,
                            size_t n_strokes, const size_t *n_points,
                            const float *const *xs, const float *const *ys);

#endif /* ET_DATASET_H */
