// Depthwise convolution kernels for NHWC tensors (Keras's DepthwiseConv2D, the
// first half of MobileNet, EfficientNet and Xception blocks).
//
// Why hand-written: each output reads only kh·kw values per channel, far too
// little work for a matrix product (OpenBLAS has no depthwise convolution, and
// im2col would copy every input kh·kw times). The work is memory-bound, so the
// loops read each input row once per output row from cache and run over
// contiguous channels, 16 to a vector: channel c of a pixel is the lane
// c mod 16 of one vector, the weights of a tap are one vector per 16 channels.
//
// Rows split across threads never write the same element: the forward pass and
// the input gradient are gathers (per output row, per input row); the kernel
// gradient writes one partial sum per caller-given part.
//
// Weights are HWC·M as Keras stores them: w[(ky·kw + kx)·C·M + c·M + m] for
// output channel c·M + m (M the depth multiplier).

#include "segkit_kernels.h"
#include "vector_math.h"

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/// Output row r of the n·output rows: image n, row oy.
INLINE void split_row(int r, segkit_axis rows, int *n, int *oy) {
    *n = r / rows.output;
    *oy = r % rows.output;
}

CLONES
void segkit_depthwise_forward(const float *x, int channels, int multiplier, segkit_axis rows, segkit_axis cols,
                              const float *w, const float *bias, float *y, int row_begin, int row_end) {
    const int cout = channels * multiplier;
    const size_t in_row = (size_t)cols.input * (size_t)channels;
    for (int r = row_begin; r < row_end; r++) {
        int n, oy;
        split_row(r, rows, &n, &oy);
        // The kernel rows that land inside the image, and their input rows.
        const float *xrows[64];
        int kys[64], nk = 0;
        for (int ky = 0; ky < rows.kernel && nk < 64; ky++) {
            int iy = oy * rows.stride - rows.pad_before + ky * rows.dilation;
            if (iy < 0 || iy >= rows.input) continue;
            xrows[nk] = x + ((size_t)n * rows.input + (size_t)iy) * in_row;
            kys[nk++] = ky;
        }
        float *yrow = y + (size_t)r * (size_t)cols.output * (size_t)cout;
        for (int ox = 0; ox < cols.output; ox++) {
            float *out = yrow + (size_t)ox * (size_t)cout;
            const int ix0 = ox * cols.stride - cols.pad_before;
            if (multiplier == 1) {
                // The pixel's taps inside the image, as (input, weight) pointers
                // at channel 0: the channel loop below is then two loads and an
                // FMA per tap, no index arithmetic or bounds test.
                const float *xs[64 * 64], *ws[64 * 64];
                int nt = 0;
                for (int t = 0; t < nk; t++) {
                    const float *wrow = w + (size_t)kys[t] * (size_t)cols.kernel * (size_t)channels;
                    for (int kx = 0; kx < cols.kernel; kx++) {
                        int ix = ix0 + kx * cols.dilation;
                        if (ix < 0 || ix >= cols.input) continue;
                        xs[nt] = xrows[t] + (size_t)ix * (size_t)channels;
                        ws[nt++] = wrow + (size_t)kx * (size_t)channels;
                    }
                }
                int c = 0;
                for (; c + 16 <= channels; c += 16) {
                    v16 acc = bias ? *(const v16u *)(bias + c) : (v16){0};
                    for (int j = 0; j < nt; j++) acc += *(const v16u *)(xs[j] + c) * *(const v16u *)(ws[j] + c);
                    *(v16u *)(out + c) = acc;
                }
                for (; c < channels; c++) {
                    float acc = bias ? bias[c] : 0;
                    for (int j = 0; j < nt; j++) acc += xs[j][c] * ws[j][c];
                    out[c] = acc;
                }
            } else {
                // A depth multiplier > 1 (rare in real nets): output channel o reads input channel o / M.
                for (int o = 0; o < cout; o++) {
                    float acc = bias ? bias[o] : 0;
                    const int c = o / multiplier;
                    for (int t = 0; t < nk; t++) {
                        const float *wrow = w + (size_t)kys[t] * (size_t)cols.kernel * (size_t)cout + o;
                        for (int kx = 0; kx < cols.kernel; kx++) {
                            int ix = ix0 + kx * cols.dilation;
                            if (ix < 0 || ix >= cols.input) continue;
                            acc += xrows[t][(size_t)ix * (size_t)channels + c] * wrow[(size_t)kx * (size_t)cout];
                        }
                    }
                    out[o] = acc;
                }
            }
        }
    }
}

/// The output index o along an axis that input index i reaches through tap k,
/// or −1 where none does (the stride skips it or it lies outside the output).
INLINE int reaching_output(int i, int k, segkit_axis a) {
    int t = i + a.pad_before - k * a.dilation;
    if (t < 0 || t % a.stride != 0) return -1;
    int o = t / a.stride;
    return o < a.output ? o : -1;
}

