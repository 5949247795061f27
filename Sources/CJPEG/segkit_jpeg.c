#include "segkit_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h uses FILE without including stdio.h. */
#include <jpeglib.h>
#include <jerror.h>

/* libjpeg reports fatal errors through error_exit, which must not return: it
   longjmps back here, so no jump ever crosses into Swift. */
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *message;
} error_manager;

static void on_error(j_common_ptr info) {
    error_manager *e = (error_manager *)info->err;
    char text[JMSG_LENGTH_MAX];
    e->base.format_message(info, text);
    snprintf(e->message, 256, "corrupt JPEG: %s", text);
    longjmp(e->jump, 1);
}

/* Warnings (level -1) mean damaged data that libjpeg would paper over with grey
   pixels: a truncated file, a bad Huffman code. A training image with invented
   pixels is worse than a refused one, so they are errors too, except extraneous
   bytes before a marker, which cameras write and which lose nothing. */
static void on_message(j_common_ptr info, int level) {
    if (level >= 0) return;
    if (info->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
    on_error(info);
}

static uint32_t read16(const uint8_t *p, int big) { return big ? (uint32_t)(p[0] << 8 | p[1]) : (uint32_t)(p[1] << 8 | p[0]); }
static uint32_t read32(const uint8_t *p, int big) {
    return big ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
               : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

/* The Orientation tag (0x0112) of IFD0 in an APP1 "Exif" segment (EXIF 2.32,
   section 4.6.4: "Exif\0\0", then a TIFF header and IFD0); 1 when absent or
   unreadable, since a damaged tag should not refuse an image whose pixels are fine. */
static int exif_orientation(j_decompress_ptr info) {
    for (jpeg_saved_marker_ptr m = info->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1 || m->data_length < 14 || memcmp(m->data, "Exif\0\0", 6) != 0) continue;
        const uint8_t *tiff = m->data + 6;
        size_t length = m->data_length - 6;
        int big;
        if (memcmp(tiff, "MM\0*", 4) == 0) big = 1;
        else if (memcmp(tiff, "II*\0", 4) == 0) big = 0;
        else return 1;
        uint32_t ifd = read32(tiff + 4, big);
        if (ifd > length || length - ifd < 2) return 1;
        uint32_t entries = read16(tiff + ifd, big);
        for (uint32_t i = 0; i < entries; i++) {
            size_t at = (size_t)ifd + 2 + (size_t)i * 12;
            if (at + 12 > length) return 1;
            if (read16(tiff + at, big) == 0x0112 && read16(tiff + at + 2, big) == 3) {
                uint32_t v = read16(tiff + at + 8, big);
                return v >= 1 && v <= 8 ? (int)v : 1;
            }
        }
        return 1;
    }
    return 1;
}

/* Orientations 5 to 8 swap the axes. */
static int swaps_axes(int orientation) { return orientation >= 5; }

/* Source pixel of display pixel (r, c) for an image stored h x w (EXIF's eight
   orientations, as Pillow's ImageOps.exif_transpose applies them). */
static void source_of(int orientation, uint32_t r, uint32_t c, uint32_t h, uint32_t w, uint32_t *sr, uint32_t *sc) {
    switch (orientation) {
    case 2: *sr = r; *sc = w - 1 - c; break;
    case 3: *sr = h - 1 - r; *sc = w - 1 - c; break;
    case 4: *sr = h - 1 - r; *sc = c; break;
    case 5: *sr = c; *sc = r; break;
    case 6: *sr = h - 1 - c; *sc = r; break;
    case 7: *sr = h - 1 - c; *sc = w - 1 - r; break;
    case 8: *sr = c; *sc = w - 1 - r; break;
    default: *sr = r; *sc = c; break;
    }
}

/* Opens `path` and reads its header into `info` (markers saved for EXIF);
   0 on success. The caller has set up the error manager and its jump. */
static int refuse_colour(j_decompress_ptr info, char *error) {
    if (info->jpeg_color_space == JCS_CMYK || info->jpeg_color_space == JCS_YCCK) {
        snprintf(error, 256, "is a CMYK JPEG; convert it to RGB (e.g. with ImageMagick: convert IN -colorspace sRGB OUT)");
        return -1;
    }
    if (info->num_components != 1 && info->num_components != 3) {
        snprintf(error, 256, "is a JPEG with %d colour components; expected grey (1) or colour (3)", info->num_components);
        return -1;
    }
    return 0;
}

int segkit_jpeg_read(const char *path, uint64_t max_pixels, segkit_jpeg *out) {
    memset(out, 0, sizeof(*out));
    FILE *file = fopen(path, "rb");
    if (!file) { snprintf(out->error, sizeof out->error, "cannot be opened"); return -1; }
    struct jpeg_decompress_struct info;
    error_manager errors;
    uint8_t *volatile raw = NULL; /* volatile: read after longjmp */
    info.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = on_error;
    errors.base.emit_message = on_message;
    errors.message = out->error;
    if (setjmp(errors.jump)) {
        free(raw);
        free(out->samples);
        out->samples = NULL;
        jpeg_destroy_decompress(&info);
        fclose(file);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&info, TRUE);
    if (refuse_colour(&info, out->error) != 0) longjmp(errors.jump, 1);
    uint32_t w = info.image_width, h = info.image_height;
    if (w == 0 || h == 0 || (uint64_t)w * h > max_pixels) {
        snprintf(out->error, sizeof out->error, "is %ux%u pixels, over the limit of %llu", w, h, (unsigned long long)max_pixels);
        longjmp(errors.jump, 1);
    }
    int channels = info.num_components == 1 ? 1 : 3;
    info.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    out->progressive = info.progressive_mode ? 1 : 0;
    out->orientation = exif_orientation(&info);
    jpeg_start_decompress(&info);
    size_t row = (size_t)w * (size_t)channels;
    raw = malloc(row * h);
    if (!raw) { snprintf(out->error, sizeof out->error, "out of memory decoding %ux%u pixels", w, h); longjmp(errors.jump, 1); }
    while (info.output_scanline < h) {
        JSAMPROW rows[1] = { raw + (size_t)info.output_scanline * row };
        jpeg_read_scanlines(&info, rows, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    fclose(file);

    int o = out->orientation;
    out->channels = channels;
    out->width = swaps_axes(o) ? h : w;
    out->height = swaps_axes(o) ? w : h;
    if (o == 1) { out->samples = raw; return 0; }
    out->samples = malloc(row * h);
    if (!out->samples) { free(raw); snprintf(out->error, sizeof out->error, "out of memory decoding %ux%u pixels", w, h); return -1; }
    for (uint32_t r = 0; r < out->height; r++)
        for (uint32_t c = 0; c < out->width; c++) {
            uint32_t sr, sc;
            source_of(o, r, c, h, w, &sr, &sc);
            memcpy(out->samples + ((size_t)r * out->width + c) * channels, raw + ((size_t)sr * w + sc) * channels, (size_t)channels);
        }
    free(raw);
    return 0;
}

void segkit_jpeg_free(segkit_jpeg *jpeg) {
    free(jpeg->samples);
    jpeg->samples = NULL;
}

int segkit_jpeg_size(const char *path, uint32_t *width, uint32_t *height, int *channels, char *error, size_t error_size) {
    char message[256] = {0};
    FILE *file = fopen(path, "rb");
    if (!file) { snprintf(error, error_size, "cannot be opened"); return -1; }
    struct jpeg_decompress_struct info;
    error_manager errors;
    info.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = on_error;
    errors.base.emit_message = on_message;
    errors.message = message;
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&info);
        fclose(file);
        snprintf(error, error_size, "%s", message);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&info, TRUE);
    if (refuse_colour(&info, message) != 0) longjmp(errors.jump, 1);
    int o = exif_orientation(&info);
    *width = swaps_axes(o) ? info.image_height : info.image_width;
    *height = swaps_axes(o) ? info.image_width : info.image_height;
    *channels = info.num_components == 1 ? 1 : 3;
    jpeg_destroy_decompress(&info);
    fclose(file);
    return 0;
}
