// Softmax cross-entropy over the class axis, the last op of every training
// step: at 128x128x11 per image it runs exp on more values than any layer.

#include "segkit_kernels.h"
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

CLONES
double segkit_softmax_cross_entropy(const float *logits, const int *labels, size_t rows, int k,
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
