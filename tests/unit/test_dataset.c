/* Datasets: every reader on small good and corrupt files written here, the
 * QuickDraw directory logic, splits, limits, and deterministic batches. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "batch.h"
#include "dataset.h"

static char tmpdir[256];

static char *
tpath(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void
write_file(const char *path, const void *data, size_t len, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, data, (unsigned) len), (int) len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        fclose(f);
    }
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

/* IDX pair of n images h x w: pixel = (i * 7 + j) & 255, label = i % 10. */
static void
write_idx(const char *img, const char *lab, uint32_t n, uint32_t h,
          uint32_t w, int gz)
{
    size_t len = 16 + (size_t) n * h * w;
    uint8_t *b = malloc(len);
    put_be32(b, 0x803), put_be32(b + 4, n), put_be32(b + 8, h);
    put_be32(b + 12, w);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < (size_t) h * w; j++) {
            b[16 + i * h * w + j] = (uint8_t) (i * 7 + j);
        }
    }
    write_file(img, b, len, gz);
    free(b);
    uint8_t *l = malloc(8 + n);
    put_be32(l, 0x801), put_be32(l + 4, n);
    for (uint32_t i = 0; i < n; i++) {
        l[8 + i] = i % 10;
    }
    write_file(lab, l, 8 + n, gz);
    free(l);
}

static void
assert_err_has(const char *err, const char *a, const char *b)
{
    assert_non_null(err);
    if (!strstr(err, a) || (b && !strstr(err, b))) {
        fail_msg("error \"%s\" lacks \"%s\"/\"%s\"", err, a, b ? b : "");
    }
}

static void
test_idx_good(void **state)
{
    for (int gz = 0; gz < 2; gz++) {
        const char *img = tpath(gz ? "a-img.gz" : "a-img");
        const char *lab = tpath(gz ? "a-lab.gz" : "a-lab");
        write_idx(img, lab, 12, 5, 4, gz);
        struct dataset_split s = {0};
        char *err = NULL;
        assert_int_equal(dataset_read_idx(img, lab, &s, &err), 0);
        assert_null(err);
        assert_int_equal(s.n, 12);
        assert_int_equal(s.h, 5);
        assert_int_equal(s.w, 4);
        assert_int_equal(s.labels[11], 1);
        assert_int_equal(dataset_image(&s, 3)[2], (uint8_t) (3 * 7 + 2));
        dataset_split_free(&s);
    }
}

static void
test_idx_corrupt(void **state)
{
    const char *img = tpath("b-img"), *lab = tpath("b-lab");
    struct dataset_split s = {0};
    char *err = NULL;

    /* Truncated image data: cut the file 10 bytes short. */
    write_idx(img, lab, 6, 5, 4, 0);
    assert_int_equal(truncate(img, 16 + 6 * 20 - 10), 0);
    assert_int_not_equal(dataset_read_idx(img, lab, &s, &err), 0);
    assert_err_has(err, img, "byte 16");
    free(err), err = NULL;

    /* Bad magic. */
    write_idx(img, lab, 6, 5, 4, 0);
    FILE *f = fopen(img, "r+b");
    fputc(0x7f, f);
    fclose(f);
    assert_int_not_equal(dataset_read_idx(img, lab, &s, &err), 0);
    assert_err_has(err, img, "magic");
    free(err), err = NULL;

    /* Label count differs from image count. */
    write_idx(img, tpath("c-lab"), 6, 5, 4, 0);
    write_idx(tpath("c-img"), lab, 5, 5, 4, 0);
    assert_int_not_equal(dataset_read_idx(img, lab, &s, &err), 0);
    assert_err_has(err, lab, "5 labels");
    free(err), err = NULL;

    /* Truncated gzip stream. */
    const char *gimg = tpath("g-img.gz");
    write_idx(gimg, tpath("g-lab.gz"), 200, 28, 28, 1);
    struct stat st;
    stat(gimg, &st);
    assert_int_equal(truncate(gimg, st.st_size / 2), 0);
    assert_int_not_equal(dataset_read_idx(gimg, tpath("g-lab.gz"), &s, &err),
                         0);
    assert_err_has(err, gimg, "byte");
    free(err), err = NULL;

    /* Missing file. */
    assert_int_not_equal(dataset_read_idx(tpath("nope"), lab, &s, &err), 0);
    assert_err_has(err, "nope", NULL);
    free(err);
    dataset_split_free(&s);
}

