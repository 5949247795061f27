// Direct (im2col-free) convolution kernels for NHWC tensors.
//
// Why hand-written: im2col + sgemm is the right tool for wide layers, but for
// layers with few input or output channels (a grey image's first convolution,
// the 1x1 skip projections and K-channel transposed decoders of a segmenter)
// the patch matrix and the packing copies inside sgemm cost more than the
// multiplications: `segkit bench` measured 7 GFLOP/s for a 1→16 3x3 layer.
// OpenBLAS has no convolution, so these loops are SegKit's own.
//
// Shape of the computation: an output tile is P pixels of one output row by
// CB vectors of 16 channels, held in registers for the whole reduction over
// the kernel taps and input channels; each input value is broadcast once per
// tile and each weight vector loaded once per tile. The functions are compiled
// for AVX-512, AVX2 and baseline x86-64 and the loader picks one per machine.

#include "segkit_kernels.h"
#include "vector_math.h"
#include <stdlib.h>

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
// Loops over a tile's pixels and vectors must unroll fully, or the accumulators
// live in memory (clang left a 12-pixel loop rolled without this).
#define UNROLL _Pragma("clang loop unroll(full)")
#define MAX_P 16
#define MAX_CB 4

typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef float v4u __attribute__((vector_size(16), aligned(4)));
typedef float v2u __attribute__((vector_size(8), aligned(4)));

/// Stores the first n (< 16) lanes of a in halves, quarters, pairs: a
/// variable-length copy compiles to a memcpy call, which perf showed costing
/// more than the tile's arithmetic for an 11-channel output.
INLINE void store_first(float *o, const v16 *vector, int n) {
    v16 a = *vector;
    v8u h = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7);
    if (n >= 8) {
        *(v8u *)o = h;
        h = __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
        o += 8;
        n -= 8;
    }
    v4u q = __builtin_shufflevector(h, h, 0, 1, 2, 3);
    if (n >= 4) {
        *(v4u *)o = q;
        q = __builtin_shufflevector(h, h, 4, 5, 6, 7);
        o += 4;
        n -= 4;
    }
    v2u d = __builtin_shufflevector(q, q, 0, 1);
    if (n >= 2) {
        *(v2u *)o = d;
        d = __builtin_shufflevector(q, q, 2, 3);
        o += 2;
        n -= 2;
    }
    if (n) o[0] = d[0];
}

/// One kernel tap as seen by a tile: the weights [c][padded out], the input
/// row it reads, the input pixel the tile's first pixel reads and the pixel
/// step between consecutive tile pixels. Pixels outside [0, width) read zeros.
typedef struct {
    const float *w;
    const float *row;
    int first, step;
} tap;

typedef struct {
    int width, channels;      // input pixels per row, channels per input pixel
    int out_channels, padded; // output channels, and their padded weight stride
    const float *bias, *zeros;
} tile_shape;

/// acc[p][v] = bias + Σ_taps Σ_c in(p)[c] · w[c][16v ..< 16v+16], stored to
/// out + p·out_step·out_channels (only the first out_channels − c0 channels).
INLINE void tile(const int P, const int CB, const tap *taps, int ntaps, const tile_shape *s,
                 int c0, float *out, int out_step) {
    // Fixed-size arrays (P and CB are constants once inlined): variable-length
    // ones kept the accumulators on the stack instead of in registers.
    v16 acc[MAX_P][MAX_CB];
    UNROLL for (int v = 0; v < CB; v++) {
        v16 b = {0};
        if (s->bias) b = *(const v16u *)(s->bias + c0 + 16 * v);
        UNROLL for (int p = 0; p < P; p++) acc[p][v] = b;
    }
    const int C = s->channels;
    for (int t = 0; t < ntaps; t++) {
        const float *in[MAX_P];
        UNROLL for (int p = 0; p < P; p++) {
            int i = taps[t].first + p * taps[t].step;
            in[p] = (unsigned)i < (unsigned)s->width ? taps[t].row + (size_t)i * C : s->zeros;
        }
        const float *w = taps[t].w + c0;
        for (int c = 0; c < C; c++) {
            v16 wv[MAX_CB];
            UNROLL for (int v = 0; v < CB; v++) wv[v] = *(const v16u *)(w + (size_t)c * s->padded + 16 * v);
            UNROLL for (int p = 0; p < P; p++) {
                float xv = in[p][c];
                UNROLL for (int v = 0; v < CB; v++) acc[p][v] += xv * wv[v];
            }
        }
    }
    const int valid = s->out_channels - c0;
    UNROLL for (int p = 0; p < P; p++) {
        float *o = out + (size_t)p * out_step * s->out_channels + c0;
        if (valid >= 16 * CB) {
            UNROLL for (int v = 0; v < CB; v++) *(v16u *)(o + 16 * v) = acc[p][v];
        } else {
            UNROLL for (int v = 0; v < CB; v++) {
                int n = valid - 16 * v;
                if (n >= 16) *(v16u *)(o + 16 * v) = acc[p][v];
                else if (n > 0) store_first(o + 16 * v, &acc[p][v], n);
            }
        }
    }
}

