// Bilinear enlargement of NHWC images, the whole decoder of a weightless
// segmenter: at x8 it writes 64 output values per input value, so it is
// written to stream: per output row, one vertical blend of two input rows,
// then one horizontal pass through per-value tables shared by every row.

#include "segkit_kernels.h"
#include <stdlib.h>

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES
void segkit_upsample_bilinear(const float *x, int h, int w, int c, int oh, int ow,
                              const int *row_lower, const int *row_upper, const float *row_weight,
                              const int *col_lower, const int *col_upper, const float *col_weight,
                              float *y, int image_begin, int image_end) {
    size_t in_row = (size_t)w * c, out_row = (size_t)ow * c;
    float *blend = malloc(sizeof(float) * in_row);
    int *lower = malloc(sizeof(int) * out_row);
    int *upper = malloc(sizeof(int) * out_row);
    float *weight = malloc(sizeof(float) * out_row);
    if (!blend || !lower || !upper || !weight) {
        free(blend); free(lower); free(upper); free(weight);
        segkit_note_allocation_failure();
        return;
    }
    for (int ox = 0; ox < ow; ox++) {
        for (int k = 0; k < c; k++) {
            size_t j = (size_t)ox * c + k;
            lower[j] = col_lower[ox] * c + k;
            upper[j] = col_upper[ox] * c + k;
            weight[j] = col_weight[ox];
        }
    }
    for (int n = image_begin; n < image_end; n++) {
        const float *image = x + (size_t)n * h * in_row;
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = image + (size_t)row_lower[oy] * in_row, *r1 = image + (size_t)row_upper[oy] * in_row;
            float wy = row_weight[oy];
            for (size_t i = 0; i < in_row; i++) blend[i] = r0[i] + wy * (r1[i] - r0[i]);
            float *out = y + ((size_t)n * oh + oy) * out_row;
            for (size_t j = 0; j < out_row; j++) {
                float a = blend[lower[j]], b = blend[upper[j]];
                out[j] = a + weight[j] * (b - a);
            }
        }
    }
    free(blend);
    free(lower);
    free(upper);
    free(weight);
}
