// Element-wise and reduction loops of the training step, compiled per vector
// ISA like the convolution kernels (Swift's own SIMD types compile to the
// baseline SSE2 only, since a Swift module cannot be built for several ISAs).

#include "segkit_kernels.h"
#include "vector_math.h"
#include <math.h>

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES
void segkit_relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

// ReLU6 and Keras's relu with max_value: Swift's SIMD clamped(lowerBound:upperBound:)
// compiled to calls of the generic pointwiseMin/Max (perf: 30% of a MobileNetV2 forward).
CLONES
void segkit_clamp(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i] > lo ? x[i] : lo;
        x[i] = v < hi ? v : hi;
    }
}

CLONES
void segkit_relu_backward(const float *dy, const float *y, float *dz, size_t n) { relu_backward_of(dy, y, dz, n); }

// Whole vectors written out: out is often a itself (a sum accumulated in
// place), and the vectoriser's overlap check sent exactly that case to its
// scalar loop (perf: four vmovss per four floats, 3x slower).
CLONES
void segkit_add(const float *a, const float *b, float *out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) *(v16u *)(out + i) = *(const v16u *)(a + i) + *(const v16u *)(b + i);
    for (; i < n; i++) out[i] = a[i] + b[i];
}

CLONES
void segkit_multiply(const float *a, const float *b, float *out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) *(v16u *)(out + i) = *(const v16u *)(a + i) * *(const v16u *)(b + i);
    for (; i < n; i++) out[i] = a[i] * b[i];
}

/// d = 1 + exp(−x) for 16 values, with one vectorised exp: the denominator of
/// σ(x) that swish, its gradient and sigmoid share.
INLINE void one_plus_exp_negated16(const float *x, float *d) {
    for (int k = 0; k < 16; k++) d[k] = -x[k];
    exp16(d);
    for (int k = 0; k < 16; k++) d[k] += 1;
}

CLONES
void segkit_swish(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float d[16];
        one_plus_exp_negated16(x + i, d);
        for (int k = 0; k < 16; k++) x[i + k] = x[i + k] / d[k];
    }
    for (; i < n; i++) x[i] = x[i] / (1 + expf(-x[i]));
}

CLONES
void segkit_swish_backward(const float *dy, const float *z, float *dz, size_t n) {
    // d/dz z·σ(z) = σ(z)·(1 + z·(1 − σ(z))).
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float d[16];
        one_plus_exp_negated16(z + i, d);
        for (int k = 0; k < 16; k++) {
            float s = 1 / d[k];
            dz[i + k] = dy[i + k] * s * (1 + z[i + k] * (1 - s));
        }
    }
    for (; i < n; i++) {
        float s = 1 / (1 + expf(-z[i]));
        dz[i] = dy[i] * s * (1 + z[i] * (1 - s));
    }
}

CLONES
void segkit_sigmoid(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float d[16];
        one_plus_exp_negated16(x + i, d);
        for (int k = 0; k < 16; k++) x[i + k] = 1 / d[k];
    }
    for (; i < n; i++) x[i] = 1 / (1 + expf(-x[i]));
}

CLONES
void segkit_copy_rows(const float *src, size_t src_stride, float *dst, size_t dst_stride, size_t rows, size_t width) {
    // A plain loop per row: for the 16–64 floats of a U-Net concatenation a
    // memcpy call per row cost more than the copy (perf).
    for (size_t r = 0; r < rows; r++) {
        const float *s = src + r * src_stride;
        float *d = dst + r * dst_stride;
        for (size_t k = 0; k < width; k++) d[k] = s[k];
    }
}

CLONES
void segkit_sum_rows(const float *x, size_t rows, int channels, float *sums) {
    sum_rows_of(x, 0, 0, rows, channels, sums);
}

CLONES
void segkit_relu_backward_sum_rows(const float *dy, const float *y, float *dz, size_t rows, int channels, float *sums) {
    sum_rows_of(dy, y, dz, rows, channels, sums);
}

/// One Adam step on 16 values at w, g, m, v (pointer-based, as exp16).
INLINE void adam16(float *w, const float *g, float *m, float *v, float keep1, float keep2, float alpha, float epsilon, float decay) {
    #pragma clang fp contract(off)
    const v16 zero = {0};
    v16 wk = *(v16u *)w, gk = *(const v16u *)g, mk = *(v16u *)m, vk = *(v16u *)v;
    if (decay > 0) wk -= decay * wk;
    mk = mk + (gk - mk) * keep1;
    vk = vk + (gk * gk - vk) * keep2;
    *(v16u *)m = mk;
    *(v16u *)v = vk;
    *(v16u *)w = wk - alpha * mk / (__builtin_elementwise_sqrt(vk) + (zero + epsilon));
}

CLONES
void segkit_adam_update(float *w, const float *g, float *m, float *v, size_t n, float beta1, float beta2, float alpha,
                        float epsilon, float decay) {
    // Term for term Keras's update (and SegKit's earlier Swift loop): no fused
    // multiply-adds, so every result is the same, lane for lane. Written in
    // vectors: the compiler keeps a scalar sqrtf for errno's sake.
    const float keep1 = 1 - beta1, keep2 = 1 - beta2;
    size_t k = 0;
    for (; k + 16 <= n; k += 16) adam16(w + k, g + k, m + k, v + k, keep1, keep2, alpha, epsilon, decay);
    if (k < n) {
        float tw[16] = {0}, tg[16] = {0}, tm[16] = {0}, tv[16] = {0};
        for (size_t j = 0; j < n - k; j++) { tw[j] = w[k + j]; tg[j] = g[k + j]; tm[j] = m[k + j]; tv[j] = v[k + j]; }
        adam16(tw, tg, tm, tv, keep1, keep2, alpha, epsilon, decay);
        for (size_t j = 0; j < n - k; j++) { w[k + j] = tw[j]; m[k + j] = tm[j]; v[k + j] = tv[j]; }
    }
}
