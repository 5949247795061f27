// Softmax cross-entropy over the class axis, the last op of every training
// step: at 128x128x11 per image it runs exp on more values than any layer.

#include "segkit_kernels.h"
#include <immintrin.h>
#include <math.h>

#include "vector_math.h"

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

INLINE float row_max(const float *z, int k) {
    float m = z[0];
    for (int c = 1; c < k; c++) m = z[c] > m ? z[c] : m;
    return m;
}

/// g = exp(z − the row's maximum) for `rows` rows of k values (g may be z):
/// the maxima row by row, then one vectorised exp over the whole block.
INLINE void exp_shifted_rows(const float *z, float *g, size_t rows, int k) {
    for (size_t r = 0; r < rows; r++) {
        float m = row_max(z + r * k, k);
        for (int c = 0; c < k; c++) g[r * k + c] = z[r * k + c] - m;
    }
    size_t n = rows * (size_t)k, i = 0;
    for (; i + 16 <= n; i += 16) exp16(g + i);
    for (; i < n; i++) g[i] = expf(g[i]);
}

/// Cross-entropy row by row (any ISA, any k; the AVX-512 blocks below leave
/// it the rows that do not fill a block of 16).
CLONES
static double cross_entropy_rows(const float *logits, const int *labels, size_t rows, int k,
                                 int ignore_label, int has_ignore_label, const float *pixel_weights,
                                 const float *class_weights, float scale, float *gradient) {
    double total = 0, product = 1;
    // One log per per_log unweighted rows (scalar logs cost more than the
    // rest of the loss): k^per_log stays below 1e300.
    int per_log = k <= 2 ? 64 : (int)(300.0 / log10((double)k));
    if (per_log > 64) per_log = 64;
    if (per_log < 1) per_log = 1;
    int in_product = 0;
    // Blocks of rows small enough that the three passes find them in cache.
    const size_t block = 512;
    for (size_t b0 = 0; b0 < rows; b0 += block) {
        size_t b1 = b0 + block < rows ? b0 + block : rows;
        const float *z = logits + b0 * (size_t)k;
        float *g = gradient + b0 * (size_t)k;
        exp_shifted_rows(z, g, b1 - b0, k);
        for (size_t r = 0; r < b1 - b0; r++) {
            size_t row = b0 + r;
            float *gr = g + r * k;
            int label = labels[row];
            if (has_ignore_label && label == ignore_label) {
                for (int c = 0; c < k; c++) gr[c] = 0;
                continue;
            }
            float sum = 0;
            for (int c = 0; c < k; c++) sum += gr[c];
            float weight = (pixel_weights ? pixel_weights[row] : 1) * (class_weights ? class_weights[label] : 1);
            // −log softmax(z)[label] = log Σ exp(z − max) − (z[label] − max): no log of a rounded probability.
            const float *zr = z + r * k;
            total -= (double)weight * (double)(zr[label] - row_max(zr, k));
            if (weight == 1) {
                // Σ log(sum) as the log of a product: each sum lies in [1, k]
                // (the max term is exp(0)), so `per_log` of them fit a double.
                product *= sum;
                if (++in_product == per_log) {
                    total += log(product);
                    product = 1;
                    in_product = 0;
                }
            } else {
                total += (double)weight * log((double)sum);
            }
            float inv = scale * weight / sum;
            for (int c = 0; c < k; c++) gr[c] *= inv;
            gr[label] -= scale * weight;
        }
    }
    return total + log(product);
}

#define AVX512 __attribute__((target("avx512f,fma")))