/// Runs the tiles of `count` output pixels (the first at `out`, then every
/// out_step pixels) for every block of output channels, taps fixed per pixel
/// run. Wide channel blocks get fewer pixels so the accumulators fit the
/// 32 vector registers of AVX-512.
INLINE void pixel_run(tap *taps, int ntaps, const tile_shape *s, float *out, int out_step, int count) {
    for (int c0 = 0; c0 < s->out_channels; c0 += 64) {
        int vectors = (s->out_channels - c0 + 15) / 16;
        int done = 0;
        // Each tile advances the taps' first pixel by its size, so the taps are
        // restored afterwards for the next channel block.
        #define RUN(P, CB)                                                                       \
            while (count - done >= (P)) {                                                        \
                tile((P), (CB), taps, ntaps, s, c0, out + (size_t)done * out_step * s->out_channels, out_step); \
                for (int t = 0; t < ntaps; t++) taps[t].first += (P) * taps[t].step;             \
                done += (P);                                                                     \
            }
        // The widest tile that fits the registers, unless a narrower one divides
        // the run exactly (a 32-pixel row as 8+8+8+8, not 12+12+4+4: the
        // narrow tail tiles ran at half speed on the classifier's short rows).
        switch (vectors) {
        case 1: RUN(16, 1) RUN(4, 1) RUN(1, 1) break;
        case 2:
            if (count % 12 != 0 && count % 8 == 0) { RUN(8, 2) }
            RUN(12, 2) RUN(4, 2) RUN(1, 2) break;
        case 3: RUN(8, 3) RUN(2, 3) RUN(1, 3) break;
        default:
            if (count % 6 != 0 && count % 4 == 0) { RUN(4, 4) }
            RUN(6, 4) RUN(2, 4) RUN(1, 4) break;
        }
        #undef RUN
        for (int t = 0; t < ntaps; t++) taps[t].first -= done * taps[t].step;
    }
}

CLONES
void segkit_conv2d_direct(const float *x, int cin, segkit_axis rows, segkit_axis cols,
                          const float *w, int cout, int cout_padded, const float *bias,
                          const float *zeros, float *y, int row_begin, int row_end) {
    tap *taps = malloc(sizeof(tap) * (size_t)rows.kernel * (size_t)cols.kernel);
    if (!taps) abort();
    const tile_shape s = {cols.input, cin, cout, cout_padded, bias, zeros};
    for (int r = row_begin; r < row_end; r++) {
        int n = r / rows.output, oy = r % rows.output;
        int ntaps = 0;
        for (int ky = 0; ky < rows.kernel; ky++) {
            int iy = oy * rows.stride - rows.pad_before + ky * rows.dilation;
            if (iy < 0 || iy >= rows.input) continue;
            const float *row = x + ((size_t)n * rows.input + (size_t)iy) * (size_t)cols.input * (size_t)cin;
            for (int kx = 0; kx < cols.kernel; kx++) {
                taps[ntaps++] = (tap){w + ((size_t)ky * cols.kernel + kx) * (size_t)cin * (size_t)cout_padded, row,
                                      kx * cols.dilation - cols.pad_before, cols.stride};
            }
        }
        pixel_run(taps, ntaps, &s, y + (size_t)r * cols.output * cout, 1, cols.output);
    }
    free(taps);
}

