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
#include "conv_tile.h"
#include <stdlib.h>

/// Row iy of image n of input part `part`: x, or (part 1) the second part x2
/// of a concatenation on the channel axis; its channel count in *channels.
INLINE const float *part_row(const float *x, int cin, const float *x2, int cin2, int part, int n, int iy,
                             segkit_axis rows, segkit_axis cols, int *channels) {
    *channels = part ? cin2 : cin;
    return (part ? x2 : x) + ((size_t)n * rows.input + (size_t)iy) * (size_t)cols.input * (size_t)*channels;
}

CLONES
void segkit_conv2d_direct(const float *x, int cin, const float *x2, int cin2, segkit_axis rows, segkit_axis cols,
                          const float *w, int cout, int cout_padded, const float *bias,
                          const float *zeros, float *y, int row_begin, int row_end) {
    // Per kernel position one tap per part: a concatenation's parts are read
    // where they are, with the weights of their channels.
    const int parts = x2 ? 2 : 1;
    tap *taps = malloc(sizeof(tap) * (size_t)rows.kernel * (size_t)cols.kernel * (size_t)parts);
    if (!taps) { segkit_note_allocation_failure(); return; }
    const tile_shape s = {cout, cout_padded, bias, zeros, cout};
    const int cin_total = cin + (x2 ? cin2 : 0);
    for (int r = row_begin; r < row_end; r++) {
        int n = r / rows.output, oy = r % rows.output;
        int ntaps = 0;
        for (int ky = 0; ky < rows.kernel; ky++) {
            int iy = oy * rows.stride - rows.pad_before + ky * rows.dilation;
            if (iy < 0 || iy >= rows.input) continue;
            for (int part = 0; part < parts; part++) {
                int c;
                const float *row = part_row(x, cin, x2, cin2, part, n, iy, rows, cols, &c);
                for (int kx = 0; kx < cols.kernel; kx++) {
                    const float *wtap = w + (((size_t)ky * cols.kernel + kx) * (size_t)cin_total + (part ? cin : 0)) * (size_t)cout_padded;
                    taps[ntaps++] = (tap){wtap, row, kx * cols.dilation - cols.pad_before, cols.stride, c, cols.input};
                }
            }
        }
        pixel_run(taps, ntaps, &s, y + (size_t)r * cols.output * cout, 0, 1, cols.output);
    }
    free(taps);
}

CLONES
void segkit_conv2d_transpose_direct(const float *dy, int cdy, segkit_axis rows, segkit_axis cols,
                                    const float *w, int cx, int cx_padded, const float *bias,
                                    const float *zeros, float *x, float *x2, int cx1, int row_begin, int row_end,
                                    const float *skip, int cskip, const float *wskip) {
    tap *taps = malloc(sizeof(tap) * ((size_t)rows.kernel * (size_t)cols.kernel + 1));
    if (!taps) { segkit_note_allocation_failure(); return; }
    if (!x2) cx1 = cx;
    const tile_shape s = {cx, cx_padded, bias, zeros, cx1};
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
                    taps[ntaps++] = (tap){w + ((size_t)ky * cols.kernel + kx) * (size_t)cdy * (size_t)cx_padded, row, q, 1,
                                          cdy, cols.output};
                }
            }
            // The skip's projection: one more tap, reading the skip's pixels of this phase.
            if (skip)
                taps[ntaps++] = (tap){wskip, skip + (size_t)r * cols.input * (size_t)cskip, phase, cols.stride,
                                      cskip, cols.input};
            int count = (cols.input - phase + cols.stride - 1) / cols.stride;
            const size_t pixel = (size_t)r * cols.input + (size_t)phase;
            float *out = x + pixel * (size_t)cx1, *out2 = x2 ? x2 + pixel * (size_t)(cx - cx1) : 0;
            if (ntaps == 0) {
                // No tap reaches these pixels: they are the bias alone.
                for (int i = 0; i < count; i++) {
                    const size_t step = (size_t)i * cols.stride;
                    for (int c = 0; c < cx1; c++) out[step * cx1 + c] = bias ? bias[c] : 0;
                    for (int c = cx1; c < cx; c++) out2[step * (cx - cx1) + c - cx1] = bias ? bias[c] : 0;
                }
                continue;
            }
            pixel_run(taps, ntaps, &s, out, out2, cols.stride, count);
        }
    }
    free(taps);
}