/// log on 16 floats (Cephes' logf): x = m·2^e with m in [√½, √2), a degree-9
/// polynomial in m − 1; getexp / getmant split x without integer tricks.
AVX512 static inline __m512 log16(__m512 x) {
    __m512 e = _mm512_getexp_ps(x);
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __mmask16 high = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, high, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, high, e, _mm512_set1_ps(1.0f));
    __m512 t = _mm512_sub_ps(m, _mm512_set1_ps(1.0f));
    __m512 t2 = _mm512_mul_ps(t, t);
    static const float coefficients[] = {7.0376836292E-2f, -1.1514610310E-1f, 1.1676998740E-1f, -1.2420140846E-1f,
                                         1.4249322787E-1f, -1.6668057665E-1f, 2.0000714765E-1f, -2.4999993993E-1f,
                                         3.3333331174E-1f};
    __m512 y = _mm512_set1_ps(coefficients[0]);
    for (int i = 1; i < 9; i++) y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(coefficients[i]));
    y = _mm512_mul_ps(_mm512_mul_ps(y, t), t2);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fmadd_ps(t2, _mm512_set1_ps(-0.5f), y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), _mm512_add_ps(t, y));
}

/// exp(v) for a register (exp16 works in place on memory for the baseline clone).
AVX512 static inline __m512 exp_m512(__m512 v) {
    float t[16];
    _mm512_storeu_ps(t, v);
    exp16(t);
    return _mm512_loadu_ps(t);
}

/// Cross-entropy on blocks of 16 rows (rows a multiple of 16, 2 ≤ k ≤ 32),
/// 16 rows per vector lane-wise: one row at a time spends most of its
/// instructions on horizontal max / sum of k < 16 values. A block's k
/// logit vectors are gathered class-major (lane r = row r) for the maxima and
/// sums; the gradient is computed in the natural row-major layout, each lane's
/// row maximum and 1 / sum moved into place by a permute (k vectors hold the
/// block's 16·k values exactly). exp is computed twice per value (class-major
/// for the sums, row-major for the gradient): cheaper than gathering the
/// stored exps back or scattering them. The next blocks are prefetched:
/// gathers do not wake the hardware prefetcher, and the first gather of each
/// block otherwise waited on memory for 40% of the time.
AVX512 static double cross_entropy_blocks_avx512(const float *logits, const int *labels, size_t rows, int k,
                                                  int ignore_label, int has_ignore_label, const float *pixel_weights,
                                                  const float *class_weights, float scale, float *gradient) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i row_start = _mm512_mullo_epi32(lane, _mm512_set1_epi32(k));
    __m512i row_of[32], class_of[32];  // of each lane of the block's j-th row-major vector
    for (int j = 0; j < k; j++) {
        int row[16], class[16];
        for (int l = 0; l < 16; l++) {
            row[l] = (16 * j + l) / k;
            class[l] = (16 * j + l) % k;
        }
        row_of[j] = _mm512_loadu_si512(row);
        class_of[j] = _mm512_loadu_si512(class);
    }
    const int prefetch_blocks = 4;
    __m512d total_low = _mm512_setzero_pd(), total_high = _mm512_setzero_pd();
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const float *z = logits + r0 * k;
        float *g = gradient + r0 * k;
        if (r0 + 16 * prefetch_blocks < rows)
            for (int j = 0; j < k; j++) _mm_prefetch((const char *)(z + (prefetch_blocks * k + j) * 16), _MM_HINT_T0);
        __m512i label = _mm512_loadu_si512(labels + r0);
        __mmask16 counted = has_ignore_label ? _mm512_cmpneq_epi32_mask(label, _mm512_set1_epi32(ignore_label)) : 0xFFFF;
        label = _mm512_maskz_mov_epi32(counted, label);  // ignored rows: weight 0, any valid class
        __m512 weight = _mm512_maskz_mov_ps(counted, _mm512_set1_ps(1));
        if (pixel_weights) weight = _mm512_mul_ps(weight, _mm512_loadu_ps(pixel_weights + r0));
        if (class_weights) weight = _mm512_mul_ps(weight, _mm512_i32gather_ps(label, class_weights, 4));

        __m512 by_class[32];
        __m512 max = by_class[0] = _mm512_i32gather_ps(row_start, z, 4);
        for (int c = 1; c < k; c++) max = _mm512_max_ps(max, by_class[c] = _mm512_i32gather_ps(row_start, z + c, 4));
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < k; c++) sum = _mm512_add_ps(sum, exp_m512(_mm512_sub_ps(by_class[c], max)));
        // −log softmax(z)[label] = log Σ exp(z − max) − (z[label] − max).
        __m512 at_label = _mm512_i32gather_ps(_mm512_add_epi32(row_start, label), z, 4);
        __m512 loss = _mm512_mul_ps(weight, _mm512_sub_ps(log16(sum), _mm512_sub_ps(at_label, max)));
        total_low = _mm512_add_pd(total_low, _mm512_cvtps_pd(_mm512_castps512_ps256(loss)));
        total_high = _mm512_add_pd(total_high, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(loss), 1))));

        __m512 scaled = _mm512_mul_ps(weight, _mm512_set1_ps(scale));
        __m512 inverse = _mm512_div_ps(scaled, sum);
        for (int j = 0; j < k; j++) {
            __m512 e = exp_m512(_mm512_sub_ps(_mm512_loadu_ps(z + 16 * j), _mm512_permutexvar_ps(row_of[j], max)));
            __m512 v = _mm512_mul_ps(e, _mm512_permutexvar_ps(row_of[j], inverse));
            __mmask16 hot = _mm512_cmpeq_epi32_mask(class_of[j], _mm512_permutexvar_epi32(row_of[j], label));
            v = _mm512_mask_sub_ps(v, hot, v, _mm512_permutexvar_ps(row_of[j], scaled));
            _mm512_storeu_ps(g + 16 * j, v);
        }
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(total_low, total_high));
}

