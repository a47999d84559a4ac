#define _GNU_SOURCE 1
#include "image_io.h"

#include <ctype.h>
#include <errno.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
img_err(char **errp, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
img_err(char **errp, int error, const char *fmt, ...)
{
    if (errp) {
        va_list a;
        va_start(a, fmt);
        if (vasprintf(errp, fmt, a) < 0) {
            *errp = NULL;
        }
        va_end(a);
    }
    return error;
}

/* Reads the next PGM header integer, skipping blanks and # comments. */
static int
pgm_int(FILE *f, unsigned long *v)
{
    int c;
    for (;;) {
        c = fgetc(f);
        if (c == '#') {
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
        } else if (!isspace(c)) {
            break;
        }
    }
    if (!isdigit(c)) {
        return -1;
    }
    *v = 0;
    while (isdigit(c)) {
        *v = *v * 10 + (unsigned long) (c - '0');
        if (*v > 1000000) {
            return -1;
        }
        c = fgetc(f);
    }
    return 0;    /* 'c' was the single whitespace after the number. */
}

static int
read_pgm(FILE *f, const char *path, uint8_t **pixels, uint32_t *h,
         uint32_t *w, char **errp)
{
    char magic[2];
    unsigned long W, H, maxv;
    if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P'
        || (magic[1] != '5' && magic[1] != '2')) {
        return img_err(errp, EINVAL, "%s: byte 0: not a PGM (P5/P2) or PNG "
                       "file", path);
    }
    if (pgm_int(f, &W) || pgm_int(f, &H) || pgm_int(f, &maxv) || !W || !H
        || W > 16384 || H > 16384 || !maxv || maxv > 65535) {
        return img_err(errp, EINVAL, "%s: byte %ld: bad PGM header", path,
                       ftell(f));
    }
    uint8_t *p = malloc(W * H);
    if (!p) {
        return img_err(errp, ENOMEM, "%s: out of memory", path);
    }
    int wide = maxv > 255;
    for (size_t i = 0; i < W * H; i++) {
        unsigned long v;
        if (magic[1] == '2') {
            if (pgm_int(f, &v)) {
                free(p);
                return img_err(errp, EINVAL, "%s: byte %ld: bad or missing "
                               "pixel %zu", path, ftell(f), i);
            }
        } else {
            int a = fgetc(f), b = wide ? fgetc(f) : 0;
            if (a == EOF || b == EOF) {
                free(p);
                return img_err(errp, EINVAL, "%s: truncated at byte %ld "
                               "(pixel %zu of %lu)", path, ftell(f), i,
                               W * H);
            }
            v = wide ? (unsigned long) (a << 8 | b) : (unsigned long) a;
        }
        p[i] = (uint8_t) ((v > maxv ? maxv : v) * 255 / maxv);
    }
    *pixels = p;
    *h = (uint32_t) H;
    *w = (uint32_t) W;
    return 0;
}

int
image_io_read_gray(const char *path, uint8_t **pixels, uint32_t *h,
                   uint32_t *w, char **errp)
{
    *pixels = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int error = errno;
        return img_err(errp, error, "%s: cannot open: %s", path,
                       strerror(error));
    }
    uint8_t sig[8] = {0};
    size_t got = fread(sig, 1, 8, f);
    if (got == 8 && !png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        png_image img;
        memset(&img, 0, sizeof img);
        img.version = PNG_IMAGE_VERSION;
        if (!png_image_begin_read_from_file(&img, path)) {
            return img_err(errp, EINVAL, "%s: bad PNG: %s", path,
                           img.message);
        }
        img.format = PNG_FORMAT_GRAY;
        if (img.width > 16384 || img.height > 16384) {
            png_image_free(&img);
            return img_err(errp, EINVAL, "%s: PNG %ux%u too large", path,
                           img.width, img.height);
        }
        uint8_t *p = malloc(PNG_IMAGE_SIZE(img));
        if (!p) {
            png_image_free(&img);
            return img_err(errp, ENOMEM, "%s: out of memory", path);
        }
        if (!png_image_finish_read(&img, NULL, p, 0, NULL)) {
            free(p);
            return img_err(errp, EINVAL, "%s: bad PNG data: %s", path,
                           img.message);
        }
        *pixels = p;
        *h = img.height;
        *w = img.width;
        return 0;
    }
    rewind(f);
    int error = read_pgm(f, path, pixels, h, w, errp);
    fclose(f);
    return error;
}

int
image_io_write_pgm(const char *path, const uint8_t *pixels, uint32_t h,
                   uint32_t w)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        return errno;
    }
    fprintf(f, "P5\n%u %u\n255\n", w, h);
    size_t n = fwrite(pixels, 1, (size_t) h * w, f);
    return fclose(f) || n != (size_t) h * w ? EIO : 0;
}

int
image_io_auto_invert(uint8_t *pixels, uint32_t h, uint32_t w)
{
    unsigned long sum = 0, n = 0;
    for (uint32_t x = 0; x < w; x++) {
        sum += pixels[x] + pixels[(size_t) (h - 1) * w + x];
        n += 2;
    }
    for (uint32_t y = 0; y < h; y++) {
        sum += pixels[(size_t) y * w] + pixels[(size_t) y * w + w - 1];
        n += 2;
    }
    if (!n || sum / n < 128) {
        return 0;
    }
    for (size_t i = 0; i < (size_t) h * w; i++) {
        pixels[i] = (uint8_t) (255 - pixels[i]);
    }
    return 1;
}