CLONES
void segkit_conv2d_transpose_direct(const float *dy, int cdy, segkit_axis rows, segkit_axis cols,
                                    const float *w, int cx, int cx_padded, const float *bias,
                                    const float *zeros, float *x, int row_begin, int row_end) {
    tap *taps = malloc(sizeof(tap) * (size_t)rows.kernel * (size_t)cols.kernel);
    if (!taps) abort();
    const tile_shape s = {cols.output, cdy, cx, cx_padded, bias, zeros};
    for (int r = row_begin; r < row_end; r++) {
        int n = r / rows.input, iy = r % rows.input;
        // Input pixels of one phase (ix ≡ phase mod stride) share their taps:
        // tap kx reaches them iff (ix + pad − kx·dilation) is a multiple of the
        // stride, and then consecutive ones read consecutive dy pixels.
        for (int phase = 0; phase < cols.stride && phase < cols.input; phase++) {
            int ntaps = 0;
            for (int ky = 0; ky < rows.kernel; ky++) {
                int num = iy + rows.pad_before - ky * rows.dilation;
                if (num < 0 || num % rows.stride != 0 || num / rows.stride >= rows.output) continue;
                const float *row = dy + ((size_t)n * rows.output + (size_t)(num / rows.stride)) * (size_t)cols.output * (size_t)cdy;
                for (int kx = 0; kx < cols.kernel; kx++) {
                    int numx = phase + cols.pad_before - kx * cols.dilation;
                    // Floor division and modulo that hold for negative numerators too.
                    int q = numx >= 0 ? numx / cols.stride : -((-numx + cols.stride - 1) / cols.stride);
                    if (numx - q * cols.stride != 0) continue;
                    taps[ntaps++] = (tap){w + ((size_t)ky * cols.kernel + kx) * (size_t)cdy * (size_t)cx_padded, row, q, 1};
                }
            }
            int count = (cols.input - phase + cols.stride - 1) / cols.stride;
            float *out = x + ((size_t)r * cols.input + (size_t)phase) * (size_t)cx;
            if (ntaps == 0) {
                // No tap reaches these pixels: they are the bias alone.
                for (int i = 0; i < count; i++)
                    for (int c = 0; c < cx; c++) out[(size_t)i * cols.stride * cx + c] = bias ? bias[c] : 0;
                continue;
            }
            pixel_run(taps, ntaps, &s, out, cols.stride, count);
        }
    }
    free(taps);
}

/// dw[tap][c][0 ..< 16·CB] += Σ over the pixels [lo, hi) of one output row of
/// x(tap, pixel)[c] · dy(pixel), for CI input channels (dy pixels dstride
/// floats apart, dy ending at dy_end): the accumulators stay in registers for
/// the whole row.
INLINE void kernel_gradient_block(const int CI, const int CB, const float *xrow, int cin, int xstep,
                                  const float *dyrow, int dstride, const float *dy_end, int lo, int hi, float *dw,
                                  int padded) {
    v16 acc[MAX_P][MAX_CB];
    UNROLL for (int i = 0; i < CI; i++) UNROLL for (int v = 0; v < CB; v++) acc[i][v] = (v16){0};
    for (int p = lo; p < hi; p++) {
        const float *d = dyrow + (size_t)p * dstride;
        const float *xv = xrow + (size_t)p * xstep * cin;
        v16 dv[MAX_CB];
        // Whole vectors even past cout (into the next pixel's values): those
        // lanes only reach dw's padding, which the caller drops. Only a read
        // that would pass the end of dy is assembled lane by lane.
        if (d + 16 * CB <= dy_end) {
            UNROLL for (int v = 0; v < CB; v++) dv[v] = *(const v16u *)(d + 16 * v);
        } else {
            UNROLL for (int v = 0; v < CB; v++) {
                v16 t = {0};
                for (int k = 0; k < 16 && d + 16 * v + k < dy_end; k++) t[k] = d[16 * v + k];
                dv[v] = t;
            }
        }
        UNROLL for (int i = 0; i < CI; i++) {
            float s = xv[i];
            UNROLL for (int v = 0; v < CB; v++) acc[i][v] += s * dv[v];
        }
    }
    UNROLL for (int i = 0; i < CI; i++) UNROLL for (int v = 0; v < CB; v++) {
        v16u *o = (v16u *)(dw + (size_t)i * padded + 16 * v);
        *o = *o + acc[i][v];
    }
}

