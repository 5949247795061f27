// Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray, 2016):
// each 2x2 block of outputs comes from a 4x4 block of inputs with 16
// multiplications per input-output channel pair instead of 36. The input
// and output transforms are additions only, here; the 16 products are sgemm's.

#include "segkit_kernels.h"
#include "conv_tile.h"

CLONES
void segkit_winograd_kernel(const float *w, int cin, int cout, float *u, int ci_begin, int ci_end) {
    // U = G g Gᵀ per (input, output) channel pair, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
    // Output channels innermost, where w and u are both contiguous: the loop
    // vectorises (scalar, it cost 1.3% of a U-Net training step).
    const size_t plane = (size_t)cin * cout;
    for (int ci = ci_begin; ci < ci_end; ci++) {
        const float *g = w + (size_t)ci * cout;
        const size_t tap = (size_t)cin * cout;
        float *o = u + (size_t)ci * cout;
        for (int co = 0; co < cout; co++) {
            float t[4][3];
            for (int b = 0; b < 3; b++) {
                float g0 = g[(size_t)b * tap + co], g1 = g[(size_t)(3 + b) * tap + co], g2 = g[(size_t)(6 + b) * tap + co];
                t[0][b] = g0;
                t[1][b] = 0.5f * (g0 + g1 + g2);
                t[2][b] = 0.5f * (g0 - g1 + g2);
                t[3][b] = g2;
            }
            for (int a = 0; a < 4; a++) {
                o[(size_t)(a * 4 + 0) * plane + co] = t[a][0];
                o[(size_t)(a * 4 + 1) * plane + co] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
                o[(size_t)(a * 4 + 2) * plane + co] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
                o[(size_t)(a * 4 + 3) * plane + co] = t[a][2];
            }
        }
    }
}

// The transforms of whole tile rows [begin, end) of the n·⌈output rows/2⌉
// (tile row t: output rows 2t and 2t + 1 of its image) into and out of
// matrices of `count` = (end − begin)·⌈output cols/2⌉ tiles, one per ξ; the
// 16 products between them are sgemm calls (WinogradConvolution.swift): on a
// register tile of our own, 14x14 maps (7 tiles a row) left the products
// waiting on the transformed kernel's loads.

CLONES
void segkit_winograd_input_tiles(const float *x, int cin, segkit_axis rows, segkit_axis cols, int tile_row_begin,
                                 int tile_row_end, const float *zeros, float *v) {
    const int tiles_h = (rows.output + 1) / 2, tiles_w = (cols.output + 1) / 2;
    const size_t count = (size_t)(tile_row_end - tile_row_begin) * tiles_w;
    const size_t plane = count * cin;                     // v: [16][count][cin]
    const size_t in_row = (size_t)cols.input * cin;
    for (int tr = tile_row_begin; tr < tile_row_end; tr++) {
        int n = tr / tiles_h, ty = tr % tiles_h;
        const float *image = x + (size_t)n * rows.input * in_row;
        for (int tx = 0; tx < tiles_w; tx++) {
            const float *d[4][4];
            for (int a = 0; a < 4; a++) {
                int iy = 2 * ty - rows.pad_before + a;
                for (int b = 0; b < 4; b++) {
                    int ix = 2 * tx - cols.pad_before + b;
                    d[a][b] = (iy >= 0 && iy < rows.input && ix >= 0 && ix < cols.input) ? image + iy * in_row + (size_t)ix * cin : zeros;
                }
            }
            float *vt = v + ((size_t)(tr - tile_row_begin) * tiles_w + tx) * cin;
            #pragma clang loop vectorize(assume_safety)
            for (int c = 0; c < cin; c++) {
                float t[4][4];
                for (int b = 0; b < 4; b++) {
                    t[0][b] = d[0][b][c] - d[2][b][c];
                    t[1][b] = d[1][b][c] + d[2][b][c];
                    t[2][b] = d[2][b][c] - d[1][b][c];
                    t[3][b] = d[1][b][c] - d[3][b][c];
                }
                for (int a = 0; a < 4; a++) {
                    vt[(size_t)(a * 4 + 0) * plane + c] = t[a][0] - t[a][2];
                    vt[(size_t)(a * 4 + 1) * plane + c] = t[a][1] + t[a][2];
                    vt[(size_t)(a * 4 + 2) * plane + c] = t[a][2] - t[a][1];
                    vt[(size_t)(a * 4 + 3) * plane + c] = t[a][1] - t[a][3];
                }
            }
        }
    }
}

CLONES
void segkit_winograd_output_tiles(const float *m, int cout, segkit_axis rows, segkit_axis cols, int tile_row_begin,
                                  int tile_row_end, const float *bias, float *y) {
    const int tiles_h = (rows.output + 1) / 2, tiles_w = (cols.output + 1) / 2;
    const size_t count = (size_t)(tile_row_end - tile_row_begin) * tiles_w;
    const size_t mplane = count * cout;                   // m: [16][count][cout]
    for (int tr = tile_row_begin; tr < tile_row_end; tr++) {
        int n = tr / tiles_h, ty = tr % tiles_h;
        int oy = 2 * ty;
        int rows_here = oy + 1 < rows.output ? 2 : 1;
        for (int tx = 0; tx < tiles_w; tx++) {
            int ox = 2 * tx;
            int cols_here = ox + 1 < cols.output ? 2 : 1;
            float *o00 = y + (((size_t)n * rows.output + oy) * cols.output + ox) * cout;
            float *o01 = o00 + cout, *o10 = o00 + (size_t)cols.output * cout, *o11 = o10 + cout;
            const float *mt = m + ((size_t)(tr - tile_row_begin) * tiles_w + tx) * cout;
            #pragma clang loop vectorize(assume_safety)
            for (int c = 0; c < cout; c++) {
                float q[16];
                for (int k = 0; k < 16; k++) q[k] = mt[(size_t)k * mplane + c];
                float r0[4], r1[4];
                for (int b = 0; b < 4; b++) {
                    r0[b] = q[b] + q[4 + b] + q[8 + b];
                    r1[b] = q[4 + b] - q[8 + b] - q[12 + b];
                }
                float b0 = bias ? bias[c] : 0;
                o00[c] = r0[0] + r0[1] + r0[2] + b0;
                if (cols_here == 2) o01[c] = r0[1] - r0[2] - r0[3] + b0;
                if (rows_here == 2) {
                    o10[c] = r1[0] + r1[1] + r1[2] + b0;
                    if (cols_here == 2) o11[c] = r1[1] - r1[2] - r1[3] + b0;
                }
            }
        }
    }
}
