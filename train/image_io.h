/* Single images for inference: PNG (any colour type, via libpng) and PGM
 * (P5 binary or P2 text), read as 8-bit grey.  Dataset-style polarity
 * (bright strokes on black) is the caller's business: see
 * image_io_auto_invert(). */
#ifndef ET_IMAGE_IO_H
#define ET_IMAGE_IO_H 1

#include <stdint.h>

/* Reads 'path' into *pixels (malloc'd, h*w bytes, caller frees).  Returns 0
 * or an errno with *errp a malloc'd message naming the file. */
int image_io_read_gray(const char *path, uint8_t **pixels, uint32_t *h,
                       uint32_t *w, char **errp);

/* Writes an 8-bit grey PGM (P5); returns 0 or errno. */
int image_io_write_pgm(const char *path, const uint8_t *pixels, uint32_t h,
                       uint32_t w);

/* Datasets have dark backgrounds; photos of drawings usually have light
 * ones.  If the border of the image is mostly bright, inverts it and
 * returns 1; otherwise returns 0. */
int image_io_auto_invert(uint8_t *pixels, uint32_t h, uint32_t w);

#endif /* ET_IMAGE_IO_H */