CLONES
void segkit_depthwise_input_gradient(const float *dz, int channels, int multiplier, segkit_axis rows, segkit_axis cols,
                                     const float *w, float *dx, int row_begin, int row_end) {
    const int cout = channels * multiplier;
    const size_t dz_row = (size_t)cols.output * (size_t)cout;
    for (int r = row_begin; r < row_end; r++) {
        const int n = r / rows.input, iy = r % rows.input;
        const float *dzrows[64];
        int kys[64], nk = 0;
        for (int ky = 0; ky < rows.kernel && nk < 64; ky++) {
            int oy = reaching_output(iy, ky, rows);
            if (oy < 0) continue;
            dzrows[nk] = dz + ((size_t)n * rows.output + (size_t)oy) * dz_row;
            kys[nk++] = ky;
        }
        float *dxrow = dx + (size_t)r * (size_t)cols.input * (size_t)channels;
        for (int ix = 0; ix < cols.input; ix++) {
            float *out = dxrow + (size_t)ix * (size_t)channels;
            int oxs[64], kxs[64], nx = 0;
            for (int kx = 0; kx < cols.kernel && nx < 64; kx++) {
                int ox = reaching_output(ix, kx, cols);
                if (ox < 0) continue;
                oxs[nx] = ox;
                kxs[nx++] = kx;
            }
            if (multiplier == 1) {
                int c = 0;
                for (; c + 16 <= channels; c += 16) {
                    v16 acc = {0};
                    for (int t = 0; t < nk; t++) {
                        const float *wrow = w + (size_t)kys[t] * (size_t)cols.kernel * (size_t)channels + c;
                        for (int j = 0; j < nx; j++)
                            acc += *(const v16u *)(dzrows[t] + (size_t)oxs[j] * (size_t)channels + c)
                                 * *(const v16u *)(wrow + (size_t)kxs[j] * (size_t)channels);
                    }
                    *(v16u *)(out + c) = acc;
                }
                for (; c < channels; c++) {
                    float acc = 0;
                    for (int t = 0; t < nk; t++) {
                        const float *wrow = w + (size_t)kys[t] * (size_t)cols.kernel * (size_t)channels + c;
                        for (int j = 0; j < nx; j++)
                            acc += dzrows[t][(size_t)oxs[j] * (size_t)channels + c] * wrow[(size_t)kxs[j] * (size_t)channels];
                    }
                    out[c] = acc;
                }
            } else {
                for (int c = 0; c < channels; c++) {
                    float acc = 0;
                    for (int t = 0; t < nk; t++) {
                        const float *wrow = w + (size_t)kys[t] * (size_t)cols.kernel * (size_t)cout;
                        for (int j = 0; j < nx; j++) {
                            const float *d = dzrows[t] + (size_t)oxs[j] * (size_t)cout;
                            const float *wt = wrow + (size_t)kxs[j] * (size_t)cout;
                            for (int m = 0; m < multiplier; m++) acc += d[c * multiplier + m] * wt[c * multiplier + m];
                        }
                    }
                    out[c] = acc;
                }
            }
        }
    }
}

CLONES
void segkit_depthwise_kernel_gradient(const float *x, const float *dz, int channels, int multiplier, segkit_axis rows,
                                      segkit_axis cols, float *dw, int row_begin, int row_end) {
    const int cout = channels * multiplier;
    const size_t in_row = (size_t)cols.input * (size_t)channels;
    for (int r = row_begin; r < row_end; r++) {
        int n, oy;
        split_row(r, rows, &n, &oy);
        const float *dzrow = dz + (size_t)r * (size_t)cols.output * (size_t)cout;
        for (int ky = 0; ky < rows.kernel; ky++) {
            int iy = oy * rows.stride - rows.pad_before + ky * rows.dilation;
            if (iy < 0 || iy >= rows.input) continue;
            const float *xrow = x + ((size_t)n * rows.input + (size_t)iy) * in_row;
            for (int kx = 0; kx < cols.kernel; kx++) {
                float *dwt = dw + ((size_t)ky * (size_t)cols.kernel + (size_t)kx) * (size_t)cout;
                // The output columns whose tap kx lands inside the row.
                int first = 0, last = cols.output;
                while (first < last && first * cols.stride - cols.pad_before + kx * cols.dilation < 0) first++;
                while (last > first && (last - 1) * cols.stride - cols.pad_before + kx * cols.dilation >= cols.input) last--;
                if (multiplier == 1) {
                    int c = 0;
                    for (; c + 16 <= channels; c += 16) {
                        v16 acc = *(const v16u *)(dwt + c);
                        for (int ox = first; ox < last; ox++) {
                            int ix = ox * cols.stride - cols.pad_before + kx * cols.dilation;
                            acc += *(const v16u *)(xrow + (size_t)ix * (size_t)channels + c)
                                 * *(const v16u *)(dzrow + (size_t)ox * (size_t)channels + c);
                        }
                        *(v16u *)(dwt + c) = acc;
                    }
                    for (; c < channels; c++) {
                        float acc = dwt[c];
                        for (int ox = first; ox < last; ox++) {
                            int ix = ox * cols.stride - cols.pad_before + kx * cols.dilation;
                            acc += xrow[(size_t)ix * (size_t)channels + c] * dzrow[(size_t)ox * (size_t)channels + c];
                        }
                        dwt[c] = acc;
                    }
                } else {
                    for (int o = 0; o < cout; o++) {
                        float acc = dwt[o];
                        const int c = o / multiplier;
                        for (int ox = first; ox < last; ox++) {
                            int ix = ox * cols.stride - cols.pad_before + kx * cols.dilation;
                            acc += xrow[(size_t)ix * (size_t)channels + c] * dzrow[(size_t)ox * (size_t)cout + o];
                        }
                        dwt[o] = acc;
                    }
                }
            }
        }
    }
}
