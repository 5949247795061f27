#ifndef SEGKIT_KERNELS_H
#define SEGKIT_KERNELS_H

#include <stddef.h>

/// The geometry of one spatial axis of a convolution, as SegKit's Window2D
/// holds it: `input` and `output` lengths, kernel taps, stride, dilation and
/// the zero padding before the first input element.
typedef struct {
    int input, output, kernel, stride, dilation, pad_before;
} segkit_axis;

/// Direct NHWC convolution: y[n, oy, ox, :] = bias + Σ x[n, iy, ix, :] · w[ky, kx]
/// with iy = oy·stride − pad + ky·dilation, for the output rows
/// [row_begin, row_end) of the n·output rows. `w` is packed as
/// [kh][kw][cin][cout_padded] (cout_padded a multiple of 16, zeros past cout);
/// `bias` (NULL for none) is padded with zeros to cout_padded like the weights;
/// `zeros` holds at least cin (and cin2) zeros (read for padding). Unless x2 is
/// NULL, the input is the concatenation of x and x2 (cin2 channels) on the
/// channel axis, read where they are (w then has cin + cin2 input rows).
void segkit_conv2d_direct(const float *x, int cin, const float *x2, int cin2, segkit_axis rows, segkit_axis cols,
                          const float *w, int cout, int cout_padded, const float *bias,
                          const float *zeros, float *y, int row_begin, int row_end);

/// Depthwise NHWC convolution (Keras's DepthwiseConv2D): output channel c·M + m of
/// y[n, oy, ox] = bias + Σ over taps of x[n, iy, ix, c] · w[ky, kx, c, m], with
/// iy = oy·stride − pad + ky·dilation (likewise ix), for the output rows
/// [row_begin, row_end) of the n·output rows. `w` as Keras stores it,
/// [kh][kw][channels][multiplier]; `bias` (NULL for none) has channels·M values.
/// Kernels up to 64 taps per axis.
void segkit_depthwise_forward(const float *x, int channels, int multiplier, segkit_axis rows, segkit_axis cols,
                              const float *w, const float *bias, float *y, int row_begin, int row_end);

/// dL/dx of that convolution given dz = dL/d(y before bias), for the input rows
/// [row_begin, row_end) of the n·input rows (a gather: every element written once).
void segkit_depthwise_input_gradient(const float *dz, int channels, int multiplier, segkit_axis rows, segkit_axis cols,
                                     const float *w, float *dx, int row_begin, int row_end);

/// Adds into `dw` ([kh][kw][channels][multiplier]) the kernel gradient
/// Σ x · dz over the output rows [row_begin, row_end) of the n·output rows.
void segkit_depthwise_kernel_gradient(const float *x, const float *dz, int channels, int multiplier, segkit_axis rows,
                                      segkit_axis cols, float *dw, int row_begin, int row_end);

/// The transpose of that convolution, computed per output element (a gather,
/// so rows split across threads never write the same element):
/// x[n, iy, ix, :] = bias + Σ over the (oy, ox, ky, kx) with
/// iy = oy·stride − pad + ky·dilation of dy[n, oy, ox, :] · w[ky, kx], where
/// `dy` has `cdy` channels, `x` has `cx`, and `w` is packed
/// [kh][kw][cdy][cx_padded], `bias` padded to cx_padded. Rows [row_begin,
/// row_end) of the n·input rows. When `skip` is not NULL, x also gets
/// Σ skip[n, iy, ix, :] · wskip, a 1x1 projection of a tensor of x's size with
/// `cskip` channels (wskip packed [cskip][cx_padded]); `zeros` holds at least
/// max(cdy, cskip) zeros. When `x2` is not NULL, x is the concatenation of
/// two tensors on the channel axis, written where they are: channels
/// [0, cx1) to x (cx1 a multiple of 16), the others to x2.
void segkit_conv2d_transpose_direct(const float *dy, int cdy, segkit_axis rows, segkit_axis cols,
                                    const float *w, int cx, int cx_padded, const float *bias,
                                    const float *zeros, float *x, float *x2, int cx1, int row_begin, int row_end,
                                    const float *skip, int cskip, const float *wskip);