/* .npy v1.0 of n records of 784 bytes, record i filled with value i+1. */
static void
write_npy(const char *path, size_t n, const char *descr, int gz)
{
    char hdr[128];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': "
                      "False, 'shape': (%zu, 784), }", descr, n);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    size_t len = (size_t) total + pad + n * 784;
    uint8_t *b = calloc(1, len);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t) (hl + pad + 1), b[9] = (uint8_t) ((hl + pad + 1) >> 8);
    memcpy(b + 10, hdr, hl);
    memset(b + 10 + hl, ' ', pad);
    b[10 + hl + pad] = '\n';
    for (size_t i = 0; i < n; i++) {
        memset(b + total + pad + i * 784, (int) (i + 1), 784);
    }
    write_file(path, b, len, gz);
    free(b);
}

static void
test_npy(void **state)
{
    struct dataset_split s = {0};
    char *err = NULL;
    write_npy(tpath("cat.npy"), 5, "|u1", 0);
    write_npy(tpath("dog.npy.gz"), 4, "|u1", 1);
    assert_int_equal(dataset_read_npy(tpath("cat.npy"), 3, 0, &s, &err), 0);
    assert_int_equal(dataset_read_npy(tpath("dog.npy.gz"), 4, 2, &s, &err), 0);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.h, 28);
    assert_int_equal(dataset_image(&s, 4)[783], 5);
    assert_int_equal(dataset_image(&s, 6)[0], 2);
    assert_int_equal(s.labels[4], 3);
    assert_int_equal(s.labels[5], 4);
    dataset_split_free(&s);

    /* Truncated in record 3: error names the record's offset (128 + 3*784). */
    write_npy(tpath("bad.npy"), 5, "|u1", 0);
    assert_int_equal(truncate(tpath("bad.npy"), 128 + 3 * 784 + 100), 0);
    assert_int_not_equal(dataset_read_npy(tpath("bad.npy"), 0, 0, &s, &err),
                         0);
    assert_err_has(err, "bad.npy", "byte 2480");
    assert_err_has(err, "record 3", NULL);
    free(err), err = NULL;

    write_npy(tpath("f4.npy"), 2, "<f4", 0);
    assert_int_not_equal(dataset_read_npy(tpath("f4.npy"), 0, 0, &s, &err), 0);
    assert_err_has(err, "f4.npy", "uint8");
    free(err), err = NULL;

    write_file(tpath("junk.npy"), "hello world, not numpy", 22, 0);
    assert_int_not_equal(dataset_read_npy(tpath("junk.npy"), 0, 0, &s, &err),
                         0);
    assert_err_has(err, "junk.npy", "byte 0");
    free(err);
    dataset_split_free(&s);
}

/* One drawing: a horizontal line at y=128 and a vertical one at x=40. */
static const char *ndjson_rec =
    "{\"word\":\"cat\",\"countrycode\":\"US\",\"timestamp\":\"2017-03-"
    "01 00:00:00.0 UTC\",\"recognized\":true,\"key_id\":\"123\","
    "\"drawing\":[[[0,255],[128,128]],[[40,40,40],[0,100,255]]]}\n";

static void
qdbin_record(FILE *f)
{
    uint8_t h[17] = {0};
    h[0] = 123;                 /* key_id */
    h[8] = 'U', h[9] = 'S';
    h[10] = 1;                  /* recognized */
    h[15] = 2;                  /* n_strokes */
    fwrite(h, 1, 17, f);
    uint8_t s1[] = {2, 0, 0, 255, 128, 128};
    uint8_t s2[] = {3, 0, 40, 40, 40, 0, 100, 255};
    fwrite(s1, 1, sizeof s1, f);
    fwrite(s2, 1, sizeof s2, f);
}

