// The C kernels' 16-float vector types, exp and per-channel row sums (a
// header so that each per-ISA clone inlines its own copy).
#ifndef SEGKIT_VECTOR_MATH_H
#define SEGKIT_VECTOR_MATH_H

#include <stddef.h>

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int i16 __attribute__((vector_size(64)));

#define INLINE static inline __attribute__((always_inline))

/// exp on 16 floats: Cephes' single-precision expf: n = round(x·log₂e) by the 1.5·2²³ trick,
/// x − n·ln 2 in two parts, a degree-5 polynomial, 2ⁿ by exponent bits.
/// In place on the 16 floats at p (pointer-based: a 64-byte vector argument
/// would not compile for the baseline clone).
INLINE void exp16(float *p) {
    v16 x = *(const v16u *)p;
    const v16 zero = {0};
    x = __builtin_elementwise_min(__builtin_elementwise_max(x, zero - 87.3f), zero + 88.3f);
    const v16 magic = zero + 12582912.0f;
    v16 t = x * 1.44269504f + magic;
    v16 n = t - magic;
    v16 r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    v16 z = r * r;
    v16 q = zero + 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    v16 y = q * z + r + 1.0f;
    i16 bits = ((i16)t - 0x4B400000 + 127) << 23;
    *(v16u *)p = y * (v16)bits;
}

/// dz = dy where y > 0, else 0: ReLU's derivative read from its output (as
/// TensorFlow's ReluGrad does).
INLINE void relu_backward_of(const float *dy, const float *y, float *dz, size_t n) {
    for (size_t i = 0; i < n; i++) dz[i] = y[i] > 0 ? dy[i] : 0;
}

/// sums[c] += Σ over rows of dz[row, c] where dz = dy, or, given y, dz = dy
/// where y > 0 else 0, also written to dz. Sixteen rows at a time as one flat
/// run of 16·channels values, whose element j belongs to channel j mod
/// channels: contiguous vector adds whatever the channel count (an
/// 11-channel row does not fill a vector).
INLINE void sum_rows_of(const float *dy, const float *y, float *dz, size_t rows, int channels, float *sums) {
    enum { BLOCK = 16 };
    size_t width = (size_t)channels * BLOCK, n = rows * (size_t)channels;
    float acc[width];
    for (size_t j = 0; j < width; j++) acc[j] = 0;
    size_t o = 0;
    for (; o + width <= n; o += width) {
        for (size_t j = 0; j < width; j++) {
            float d = y ? (y[o + j] > 0 ? dy[o + j] : 0) : dy[o + j];
            if (y) dz[o + j] = d;
            acc[j] += d;
        }
    }
    for (size_t t = o; t < n; t++) {
        float d = y ? (y[t] > 0 ? dy[t] : 0) : dy[t];
        if (y) dz[t] = d;
        acc[t - o] += d;
    }
    for (int c = 0; c < channels; c++) {
        float s = 0;
        for (int b = 0; b < BLOCK; b++) s += acc[(size_t)b * channels + c];
        sums[c] += s;
    }
}

#endif
