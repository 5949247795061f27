#ifndef SEGKIT_PNG_H
#define SEGKIT_PNG_H

#include <stddef.h>
#include <stdint.h>

/* A decoded PNG: width x height x channels samples, 16 bits each (8-bit files
   are widened without scaling; bit_depth says which). Palette images keep their
   raw palette indices (one channel), which is what a palette mask means. */
typedef struct {
    uint32_t width, height;
    int channels;      /* 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA, 1 for palette indices */
    int bit_depth;     /* 8 or 16 after unpacking */
    int file_bit_depth; /* 1, 2, 4, 8 or 16: as stored (1/2/4-bit samples keep their values when unpacked) */
    int is_palette;
    int palette_size;     /* palette entries (palette images only) */
    uint8_t palette[256 * 3]; /* RGB per entry, so an image (not a mask) can be expanded */
    uint16_t *samples; /* free with segkit_png_free */
    char error[256];
} segkit_png;

/* Returns 0 on success; on failure -1 with a message in out->error. Refuses
   images above max_pixels before allocating. Never longjmps into the caller. */
int segkit_png_read(const char *path, uint64_t max_pixels, segkit_png *out);
void segkit_png_free(segkit_png *png);

/* Writes 8-bit grey (channels 1) or RGB (channels 3) rows; 0 on success. */
int segkit_png_write(const char *path, uint32_t width, uint32_t height, int channels, const uint8_t *pixels, char *error, size_t error_size);

#endif
