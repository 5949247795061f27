// The register tile shared by the direct and Winograd convolutions: P output
// pixels by CB vectors of 16 output channels, accumulated over kernel taps and
// input channels (a header so that each per-ISA clone inlines its own copy).
#ifndef SEGKIT_CONV_TILE_H
#define SEGKIT_CONV_TILE_H

#include "vector_math.h"

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
/// row it reads, the input pixel the tile's first pixel reads, the pixel step
/// between consecutive tile pixels, and the row's channels per pixel and
/// pixels. Pixels outside [0, width) read zeros. The channels and width are
/// per tap so that one tile can also sum a 1x1 projection of another tensor
/// (a decoder's skip connection) into its accumulators.
typedef struct {
    const float *w;
    const float *row;
    int first, step;
    int channels, width;
    // Set by pixel_run: ±1 where this tap and the next two read the row's
    // pixels first, first ± 1, first ± 2 (a 3-wide stride-1 kernel row), else 0.
    int triple;
} tap;

typedef struct {
    int out_channels, padded; // output channels, and their padded weight stride
    const float *bias, *zeros; // zeros: at least as many as any tap's channels
    // Channels [0, split) go to the output, [split, out_channels) to a second
    // one (a concatenation's parts, split at a multiple of 16); split =
    // out_channels for one output.
    int split;
} tile_shape;

/// acc[p] += Σ_c Σ_k base[(p + k)·C + c] · w_k[c] for k = 0, 1, 2: three taps
/// of one kernel row over consecutive pixels of the same input row, each
/// reading one pixel further (a 3-wide, stride-1 kernel). Each input value is
/// broadcast once for the three products it takes part in, where tap by tap
/// it is broadcast three times: with 16 output channels (one vector, no
/// other reuse of a broadcast) the broadcasts, not the multiplications, set
/// the pace (32 channels, two vectors, measured no faster this way). CC: C
/// known at compile time (0: not), for constant offsets.
INLINE void three_taps(const int P, const int CC, int C, const float *base, const float *w0, const float *w1,
                       const float *w2, int padded, v16 acc[MAX_P][MAX_CB]) {
    const int channels = CC ? CC : C;
    for (int c = 0; c < channels; c++) {
        const v16 a = *(const v16u *)(w0 + (size_t)c * padded), b = *(const v16u *)(w1 + (size_t)c * padded),
                  d = *(const v16u *)(w2 + (size_t)c * padded);
        UNROLL for (int q = 0; q < P + 2; q++) {
            float xv = base[(size_t)q * channels + c];
            if (q < P) acc[q][0] += xv * a;
            if (q >= 1 && q <= P) acc[q - 1][0] += xv * b;
            if (q >= 2) acc[q - 2][0] += xv * d;
        }
    }
}

/// tap.triple for taps[t]: whether it and the next two read one row at
/// consecutive pixels (first pixels f, f ± 1, f ± 2, step 1), and which way.
INLINE int triple_of(const tap *taps, int t, int ntaps) {
    // Cheapest tests first: a strided layer's taps (the classifier's) fail the first.
    if (t + 2 >= ntaps || taps[t].step != 1) return 0;
    const tap *a = taps + t, *b = taps + t + 1, *c = taps + t + 2;
    int d = b->first - a->first;
    if ((d != 1 && d != -1) || c->first - b->first != d) return 0;
    if (b->step != 1 || c->step != 1 || a->row != b->row || a->row != c->row) return 0;
    if (a->channels != b->channels || a->channels != c->channels || a->width != b->width || a->width != c->width) return 0;
    return d;
}

