// Max pooling over NHWC images, vectorised across channels, with the flat
// input index of each maximum kept for the backward pass.

#include "segkit_kernels.h"

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES
void segkit_max_pool(const float *x, int c, segkit_axis rows, segkit_axis cols, float *y, int *argmax,
                     int row_begin, int row_end) {
    for (int r = row_begin; r < row_end; r++) {
        int n = r / rows.output, oy = r % rows.output;
        int y0 = oy * rows.stride - rows.pad_before, y1 = y0 + rows.kernel;
        if (y0 < 0) y0 = 0;
        if (y1 > rows.input) y1 = rows.input;
        for (int ox = 0; ox < cols.output; ox++) {
            int x0 = ox * cols.stride - cols.pad_before, x1 = x0 + cols.kernel;
            if (x0 < 0) x0 = 0;
            if (x1 > cols.input) x1 = cols.input;
            size_t o = ((size_t)r * cols.output + ox) * c;
            float *out = y + o;
            int *am = argmax ? argmax + o : 0;
            // Every window holds at least one real input: start from its first.
            size_t first = (((size_t)n * rows.input + y0) * cols.input + x0) * c;
            for (int k = 0; k < c; k++) out[k] = x[first + k];
            if (am) for (int k = 0; k < c; k++) am[k] = (int)(first + k);
            for (int iy = y0; iy < y1; iy++) {
                for (int ix = x0; ix < x1; ix++) {
                    size_t i = (((size_t)n * rows.input + iy) * cols.input + ix) * c;
                    if (am) {
                        for (int k = 0; k < c; k++) {
                            int bigger = x[i + k] > out[k];
                            out[k] = bigger ? x[i + k] : out[k];
                            am[k] = bigger ? (int)(i + k) : am[k];
                        }
                    } else {
                        for (int k = 0; k < c; k++) out[k] = x[i + k] > out[k] ? x[i + k] : out[k];
                    }
                }
            }
        }
    }
}
