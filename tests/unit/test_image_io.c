/* Single-image input for infer: PNG (via libpng), PGM P5/P2, bad files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image_io.h"

static char dir[64];

static const char *
path(const char *name)
{
    static char buf[4][128];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

static void
test_png_rgb_to_gray(void **state)
{
    uint8_t rgb[4 * 3 * 3];
    for (int i = 0; i < 12; i++) {
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t) (i * 20);
    }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = 4;
    img.height = 3;
    img.format = PNG_FORMAT_RGB;
    assert_true(png_image_write_to_file(&img, path("a.png"), 0, rgb, 0,
                                        NULL));
    uint8_t *px;
    uint32_t h, w;
    char *err = NULL;
    assert_int_equal(image_io_read_gray(path("a.png"), &px, &h, &w, &err), 0);
    assert_int_equal(h, 3);
    assert_int_equal(w, 4);
    assert_int_equal(px[0], 0);
    assert_int_equal(px[11], 220);
    free(px);

    /* A PNG cut short is refused with the file's name. */
    assert_int_equal(truncate(path("a.png"), 40), 0);
    assert_int_not_equal(image_io_read_gray(path("a.png"), &px, &h, &w,
                                            &err), 0);
    assert_non_null(strstr(err, "a.png"));
    free(err);
}

static void
test_pgm(void **state)
{
    FILE *f = fopen(path("b.pgm"), "wb");
    fputs("P5\n# comment\n3 2\n255\n", f);
    fwrite("\x00\x10\x20\x30\x40\xff", 1, 6, f);
    fclose(f);
    uint8_t *px;
    uint32_t h, w;
    char *err = NULL;
    assert_int_equal(image_io_read_gray(path("b.pgm"), &px, &h, &w, &err), 0);
    assert_int_equal(w, 3);
    assert_int_equal(h, 2);
    assert_int_equal(px[5], 255);
    free(px);

    f = fopen(path("c.pgm"), "w");
    fputs("P2 2 2 15\n0 15\n15 0\n", f);
    fclose(f);
    assert_int_equal(image_io_read_gray(path("c.pgm"), &px, &h, &w, &err), 0);
    assert_int_equal(px[1], 255);
    assert_int_equal(px[3], 0);
    /* Light border: inverted to the datasets' dark background. */
    uint8_t light[9] = {250, 250, 250, 250, 0, 250, 250, 250, 250};
    assert_int_equal(image_io_auto_invert(light, 3, 3), 1);
    assert_int_equal(light[4], 255);
    assert_int_equal(image_io_auto_invert(px, 2, 2), 0);
    free(px);

    /* Truncated P5 data and junk files give errors naming the file. */
    f = fopen(path("d.pgm"), "wb");
    fputs("P5 10 10 255\n", f);
    fwrite("\x01\x02\x03", 1, 3, f);
    fclose(f);
    assert_int_not_equal(image_io_read_gray(path("d.pgm"), &px, &h, &w,
                                            &err), 0);
    assert_non_null(strstr(err, "d.pgm"));
    assert_non_null(strstr(err, "truncated"));
    free(err);
    f = fopen(path("e.pgm"), "wb");
    fputs("GIF89a", f);
    fclose(f);
    assert_int_not_equal(image_io_read_gray(path("e.pgm"), &px, &h, &w,
                                            &err), 0);
    assert_non_null(strstr(err, "e.pgm"));
    free(err);
    assert_int_not_equal(image_io_read_gray(path("none.png"), &px, &h, &w,
                                            &err), 0);
    free(err);
}

static int
setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/et-imgio-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_rgb_to_gray),
        cmocka_unit_test(test_pgm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