/// The transform of the HWIO 3x3 kernel w's input channels [ci_begin, ci_end)
/// into u ([16][cin][cout]: one sgemm operand per ξ).
void segkit_winograd_kernel(const float *w, int cin, int cout, float *u, int ci_begin, int ci_end);
/// Winograd F(2x2, 3x3) for a 3x3, stride-1, undilated convolution: the input
/// transform of the tile rows [begin, end) of the n·⌈output rows/2⌉ (tile row
/// t: output rows 2t and 2t + 1 of its image) into v: [16][count][cin], count =
/// (end − begin)·⌈output cols/2⌉ tiles, row-major over (tile row, tile column);
/// the 16 products V[ξ]·U[ξ] are the caller's (sgemm). Taps in the padding
/// read `zeros` (cin zeros).
void segkit_winograd_input_tiles(const float *x, int cin, segkit_axis rows, segkit_axis cols, int tile_row_begin,
                                 int tile_row_end, const float *zeros, float *v);
/// The output transform of m ([16][count][cout], the products for the same
/// tile rows) into y's output rows 2·t and 2·t + 1 of each tile row t, plus
/// bias (unless NULL); half tiles at odd edges write only their inside outputs.
void segkit_winograd_output_tiles(const float *m, int cout, segkit_axis rows, segkit_axis cols, int tile_row_begin,
                                  int tile_row_end, const float *bias, float *y);

/// The kernel gradient of the first convolution: dw[ky, kx, c, :] +=
/// Σ x[n, iy, ix, c] · dy[n, oy, ox, :] over the output rows [row_begin,
/// row_end) of the n·output rows, into dw packed [kh][kw][cin][cout_padded].
/// Unless NULL, dy_sums[0 ..< cout] gets Σ dy over those rows (a Conv2D's bias
/// gradient) and x_sums[0 ..< cin] Σ x over the input rows whose first reader
/// is among them (a Conv2DTranspose's; complete when every input row is read).
/// When relu_y is not NULL, dy is the gradient of a ReLU whose output is
/// relu_y: the kernel gradient is taken of dz = dy where relu_y > 0, else 0,
/// which is written to the same rows of dz (and summed into dy_sums). Unless
/// x2 is NULL, the input is the concatenation of x and x2 (cin2 channels) on
/// the channel axis, as for segkit_conv2d_direct.
void segkit_conv2d_kernel_gradient_direct(const float *x, int cin, const float *x2, int cin2, segkit_axis rows,
                                          segkit_axis cols, const float *dy, const float *relu_y, float *dz, int cout,
                                          int cout_padded, float *dw, int row_begin, int row_end, float *dy_sums,
                                          float *x_sums);

/// Both gradients of a transposed convolution whose input x has cx ≤ 16
/// channels, in one pass over its output gradient g (cg channels): seen as
/// the convolution of g over `rows` × `cols` whose output is x, over its
/// output rows [row_begin, row_end): the kernel gradient added to dw and the
/// input gradient written to those rows of dx (the convolution of g by w),
/// both packed [kh][kw][cg][16]; unless NULL, g_sums[0 ..< cg] gets Σ g over
/// the g rows whose first reader is among them (the bias gradient).
void segkit_conv2d_transpose_gradients_direct(const float *g, int cg, segkit_axis rows, segkit_axis cols,
                                              const float *x, int cx, const float *w, float *dw, float *dx,
                                              int row_begin, int row_end, float *g_sums);

/// Max pooling of the output rows [row_begin, row_end) of the n·output rows:
/// y = the window maximum per channel (padding never wins), and, when argmax
/// is not NULL, the flat index into x of each maximum (the first one on ties).
void segkit_max_pool(const float *x, int c, segkit_axis rows, segkit_axis cols, float *y, int *argmax,
                     int row_begin, int row_end);

/// x = max(x, 0) over n values, in place.
void segkit_relu(float *x, size_t n);

/// x = min(max(x, lo), hi) in place (ReLU6: lo 0, hi 6).
void segkit_clamp(float *x, size_t n, float lo, float hi);

/// dz = dy where y > 0, else 0 (ReLU's derivative read from its output, as
/// TensorFlow's ReluGrad does).
void segkit_relu_backward(const float *dy, const float *y, float *dz, size_t n);