/// acc[p][v] = bias + Σ_taps Σ_c in(p)[c] · w[c][16v ..< 16v+16], stored to
/// out + p·out_step·split (only the first out_channels − c0 channels; those
/// from split on to out2 + p·out_step·(out_channels − split)).
INLINE void tile(const int P, const int CB, const tap *taps, int ntaps, const tile_shape *s,
                 int c0, float *out, float *out2, int out_step) {
    // Fixed-size arrays (P and CB are constants once inlined): variable-length
    // ones kept the accumulators on the stack instead of in registers.
    v16 acc[MAX_P][MAX_CB];
    UNROLL for (int v = 0; v < CB; v++) {
        v16 b = {0};
        if (s->bias) b = *(const v16u *)(s->bias + c0 + 16 * v);
        UNROLL for (int p = 0; p < P; p++) acc[p][v] = b;
    }
    for (int t = 0; t < ntaps; t++) {
        if (CB == 1 && taps[t].triple) {
            // Ordered by first pixel read: the lowest first.
            const tap *low = taps[t].triple > 0 ? taps + t : taps + t + 2, *high = taps[t].triple > 0 ? taps + t + 2 : taps + t;
            if (low->first >= 0 && low->first + P + 1 < low->width) {
                // All P + 2 pixels inside the row.
                const float *base = low->row + (size_t)low->first * low->channels;
                if (low->channels == 16)
                    three_taps(P, 16, 16, base, low->w + c0, taps[t + 1].w + c0, high->w + c0, s->padded, acc);
                else
                    three_taps(P, 0, low->channels, base, low->w + c0, taps[t + 1].w + c0, high->w + c0, s->padded, acc);
                t += 2;
                continue;
            }
        }
        const float *in[MAX_P];
        const int first = taps[t].first, step = taps[t].step, C = taps[t].channels, width = taps[t].width;
        if (first >= 0 && first + (P - 1) * step < width) {
            // The whole tile inside the row (most tiles): no test per pixel.
            const float *base = taps[t].row + (size_t)first * C;
            UNROLL for (int p = 0; p < P; p++) in[p] = base + (size_t)(p * step) * C;
        } else {
            UNROLL for (int p = 0; p < P; p++) {
                int i = first + p * step;
                in[p] = (unsigned)i < (unsigned)width ? taps[t].row + (size_t)i * C : s->zeros;
            }
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
    if (s->split == s->out_channels || c0 + 16 * CB <= s->split) {
        // All in the first output.
        UNROLL for (int p = 0; p < P; p++) {
            float *o = out + (size_t)p * out_step * s->split + c0;
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
        return;
    }
    UNROLL for (int p = 0; p < P; p++) {
        UNROLL for (int v = 0; v < CB; v++) {
            int c = c0 + 16 * v, n = s->out_channels - c;
            if (n <= 0) continue;
            float *o = c < s->split ? out + (size_t)p * out_step * s->split + c
                                    : out2 + (size_t)p * out_step * (s->out_channels - s->split) + (c - s->split);
            if (n >= 16) *(v16u *)o = acc[p][v];
            else store_first(o, &acc[p][v], n);
        }
    }
}

/// Runs the tiles of `count` output pixels (the first at `out`, then every
/// out_step pixels) for every block of output channels, taps fixed per pixel
/// run. Wide channel blocks get fewer pixels so the accumulators fit the
/// 32 vector registers of AVX-512.
INLINE void pixel_run(tap *taps, int ntaps, const tile_shape *s, float *out, float *out2, int out_step, int count) {
    // Only one-vector outputs group their taps (tile's CB == 1); a short row's
    // tiles are few, so this loop must stay cheap next to them.
    const int one_vector = s->out_channels <= 16;
    for (int t = 0; t < ntaps; t++) taps[t].triple = one_vector ? triple_of(taps, t, ntaps) : 0;
    for (int c0 = 0; c0 < s->out_channels; c0 += 64) {
        int vectors = (s->out_channels - c0 + 15) / 16;
        int done = 0;
        // Each tile advances the taps' first pixel by its size, so the taps are
        // restored afterwards for the next channel block.
        #define RUN(P, CB)                                                                       \
            while (count - done >= (P)) {                                                        \
                tile((P), (CB), taps, ntaps, s, c0, out + (size_t)done * out_step * s->split,                \
                     out2 ? out2 + (size_t)done * out_step * (s->out_channels - s->split) : 0, out_step);          \
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

#endif