CLONES
long segkit_check_labels(const int *labels, size_t n, int k, int ignore_label, int has_ignore_label, size_t *counted) {
    // Blocks whose test and count the compiler vectorises (no early exit
    // inside); only a block with a bad label is scanned again, to name it.
    enum { BLOCK = 1024 };
    size_t ignored = 0;
    for (size_t b0 = 0; b0 < n; b0 += BLOCK) {
        size_t b1 = b0 + BLOCK < n ? b0 + BLOCK : n;
        int bad = 0;
        for (size_t i = b0; i < b1; i++) {
            int is_ignored = has_ignore_label && labels[i] == ignore_label;
            ignored += (size_t)is_ignored;
            bad |= ((unsigned)labels[i] >= (unsigned)k) & !is_ignored;
        }
        if (bad)
            for (size_t i = b0; i < b1; i++)
                if ((unsigned)labels[i] >= (unsigned)k && !(has_ignore_label && labels[i] == ignore_label)) return (long)i;
    }
    *counted = n - ignored;
    return -1;
}

double segkit_softmax_cross_entropy(const float *logits, const int *labels, size_t rows, int k,
                                    int ignore_label, int has_ignore_label, const float *pixel_weights,
                                    const float *class_weights, float scale, float *gradient) {
    size_t blocked = 0;
    double total = 0;
    if (k >= 2 && k <= 32 && __builtin_cpu_supports("avx512f")) {
        blocked = rows / 16 * 16;
        total = cross_entropy_blocks_avx512(logits, labels, blocked, k, ignore_label, has_ignore_label, pixel_weights,
                                            class_weights, scale, gradient);
    }
    return total + cross_entropy_rows(logits + blocked * k, labels + blocked, rows - blocked, k, ignore_label,
                                      has_ignore_label, pixel_weights ? pixel_weights + blocked : NULL, class_weights,
                                      scale, gradient + blocked * k);
}

CLONES
void segkit_softmax_rows(float *v, size_t rows, int k) {
    const size_t block = 512;
    for (size_t b0 = 0; b0 < rows; b0 += block) {
        size_t b1 = b0 + block < rows ? b0 + block : rows;
        float *g = v + b0 * (size_t)k;
        exp_shifted_rows(g, g, b1 - b0, k);
        for (size_t r = 0; r < b1 - b0; r++) {
            float sum = 0;
            for (int c = 0; c < k; c++) sum += g[r * k + c];
            float inv = 1 / sum;
            for (int c = 0; c < k; c++) g[r * k + c] *= inv;
        }
    }
}