static void
test_strokes(void **state)
{
    struct dataset_split a = {0}, b = {0};
    char *err = NULL;
    FILE *f = fopen(tpath("cat.ndjson"), "w");
    fputs(ndjson_rec, f);
    fputs("\n", f);             /* blank lines are skipped */
    fputs(ndjson_rec, f);
    fclose(f);
    f = fopen(tpath("cat.bin"), "wb");
    qdbin_record(f);
    qdbin_record(f);
    qdbin_record(f);
    fclose(f);
    assert_int_equal(dataset_read_ndjson(tpath("cat.ndjson"), 1, 0, 64, 2.5f,
                                         &a, &err), 0);
    assert_int_equal(dataset_read_qdbin(tpath("cat.bin"), 1, 2, 64, 2.5f, &b,
                                        &err), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(b.n, 2);           /* max = 2 of 3 */
    assert_int_equal(a.h, 64);
    /* Both formats carry the same strokes, so render identically. */
    assert_memory_equal(a.pixels, b.pixels, 2 * 64 * 64);
    const uint8_t *im = dataset_image(&a, 0);
    /* y=128 maps to row ~32; x=40 to column ~11; corners stay empty. */
    assert_int_equal(im[32 * 64 + 50], 255);
    assert_int_equal(im[50 * 64 + 11], 255);
    assert_int_equal(im[60 * 64 + 60], 0);
    assert_int_equal(im[5 * 64 + 60], 0);
    /* Anti-aliased: some pixels are partly covered. */
    int partial = 0;
    for (int i = 0; i < 64 * 64; i++) {
        partial += im[i] > 0 && im[i] < 255;
    }
    assert_true(partial > 10);
    dataset_split_free(&a);
    dataset_split_free(&b);

    /* ndjson: bad JSON on line 2, missing drawing on line 1. */
    f = fopen(tpath("bad.ndjson"), "w");
    fputs(ndjson_rec, f);
    fputs("{\"word\": \"cat\", \"drawing\": [[[1,2],[3", f);
    fclose(f);
    assert_int_not_equal(dataset_read_ndjson(tpath("bad.ndjson"), 0, 0, 64,
                                             2.5f, &a, &err), 0);
    assert_err_has(err, "bad.ndjson", "line 2");
    char want[32];
    snprintf(want, sizeof want, "byte %zu", strlen(ndjson_rec));
    assert_err_has(err, want, NULL);
    free(err), err = NULL;
    f = fopen(tpath("bad2.ndjson"), "w");
    fputs("{\"word\": \"cat\", \"drawing\": [[[1,2],[3]]]}\n", f);
    fclose(f);
    assert_int_not_equal(dataset_read_ndjson(tpath("bad2.ndjson"), 0, 0, 64,
                                             2.5f, &a, &err), 0);
    assert_err_has(err, "line 1", "differ");
    free(err), err = NULL;

    /* bin: truncated inside the second drawing's second stroke (offset of
     * that drawing: 31; its second stroke's coordinates start at 31+25). */
    assert_int_equal(truncate(tpath("cat.bin"), 31 + 28), 0);
    assert_int_not_equal(dataset_read_qdbin(tpath("cat.bin"), 0, 0, 64, 2.5f,
                                            &a, &err), 0);
    assert_err_has(err, "cat.bin", "byte 56");
    assert_err_has(err, "drawing 1 stroke 1", NULL);
    free(err), err = NULL;
    /* Truncated inside a header. */
    assert_int_equal(truncate(tpath("cat.bin"), 31 + 5), 0);
    assert_int_not_equal(dataset_read_qdbin(tpath("cat.bin"), 0, 0, 64, 2.5f,
                                            &a, &err), 0);
    assert_err_has(err, "cat.bin", "byte 31");
    free(err);
    dataset_split_free(&a);
}

static void
test_quickdraw_dir(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/qd", tmpdir);
    mkdir(dir, 0700);
    char p[600];
    /* Three categories in the published names; no categories.txt, so the
     * classes are the sorted names: "The Eiffel Tower", "ant", "bee". */
    snprintf(p, sizeof p, "%s/full_numpy_bitmap_ant.npy", dir);
    write_npy(p, 40, "|u1", 0);
    snprintf(p, sizeof p, "%s/full_numpy_bitmap_The Eiffel Tower.npy", dir);
    write_npy(p, 40, "|u1", 0);
    snprintf(p, sizeof p, "%s/bee.npy.gz", dir);
    write_npy(p, 30, "|u1", 1);
    struct dataset *ds;
    char *err = NULL;
    struct dataset_options o;
    dataset_options_init(&o);
    assert_int_equal(dataset_open(dir, &o, &ds, &err), 0);
    assert_int_equal(ds->n_classes, 3);
    assert_string_equal(ds->class_names[0], "The Eiffel Tower");
    assert_string_equal(ds->class_names[2], "bee");
    assert_int_equal(ds->test.n, 4 + 4 + 3);
    assert_int_equal(ds->train.n, 36 + 36 + 27);
    uint8_t first_test = dataset_image(&ds->test, 0)[0];
    dataset_destroy(ds);

    /* Same split again (deterministic), and per-class + limits. */
    assert_int_equal(dataset_open(dir, &o, &ds, &err), 0);
    assert_int_equal(dataset_image(&ds->test, 0)[0], first_test);
    dataset_destroy(ds);
    o.per_class = 20;
    o.train_limit = 30;
    assert_int_equal(dataset_open(dir, &o, &ds, &err), 0);
    assert_int_equal(ds->test.n, 6);
    assert_int_equal(ds->train.n, 30);
    dataset_destroy(ds);

    /* categories.txt selects and orders classes; a listed category with no
     * file is an error naming it. */
    snprintf(p, sizeof p, "%s/categories.txt", dir);
    FILE *f = fopen(p, "w");
    fputs("bee\nant\n", f);
    fclose(f);
    dataset_options_init(&o);
    assert_int_equal(dataset_open(dir, &o, &ds, &err), 0);
    assert_int_equal(ds->n_classes, 2);
    assert_string_equal(ds->class_names[0], "bee");
    dataset_destroy(ds);
    f = fopen(p, "a");
    fputs("zebra\n", f);
    fclose(f);
    assert_int_not_equal(dataset_open(dir, &o, &ds, &err), 0);
    assert_err_has(err, "zebra", NULL);
    free(err), err = NULL;

    /* A corrupt category file fails the open with its name. */
    unlink(p);
    snprintf(p, sizeof p, "%s/full_numpy_bitmap_ant.npy", dir);
    assert_int_equal(truncate(p, 500), 0);
    assert_int_not_equal(dataset_open(dir, &o, &ds, &err), 0);
    assert_err_has(err, "full_numpy_bitmap_ant.npy", "byte");
    free(err), err = NULL;

    assert_int_not_equal(dataset_open(tpath("missing"), &o, &ds, &err), 0);
    assert_err_has(err, "missing", NULL);
    free(err);
}

static void
test_idx_dir_and_batches(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/idx", tmpdir);
    mkdir(dir, 0700);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(a, b, 100, 28, 28, 1);
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", dir);
    write_idx(a, b, 20, 28, 28, 0);
    struct dataset *ds;
    char *err = NULL;
    assert_int_equal(dataset_open(dir, NULL, &ds, &err), 0);
    assert_int_equal(ds->train.n, 100);
    assert_int_equal(ds->test.n, 20);
    assert_int_equal(ds->n_classes, 10);

    struct batch_options bo = {.input = 32, .batch = 16, .shuffle = true,
                               .drop_last = true, .seed = 7, .shift = 2,
                               .flip = true};
    struct batcher *b1, *b2;
    assert_int_equal(batcher_create(ds, &ds->train, &bo, &b1, &err), 0);
    assert_int_equal(batcher_create(ds, &ds->train, &bo, &b2, &err), 0);
    assert_int_equal(batcher_n_batches(b1), 6);
    size_t per = 32 * 32 * 16;
    float *x1 = malloc(per * sizeof *x1), *x2 = malloc(per * sizeof *x2);
    uint32_t l1[16], l2[16];
    /* Same seed and epoch: identical batches, in any fill order. */
    batcher_set_epoch(b1, 3);
    batcher_set_epoch(b2, 3);
    assert_int_equal(batcher_fill(b2, 5, x2, l2), 16);
    assert_int_equal(batcher_fill(b1, 5, x1, l1), 16);
    assert_memory_equal(x1, x2, per * sizeof *x1);
    assert_memory_equal(l1, l2, sizeof l1);
    /* Another epoch: another order. */
    batcher_set_epoch(b2, 4);
    batcher_fill(b2, 5, x2, l2);
    assert_memory_not_equal(l1, l2, sizeof l1);
    assert_int_equal(batcher_fill(b1, 6, x1, l1), 0);
    batcher_destroy(b1);
    batcher_destroy(b2);

    /* Without augmentation the whole test split normalises to mean ~0,
     * std ~1 (test statistics are close to train here by construction). */
    struct batch_options eo = {.input = 28, .batch = 8};
    assert_int_equal(batcher_create(ds, &ds->train, &eo, &b1, &err), 0);
    assert_int_equal(batcher_n_batches(b1), 13);
    double s = 0, sq = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < batcher_n_batches(b1); i++) {
        size_t n = batcher_fill(b1, i, x1, l1);
        for (size_t j = 0; j < n * 28 * 28; j++) {
            s += x1[j], sq += x1[j] * x1[j], cnt++;
        }
    }
    assert_int_equal(cnt, 100 * 28 * 28);
    assert_true(fabs(s / cnt) < 1e-3);
    assert_true(fabs(sq / cnt - 1.0) < 1e-2);
    batcher_destroy(b1);
    free(x1);
    free(x2);
    dataset_destroy(ds);
}

