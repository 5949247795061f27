#ifndef SEGKIT_JPEG_H
#define SEGKIT_JPEG_H

#include <stddef.h>
#include <stdint.h>

/* A decoded JPEG: width x height x channels 8-bit samples, grey (1) or RGB (3),
   in display orientation (the EXIF Orientation tag, when present, applied). */
typedef struct {
    uint32_t width, height;  /* after orientation */
    int channels;            /* 1 or 3 */
    int orientation;         /* the EXIF tag's value (1 when absent): what was applied */
    int progressive;
    uint8_t *samples;        /* free with segkit_jpeg_free */
    char error[256];
} segkit_jpeg;

/* Returns 0 on success; on failure -1 with a message in out->error (corrupt or
   truncated data, CMYK/YCCK colour, over max_pixels: refused before the pixel
   buffer is allocated, out of memory). Never longjmps into the caller. */
int segkit_jpeg_read(const char *path, uint64_t max_pixels, segkit_jpeg *out);
void segkit_jpeg_free(segkit_jpeg *jpeg);

/* Reads only the header: display width and height (orientation applied) and
   channels, without decoding pixels. Returns 0, or -1 with a message. */
int segkit_jpeg_size(const char *path, uint32_t *width, uint32_t *height, int *channels, char *error, size_t error_size);

#endif