/// Bilinear enlargement of the images [image_begin, image_end) of x (N, h, w, c)
/// into y (N, oh, ow, c): output row oy blends input rows row_lower[oy] and
/// row_upper[oy] with weight row_weight[oy] on the upper one; columns likewise.
void segkit_upsample_bilinear(const float *x, int h, int w, int c, int oh, int ow,
                              const int *row_lower, const int *row_upper, const float *row_weight,
                              const int *col_lower, const int *col_upper, const float *col_weight,
                              float *y, int image_begin, int image_end);

/// x = x·σ(x) and x = σ(x) in place; dz = dy · d/dz (z·σ(z)).
void segkit_swish(float *x, size_t n);
void segkit_sigmoid(float *x, size_t n);
void segkit_swish_backward(const float *dy, const float *z, float *dz, size_t n);

/// out = a + b and out = a · b over n values (out may be a or b).
void segkit_add(const float *a, const float *b, float *out, size_t n);
void segkit_multiply(const float *a, const float *b, float *out, size_t n);

/// One Adam step over n values: m ← m + (g − m)(1 − β₁), v ← v + (g² − v)(1 − β₂),
/// w ← w − decay·w (when decay > 0) − α·m / (√v + ε).
void segkit_adam_update(float *w, const float *g, float *m, float *v, size_t n, float beta1, float beta2, float alpha,
                        float epsilon, float decay);

/// Copies `rows` runs of `width` floats, src_stride and dst_stride floats
/// apart (Concatenate's interleaving and its gradient's split).
void segkit_copy_rows(const float *src, size_t src_stride, float *dst, size_t dst_stride, size_t rows, size_t width);

/// dz = dy where y > 0, else 0, and sums[c] += Σ over rows of dz[row, c]: ReLU's
/// gradient and the bias gradient of a convolution in one pass.
void segkit_relu_backward_sum_rows(const float *dy, const float *y, float *dz, size_t rows, int channels, float *sums);

/// sums[c] += Σ over rows of x[row, c], for a row-major rows × channels block.
void segkit_sum_rows(const float *x, size_t rows, int channels, float *sums);

/// The index of the first label that is neither a class id in [0, k) nor the
/// ignore label (when has_ignore_label), or −1 when all are valid; then
/// *counted is the number of labels that are not the ignore label.
long segkit_check_labels(const int *labels, size_t n, int k, int ignore_label, int has_ignore_label, size_t *counted);

/// Softmax cross-entropy of `rows` rows of k logits against class ids: writes
/// gradient = scale·weight·(softmax − one-hot) (zeros for ignored rows) and
/// returns Σ weight·(−log softmax[label]) over the rows not ignored, where
/// weight = pixel_weights[row]·class_weights[label], each optional (NULL).
double segkit_softmax_cross_entropy(const float *logits, const int *labels, size_t rows, int k,
                                    int ignore_label, int has_ignore_label, const float *pixel_weights,
                                    const float *class_weights, float scale, float *gradient);

/// Softmax of each of `rows` rows of k values, in place.
void segkit_softmax_rows(float *v, size_t rows, int k);

/// One part of a parallel region: `part` in 0 ..< parts.
typedef void (*segkit_task)(void *context, int part);

/// Sets the pool's size (workers including the caller) before its first use;
/// later calls do nothing.
void segkit_parallel_configure(int workers);

/// Runs task(context, p) for every p in 0 ..< parts on the caller and the
/// pool's helpers, returning when all are done. Regions started inside a
/// region, or while another thread's region runs, run serially on the caller.
void segkit_parallel_run(int parts, segkit_task task, void *context);

/// Asks glibc to keep freed large blocks for reuse instead of returning them to
/// the kernel (see MemoryPolicy.swift); returns 1 when glibc accepted it.
int segkit_keep_freed_blocks(void);

/// Room for `floats` floats (NULL when there is none) for a large store written
/// once and read for long (the feature cache): 2 MiB-aligned and advised to
/// use transparent huge pages, so its first writes fault once per 2 MiB rather
/// than per 4 KiB (240 MB first written in 0.017 s instead of 0.1 s here, once
/// the VM's host has backed the memory). Freed with segkit_free_store.
float *segkit_allocate_store(size_t floats);
void segkit_free_store(float *store);

/// Set by a kernel whose scratch allocation failed (it then returns without its
/// work); read and cleared by the engine after each op, which reports
/// "out of memory" instead of the process aborting.
void segkit_note_allocation_failure(void);
int segkit_take_allocation_failure(void);

#endif