CLONES
void segkit_conv2d_kernel_gradient_direct(const float *x, int cin, segkit_axis rows, segkit_axis cols,
                                          const float *dy, int cout, int cout_padded, float *dw,
                                          int row_begin, int row_end) {
    const float *dy_end = dy + (size_t)row_end * cols.output * (size_t)cout;  // end of this call's last row
    for (int r = row_begin; r < row_end; r++) {
        int n = r / rows.output, oy = r % rows.output;
        const float *dyrow = dy + (size_t)r * cols.output * cout;
        for (int ky = 0; ky < rows.kernel; ky++) {
            int iy = oy * rows.stride - rows.pad_before + ky * rows.dilation;
            if (iy < 0 || iy >= rows.input) continue;
            const float *xrow = x + ((size_t)n * rows.input + (size_t)iy) * (size_t)cols.input * (size_t)cin;
            for (int kx = 0; kx < cols.kernel; kx++) {
                // Output pixels whose input pixel ix = ox·stride − pad + kx·dilation is inside.
                int shift = kx * cols.dilation - cols.pad_before;
                int lo = shift >= 0 ? 0 : (-shift + cols.stride - 1) / cols.stride;
                int hi = cols.input - 1 - shift < 0 ? 0 : (cols.input - 1 - shift) / cols.stride + 1;
                if (hi > cols.output) hi = cols.output;
                if (lo >= hi) continue;
                // x pixel of output pixel p: xrow + (p·stride + shift)·cin.
                const float *xbase = xrow + (ptrdiff_t)shift * cin;
                float *dwtap = dw + ((size_t)ky * cols.kernel + kx) * (size_t)cin * (size_t)cout_padded;
                for (int c0 = 0; c0 < cout_padded; c0 += 64) {
                    int vectors = (cout_padded - c0) / 16;
                    const float *d = dyrow + c0;
                    int ci = 0;
                    #define BLOCK(CI, CB)                                                                     \
                        for (; ci + (CI) <= cin; ci += (CI))                                                  \
                            kernel_gradient_block((CI), (CB), xbase + ci, cin, cols.stride, d, cout, dy_end, lo, hi, \
                                                  dwtap + (size_t)ci * cout_padded + c0, cout_padded);
                    switch (vectors) {
                    case 1:
                        // One block for all remaining channels (an 11-channel decoder
                        // input then reads each dy vector once per tap, not three times).
                        BLOCK(16, 1)
                        switch (cin - ci) {
                        case 15: BLOCK(15, 1) break; case 14: BLOCK(14, 1) break; case 13: BLOCK(13, 1) break;
                        case 12: BLOCK(12, 1) break; case 11: BLOCK(11, 1) break; case 10: BLOCK(10, 1) break;
                        case 9: BLOCK(9, 1) break; case 8: BLOCK(8, 1) break; case 7: BLOCK(7, 1) break;
                        case 6: BLOCK(6, 1) break; case 5: BLOCK(5, 1) break; case 4: BLOCK(4, 1) break;
                        case 3: BLOCK(3, 1) break; case 2: BLOCK(2, 1) break; case 1: BLOCK(1, 1) break;
                        }
                        break;
                    case 2: BLOCK(8, 2) BLOCK(4, 2) BLOCK(2, 2) BLOCK(1, 2) break;
                    case 3: BLOCK(6, 3) BLOCK(3, 3) BLOCK(1, 3) break;
                    default: BLOCK(4, 4) BLOCK(2, 4) BLOCK(1, 4) break;
                    }
                    #undef BLOCK
                }
            }
        }
    }
}
