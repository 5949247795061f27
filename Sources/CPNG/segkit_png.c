#include "segkit_png.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpng reports errors by longjmp; this file keeps every jump inside it. */
static void on_error(png_structp png, png_const_charp message) {
    char *buffer = (char *)png_get_error_ptr(png);
    if (buffer) snprintf(buffer, 256, "%s", message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

int segkit_png_read(const char *path, uint64_t max_pixels, segkit_png *out) {
    memset(out, 0, sizeof(*out));
    FILE *file = fopen(path, "rb");
    if (!file) { snprintf(out->error, sizeof out->error, "cannot be opened"); return -1; }
    unsigned char signature[8];
    if (fread(signature, 1, 8, file) != 8 || png_sig_cmp(signature, 0, 8) != 0) {
        fclose(file);
        snprintf(out->error, sizeof out->error, "not a PNG file");
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out->error, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        if (png) png_destroy_read_struct(&png, NULL, NULL);
        fclose(file);
        snprintf(out->error, sizeof out->error, "out of memory");
        return -1;
    }
    png_bytep *rows = NULL;
    uint8_t *raw = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(raw);
        free(out->samples);
        out->samples = NULL;
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        if (!out->error[0]) snprintf(out->error, sizeof out->error, "corrupt or truncated PNG");
        return -1;
    }
    png_init_io(png, file);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if ((uint64_t)width * height > max_pixels || width == 0 || height == 0) {
        snprintf(out->error, sizeof out->error, "is %ux%u pixels, over the limit of %llu", width, height, (unsigned long long)max_pixels);
        png_longjmp(png, 1);
    }
    out->is_palette = color == PNG_COLOR_TYPE_PALETTE;
    if (out->is_palette) {
        png_colorp entries = NULL;
        int n = 0;
        if (png_get_PLTE(png, info, &entries, &n) == PNG_INFO_PLTE && entries) {
            out->palette_size = n > 256 ? 256 : n;
            for (int i = 0; i < out->palette_size; i++) {
                out->palette[3 * i] = entries[i].red;
                out->palette[3 * i + 1] = entries[i].green;
                out->palette[3 * i + 2] = entries[i].blue;
            }
        }
    }
    if (depth < 8) png_set_packing(png);                 /* 1/2/4-bit samples to one byte each, values kept */
    if (png_get_valid(png, info, PNG_INFO_tRNS) && !out->is_palette) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_swap(png);                  /* native little-endian 16-bit samples */
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    int bits = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    raw = (uint8_t *)malloc(rowbytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    out->samples = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)width * height * channels);
    if (!raw || !rows || !out->samples) {
        snprintf(out->error, sizeof out->error, "out of memory");
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = raw + y * rowbytes;
    png_read_image(png, rows);
    size_t n = (size_t)width * height * channels;
    for (size_t i = 0; i < n; i++) out->samples[i] = bits == 16 ? ((uint16_t *)raw)[i] : raw[i];
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->bit_depth = bits;
    out->file_bit_depth = depth;
    free(rows);
    free(raw);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(file);
    return 0;
}

void segkit_png_free(segkit_png *png) {
    free(png->samples);
    png->samples = NULL;
}

int segkit_png_write(const char *path, uint32_t width, uint32_t height, int channels, const uint8_t *pixels, char *error, size_t error_size) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&image, path, 0, pixels, 0, NULL)) {
        snprintf(error, error_size, "%s", image.message);
        return -1;
    }
    return 0;
}