static void
test_resize(void **state)
{
    /* A constant image stays constant; 2x downscale averages 2x2 blocks. */
    uint8_t src[4 * 4], dst[8 * 8];
    memset(src, 100, sizeof src);
    batch_resize_u8(src, 4, 4, dst, 8);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(dst[i], 100);
    }
    for (int i = 0; i < 16; i++) {
        src[i] = (i / 4 < 2 && i % 4 < 2) ? 200 : 0;
    }
    uint8_t half[4];
    batch_resize_u8(src, 4, 4, half, 2);
    assert_int_equal(half[0], 200);
    assert_int_equal(half[1], 0);
    assert_int_equal(half[3], 0);
}

static void
test_fashion_mnist(void **state)
{
    struct dataset *ds;
    char *err = NULL;
    if (access("/usr/share/datasets/fashion-mnist", R_OK)) {
        skip();
    }
    assert_int_equal(dataset_open("fashion-mnist", NULL, &ds, &err), 0);
    assert_int_equal(ds->train.n, 60000);
    assert_int_equal(ds->test.n, 10000);
    assert_int_equal(ds->n_classes, 10);
    assert_string_equal(ds->class_names[9], "Ankle boot");
    assert_true(fabsf(ds->mean - 0.2860f) < 0.001f);
    assert_true(fabsf(ds->std - 0.3530f) < 0.001f);
    dataset_destroy(ds);
}

static int
setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/et-dataset-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_good),
        cmocka_unit_test(test_idx_corrupt),
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_strokes),
        cmocka_unit_test(test_quickdraw_dir),
        cmocka_unit_test(test_idx_dir_and_batches),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