/// *v = the 16 floats from p, those at or past `end` read as zeros (whole
/// vectors read past a pixel's channels into the next pixel's, and only at
/// the end of a tensor is that a read past its memory). Through a pointer, not
/// returned: a returned 64-byte vector changes the ABI of the non-AVX-512 clones.
INLINE void load_before(v16 *v, const float *p, const float *end) {
    if (p + 16 <= end) {
        *v = *(const v16u *)p;
        return;
    }
    v16 t = {0};
    for (int k = 0; k < 16 && p + k < end; k++) t[k] = p[k];
    *v = t;
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
            // Lane by lane inline, not through load_before: with the helper's
            // branch inlined per vector the U-Net step measured 3.5% slower.
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

/// One tap's kernel gradient over the output pixels [lo, hi) of one row:
/// dwtap[c][:] += Σ_p x(p·xstep)[c] · dy(p) for the c input channels of the
/// pixels at xbase, in the widest blocks the output channel vectors allow.
INLINE void kernel_gradient_tap(const float *xbase, int c, int xstep, const float *dyrow, int cout, int cout_padded,
                                const float *dy_end, int lo, int hi, float *dwtap) {
    if (lo >= hi) return;
    for (int c0 = 0; c0 < cout_padded; c0 += 64) {
        int vectors = (cout_padded - c0) / 16;
        const float *d = dyrow + c0;
        int ci = 0;
        #define BLOCK(CI, CB)                                                                                 \
            for (; ci + (CI) <= c; ci += (CI))                                                                \
                kernel_gradient_block((CI), (CB), xbase + ci, c, xstep, d, cout, dy_end, lo, hi,              \
                                      dwtap + (size_t)ci * cout_padded + c0, cout_padded);
        switch (vectors) {
        case 1:
            // One block for all remaining channels (an 11-channel decoder
            // input then reads each dy vector once per tap, not three times).
            BLOCK(16, 1)
            switch (c - ci) {
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

/// The kernel gradients of three taps of one kernel row (a 3-wide, stride-1,
/// undilated kernel) for 16 output channels: dw_k[c][:] += Σ_p x(p + shift
/// + k)[c] · dy(p), taken over the input pixels q ∈ [q_lo, q_hi), each of
/// which the three taps read (from output pixels q − shift − k). Each x value
/// is broadcast once for its three products, where tap by tap it is
/// broadcast three times: with one output vector the broadcasts set the pace.
INLINE void kernel_gradient_three_taps(const int CI, const float *xrow, int cin, const float *dyrow, int dstride,
                                       const float *dy_end, int shift, int q_lo, int q_hi, float *dw, size_t tap_size,
                                       int padded) {
    v16 acc[3][8];
    UNROLL for (int k = 0; k < 3; k++) UNROLL for (int i = 0; i < CI; i++) acc[k][i] = (v16){0};
    // dy of the output pixel q − shift − k, for tap k; the oldest moves down each step.
    v16 d0, d1, d2;
    load_before(&d1, dyrow + (ptrdiff_t)(q_lo - shift - 1) * dstride, dy_end);
    load_before(&d2, dyrow + (ptrdiff_t)(q_lo - shift - 2) * dstride, dy_end);
    for (int q = q_lo; q < q_hi; q++) {
        load_before(&d0, dyrow + (ptrdiff_t)(q - shift) * dstride, dy_end);
        const float *xv = xrow + (size_t)q * cin;
        UNROLL for (int i = 0; i < CI; i++) {
            float s = xv[i];
            acc[0][i] += s * d0;
            acc[1][i] += s * d1;
            acc[2][i] += s * d2;
        }
        d2 = d1;
        d1 = d0;
    }
    UNROLL for (int k = 0; k < 3; k++) UNROLL for (int i = 0; i < CI; i++) {
        v16u *o = (v16u *)(dw + k * tap_size + (size_t)i * padded);
        *o = *o + acc[k][i];
    }
}

/// Tap kx's output pixels [lo, hi) of a row, those whose input pixel
/// p·stride + shift is inside the input row; returns the shift.
INLINE int tap_pixels(segkit_axis cols, int kx, int *lo, int *hi) {
    int shift = kx * cols.dilation - cols.pad_before;
    *lo = shift >= 0 ? 0 : (-shift + cols.stride - 1) / cols.stride;
    *hi = cols.input - 1 - shift < 0 ? 0 : (cols.input - 1 - shift) / cols.stride + 1;
    if (*hi > cols.output) *hi = cols.output;
    return shift;
}

/// A kernel row of three taps (3-wide, stride 1, undilated) for 16 output
/// channels, over one output row: the input pixels all three taps read
/// shared (kernel_gradient_three_taps), each tap's others on its own.
INLINE void kernel_gradient_row_of_three(const float *xrow, int c, const float *dyrow, int cout, const float *dy_end,
                                         segkit_axis cols, float *dw, size_t tap_size) {
    int lo[3], hi[3], shift[3];
    for (int kx = 0; kx < 3; kx++) shift[kx] = tap_pixels(cols, kx, &lo[kx], &hi[kx]);
    int q_lo = lo[0] + shift[0], q_hi = hi[0] + shift[0];
    for (int kx = 1; kx < 3; kx++) {
        if (lo[kx] + shift[kx] > q_lo) q_lo = lo[kx] + shift[kx];
        if (hi[kx] + shift[kx] < q_hi) q_hi = hi[kx] + shift[kx];
    }
    if (q_hi < q_lo) q_hi = q_lo;  // none shared (a row narrower than the kernel)
    int ci = 0;
    if (q_lo < q_hi) {
        #define BLOCK(CI)                                                                                           \
            for (; ci + (CI) <= c; ci += (CI))                                                                      \
                kernel_gradient_three_taps((CI), xrow + ci, c, dyrow, cout, dy_end, shift[0], q_lo, q_hi,           \
                                           dw + (size_t)ci * 16, tap_size, 16);
        BLOCK(8) BLOCK(4) BLOCK(2) BLOCK(1)
        #undef BLOCK
    }
    for (int kx = 0; kx < 3; kx++) {
        const float *xbase = xrow + (ptrdiff_t)shift[kx] * c;
        // Without shared pixels, q_lo − shift .. q_hi − shift is empty and the tap's own range covers [lo, hi).
        int mid_lo = q_lo - shift[kx], mid_hi = q_hi - shift[kx];
        if (mid_lo < lo[kx]) mid_lo = lo[kx];
        if (mid_hi > hi[kx]) mid_hi = hi[kx];
        if (mid_lo >= mid_hi) mid_lo = mid_hi = hi[kx];
        kernel_gradient_tap(xbase, c, 1, dyrow, cout, 16, dy_end, lo[kx], mid_lo, dw + kx * tap_size);
        kernel_gradient_tap(xbase, c, 1, dyrow, cout, 16, dy_end, mid_hi, hi[kx], dw + kx * tap_size);
    }
}

/// Whether output row oy's tap ky is the first (in output-row order) to read
/// its input row iy: no later tap reaches iy from an earlier output row.
INLINE int first_read_of_row(int iy, int ky, segkit_axis rows) {
    for (int k = ky + 1; k < rows.kernel; k++) {
        int num = iy + rows.pad_before - k * rows.dilation;
        if (num >= 0 && num % rows.stride == 0 && num / rows.stride < rows.output) return 0;
    }
    return 1;
}

CLONES
void segkit_conv2d_kernel_gradient_direct(const float *x, int cin, const float *x2, int cin2, segkit_axis rows,
                                          segkit_axis cols, const float *dy, const float *relu_y, float *dz, int cout,
                                          int cout_padded, float *dw, int row_begin, int row_end, float *dy_sums,
                                          float *x_sums) {
    // The taps read dz (dy through the ReLU) when there is one, written row by
    // row just before: the row is then in L1 for them, and ReLU's backward
    // pass needs no sweep of its own over the whole tensor.
    const float *grad = relu_y ? dz : dy;
    const float *grad_end = grad + (size_t)row_end * cols.output * (size_t)cout;  // end of this call's last row
    const size_t row_floats = (size_t)cols.output * (size_t)cout;
    const int parts = x2 ? 2 : 1, cin_total = cin + (x2 ? cin2 : 0);
    for (int r = row_begin; r < row_end; r++) {
        int n = r / rows.output, oy = r % rows.output;
        const size_t offset = (size_t)r * row_floats;
        const float *dyrow = grad + offset;
        // Bias gradients summed from rows the taps are about to read anyway.
        if (relu_y && dy_sums) sum_rows_of(dy + offset, relu_y + offset, dz + offset, (size_t)cols.output, cout, dy_sums);
        else if (relu_y) relu_backward_of(dy + offset, relu_y + offset, dz + offset, row_floats);
        else if (dy_sums) sum_rows_of(dyrow, 0, 0, (size_t)cols.output, cout, dy_sums);
        for (int ky = 0; ky < rows.kernel; ky++) {
            int iy = oy * rows.stride - rows.pad_before + ky * rows.dilation;
            if (iy < 0 || iy >= rows.input) continue;
            for (int part = 0; part < parts; part++) {
                // A concatenation's second part: its own rows, the weights of its channels.
                int c;
                const float *xrow = part_row(x, cin, x2, cin2, part, n, iy, rows, cols, &c);
                if (x_sums && first_read_of_row(iy, ky, rows)) sum_rows_of(xrow, 0, 0, (size_t)cols.input, c, x_sums + (part ? cin : 0));
                float *dwrow = dw + ((size_t)ky * cols.kernel * (size_t)cin_total + (part ? cin : 0)) * (size_t)cout_padded;
                const size_t tap_size = (size_t)cin_total * cout_padded;
                if (cout_padded == 16 && cols.kernel == 3 && cols.stride == 1 && cols.dilation == 1) {
                    kernel_gradient_row_of_three(xrow, c, dyrow, cout, grad_end, cols, dwrow, tap_size);
                    continue;
                }
                for (int kx = 0; kx < cols.kernel; kx++) {
                    int lo, hi, shift = tap_pixels(cols, kx, &lo, &hi);
                    // x pixel of output pixel p: xrow + (p·stride + shift)·c.
                    kernel_gradient_tap(xrow + (ptrdiff_t)shift * c, c, cols.stride, dyrow, cout, cout_padded, grad_end,
                                        lo, hi, dwrow + kx * tap_size);
                }
            }
        }
    }
}

/// One block of CI channels of a transposed convolution's output gradient g,
/// over the pixels [lo, hi) of one row and one tap: its kernel gradient
/// dw[c][:] += Σ_p g(p)[c] · x(p) (as kernel_gradient_block) and its input
/// gradient dx(p) += Σ_c g(p)[c] · w[c][:], each g value loaded once for both
/// (x pixels cx ≤ 16 floats apart, ending at x_end; g pixels gstep·cg apart).
INLINE void transpose_gradients_block(const int CI, const float *grow, int cg, int gstep, const float *xrow, int cx,
                                      const float *x_end, int lo, int hi, const float *w, float *dw, v16 *dxrow) {
    v16 acc[12], wv[12];
    UNROLL for (int i = 0; i < CI; i++) {
        acc[i] = (v16){0};
        wv[i] = *(const v16u *)(w + (size_t)i * 16);
    }
    for (int p = lo; p < hi; p++) {
        // Lanes past cx hold the next pixel's values: they reach only dw's padding.
        v16 xv;
        load_before(&xv, xrow + (size_t)p * cx, x_end);
        const float *gv = grow + (size_t)p * gstep * cg;
        v16 d = dxrow[p];
        UNROLL for (int i = 0; i < CI; i++) {
            float s = gv[i];
            acc[i] += s * xv;
            d += s * wv[i];
        }
        dxrow[p] = d;
    }
    UNROLL for (int i = 0; i < CI; i++) {
        v16u *o = (v16u *)(dw + (size_t)i * 16);
        *o = *o + acc[i];
    }
}

CLONES
void segkit_conv2d_transpose_gradients_direct(const float *g, int cg, segkit_axis rows, segkit_axis cols,
                                              const float *x, int cx, const float *w, float *dw, float *dx,
                                              int row_begin, int row_end, float *g_sums) {
    // dx's row accumulates in whole vectors here (cx lanes of each are written out).
    v16 *dxrow = aligned_alloc(64, sizeof(v16) * (size_t)(cols.output > 0 ? cols.output : 1));
    if (!dxrow) { segkit_note_allocation_failure(); return; }
    const float *x_end = x + (size_t)row_end * cols.output * (size_t)cx;
    for (int r = row_begin; r < row_end; r++) {
        int n = r / rows.output, oy = r % rows.output;
        for (int p = 0; p < cols.output; p++) dxrow[p] = (v16){0};
        const float *xrow = x + (size_t)r * cols.output * (size_t)cx;
        for (int ky = 0; ky < rows.kernel; ky++) {
            int iy = oy * rows.stride - rows.pad_before + ky * rows.dilation;
            if (iy < 0 || iy >= rows.input) continue;
            const float *grow = g + ((size_t)n * rows.input + (size_t)iy) * (size_t)cols.input * (size_t)cg;
            if (g_sums && first_read_of_row(iy, ky, rows)) sum_rows_of(grow, 0, 0, (size_t)cols.input, cg, g_sums);
            for (int kx = 0; kx < cols.kernel; kx++) {
                int shift = kx * cols.dilation - cols.pad_before;
                int lo = shift >= 0 ? 0 : (-shift + cols.stride - 1) / cols.stride;
                int hi = cols.input - 1 - shift < 0 ? 0 : (cols.input - 1 - shift) / cols.stride + 1;
                if (hi > cols.output) hi = cols.output;
                if (lo >= hi) continue;
                const float *gbase = grow + (ptrdiff_t)shift * cg;
                size_t tap = ((size_t)ky * cols.kernel + kx) * (size_t)cg * 16;
                int c = 0;
                // Blocks of at most 12 channels: their accumulators and weights fill 24 of the 32 registers.
                #define BLOCK(CI)                                                                                   \
                    for (; c + (CI) <= cg; c += (CI))                                                               \
                        transpose_gradients_block((CI), gbase + c, cg, cols.stride, xrow, cx, x_end, lo, hi,        \
                                                  w + tap + (size_t)c * 16, dw + tap + (size_t)c * 16, dxrow);
                BLOCK(12)
                switch (cg - c) {
                case 11: BLOCK(11) break; case 10: BLOCK(10) break; case 9: BLOCK(9) break; case 8: BLOCK(8) break;
                case 7: BLOCK(7) break; case 6: BLOCK(6) break; case 5: BLOCK(5) break; case 4: BLOCK(4) break;
                case 3: BLOCK(3) break; case 2: BLOCK(2) break; case 1: BLOCK(1) break;
                }
                #undef BLOCK
            }
        }
        float *out = dx + (size_t)r * cols.output * (size_t)cx;
        if (cx == 16)
            for (int p = 0; p < cols.output; p++) *(v16u *)(out + (size_t)p * 16) = dxrow[p];
        else
            for (int p = 0; p < cols.output; p++) store_first(out + (size_t)p * cx, &dxrow[p], cx);
    }
    free(dxrow);
}
