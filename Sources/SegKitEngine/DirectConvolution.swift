import CKernels
import Foundation

/// The engine's second way to convolve: CKernels' direct loops, which read the
/// NHWC input in place instead of building a patch matrix for sgemm. They win
/// where im2col and sgemm's packing copies cost more than the multiplications —
/// few input channels per tap or few output channels — and lose to OpenBLAS on
/// wide layers, so `ConvolutionKernels` asks `isPreferred` per call.
enum DirectConvolution {
    /// Direct when the layer is ungrouped and its outputs fit one register tile
    /// (≤ 64 channels: four 16-float vectors) or its inputs are few, and for up
    /// to 128 channels on each side when rows are at least 16 pixels long.
    /// Measured per U-Net layer shape with SEGKIT_CONV_PATH forcing each path
    /// (README, Performance): the direct loops won on every 16–64-channel layer
    /// and on 128-channel ones with 16- or 32-pixel rows (e.g. the input
    /// gradient of 128→64 at 32x32: 4.6 vs 8.7 ms), and lost on 8-pixel rows and
    /// to 256-channel ones, where they re-read their input once per 64 outputs.
    /// A kernel gradient's register tile holds output channels only, so there
    /// any input count goes (256→128 at 16x16: 5.5 vs 6.6 ms).
    static func isPreferred(inputChannels: Int, outputChannels: Int, groups: Int, rowWidth: Int,
                            forKernelGradient: Bool = false) -> Bool {
        if let forced = forcedPath, forced != "winograd" { return forced == "direct" && groups == 1 }
        guard groups == 1 else { return false }
        if outputChannels <= 64 || inputChannels <= 16 { return true }
        return outputChannels <= 128 && (forKernelGradient || inputChannels <= 128) && rowWidth >= 16
    }

    /// SEGKIT_CONV_PATH=direct|gemm|winograd forces one path where it applies (for measuring).
    static let forcedPath: String? = {
        guard let p = getenv("SEGKIT_CONV_PATH") else { return nil }
        let s = String(cString: p)
        return ["direct", "gemm", "winograd"].contains(s) ? s : nil
    }()

    /// Channel counts as the C kernels' weights and biases hold them: whole
    /// 16-float vectors.
    static func paddedWidth(_ channels: Int) -> Int { (channels + 15) / 16 * 16 }

    /// A bias zero-padded to `width` (the C kernels load it in whole vectors).
    static func paddedBias(_ bias: [Float]?, to width: Int) -> [Float]? {
        bias.map { $0 + [Float](repeating: 0, count: width - $0.count) }
    }

    /// An HWIO kernel as the C kernels read it: [kh][kw][in][out padded to 16],
    /// zeros in the padding. `swapChannels` packs [kh][kw][out][in] instead, the
    /// layout of the transposed convolution.
    static func pack(_ kernel: Tensor, swapChannels: Bool) -> (values: [Float], padded: Int) {
        let (kh, kw, ci, co) = (kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3])
        let (rowsPerTap, outs) = swapChannels ? (co, ci) : (ci, co)
        let padded = paddedWidth(outs)
        var packed = [Float](repeating: 0, count: kh * kw * rowsPerTap * padded)
        kernel.scalars.withUnsafeBufferPointer { k in
            packed.withUnsafeMutableBufferPointer { p in
                for t in 0..<(kh * kw) {
                    for i in 0..<ci {
                        for o in 0..<co {
                            let value = k[(t * ci + i) * co + o]
                            if swapChannels { p[(t * co + o) * padded + i] = value } else { p[(t * ci + i) * padded + o] = value }
                        }
                    }
                }
            }
        }
        return (packed, padded)
    }

    static func axis(_ a: WindowAxis) -> segkit_axis {
        segkit_axis(input: Int32(a.input), output: Int32(a.output), kernel: Int32(a.kernel), stride: Int32(a.stride),
                    dilation: Int32(a.dilation), pad_before: Int32(a.padBefore))
    }

    /// Output rows per call, so that `epilogue` finds the rows still in cache.
    static func rowsPerChunk(pixelsPerRow: Int, channels: Int) -> Int { max(1, (16 << 10) / max(1, pixelsPerRow * channels)) }

    /// The convolution of `x` over window `g` (Conv2D's forward, Conv2DTranspose's
    /// input gradient); of the concatenation of `x` and `x2` on the channel
    /// axis when `x2` is given, each read where it is.
    static func forward(_ x: Tensor, concatenatedWith x2: Tensor? = nil, window g: Window2D, kernel: Tensor, bias: [Float]?,
                        epilogue: OutputEpilogue?) -> Tensor {
        let cin = x.shape[3], cin2 = x2?.shape[3] ?? 0, cout = kernel.shape[3]
        let (w, padded) = pack(kernel, swapChannels: false)
        let bias = paddedBias(bias, to: padded)
        let zeros = [Float](repeating: 0, count: max(cin, cin2))
        let (rows, cols) = (axis(g.rows), axis(g.cols))
        let chunk = rowsPerChunk(pixelsPerRow: g.cols.output, channels: cout)
        return Tensor.uninitialized(shape: [g.batch, g.rows.output, g.cols.output, cout]) { out in
            let o = UncheckedSendable(out.baseAddress!)
            x.scalars.withUnsafeBufferPointer { xp in
                (x2?.scalars).withBaseAddress { x2p in
                    bias.withBaseAddress { bp in
                        let second = UncheckedSendable(x2p)
                        Parallel.forEachRange(g.batch * g.rows.output) { range in
                            for start in stride(from: range.lowerBound, to: range.upperBound, by: chunk) {
                                let end = min(start + chunk, range.upperBound)
                                segkit_conv2d_direct(xp.baseAddress!, Int32(cin), second.value, Int32(cin2), rows, cols, w, Int32(cout),
                                                     Int32(padded), bp, zeros, o.value, Int32(start), Int32(end))
                                epilogue?(o.value + start * g.cols.output * cout, start * g.cols.output, (end - start) * g.cols.output)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The transpose of the convolution over window `g`, applied to `dy`
    /// (Conv2D's input gradient, Conv2DTranspose's forward), plus `bias`, plus
    /// `projection` of a tensor of the output's size when given (its bias
    /// already in `bias`).
    static func transpose(_ dy: Tensor, window g: Window2D, kernel: Tensor, bias: [Float]?, outputShape: [Int],
                          plus projection: PointwiseProjection? = nil) -> Tensor {
        Tensor.uninitialized(shape: outputShape) { out in
            transpose(dy, window: g, kernel: kernel, bias: bias, into: out.baseAddress!, nil, firstChannels: outputShape[3], plus: projection)
        }
    }

    /// The transpose without bias, of an output that is the concatenation of
    /// tensors of `shapes` on the channel axis (the first with a multiple of
    /// 16 channels): each written where it is (the gradients of a
    /// concatenation's parts, without its backward pass's copies).
    static func transpose(_ dy: Tensor, window g: Window2D, kernel: Tensor, intoParts shapes: ([Int], [Int])) -> (Tensor, Tensor) {
        precondition(shapes.0[3] % 16 == 0, "the first part's channels end at a whole vector")
        var second: Tensor!
        let first = Tensor.uninitialized(shape: shapes.0) { out in
            second = Tensor.uninitialized(shape: shapes.1) { out2 in
                transpose(dy, window: g, kernel: kernel, bias: nil, into: out.baseAddress!, out2.baseAddress!,
                          firstChannels: shapes.0[3], plus: nil)
            }
        }
        return (first, second)
    }

    private static func transpose(_ dy: Tensor, window g: Window2D, kernel: Tensor, bias: [Float]?,
                                  into out: UnsafeMutablePointer<Float>, _ out2: UnsafeMutablePointer<Float>?, firstChannels: Int,
                                  plus projection: PointwiseProjection?) {
        let cdy = kernel.shape[3], cx = kernel.shape[2]
        let (w, padded) = pack(kernel, swapChannels: true)
        let bias = paddedBias(bias, to: padded)
        let cskip = projection?.kernel.shape[2] ?? 0
        let wskip = projection.map { pack($0.kernel, swapChannels: false).values }
        let zeros = [Float](repeating: 0, count: max(cdy, cskip))
        let (rows, cols) = (axis(g.rows), axis(g.cols))
        let skip = projection?.input.scalars
        let (o, o2) = (UncheckedSendable(out), UncheckedSendable(out2))
        dy.scalars.withUnsafeBufferPointer { dp in
            bias.withBaseAddress { bp in
                skip.withBaseAddress { sp in
                    wskip.withBaseAddress { wp in
                        let (s, ws) = (UncheckedSendable(sp), UncheckedSendable(wp))
                        Parallel.forEachRange(g.batch * g.rows.input) { range in
                            segkit_conv2d_transpose_direct(dp.baseAddress!, Int32(cdy), rows, cols, w, Int32(cx), Int32(padded), bp,
                                                           zeros, o.value, o2.value, Int32(firstChannels),
                                                           Int32(range.lowerBound), Int32(range.upperBound), s.value, Int32(cskip), ws.value)
                        }
                    }
                }
            }
        }
    }

    /// dL/dW of the convolution of `x` over window `g` given dy, in HWIO layout,
    /// and, when asked, the per-channel sums of dy or of x (a bias gradient)
    /// taken from the rows while the kernel gradient reads them: each worker
    /// sums its output rows into its own packed buffer, and the buffers are
    /// added in worker order (the same result on every run). Sums of x are
    /// nil when some input row is read by no tap.
    static func kernelGradient(_ x: Tensor, concatenatedWith x2: Tensor? = nil, window g: Window2D, dy: Tensor, kernelShape: [Int],
                               summing: RowSums? = nil) -> (kernel: Tensor, sums: Tensor?) {
        let summing = summing == .input && !g.rows.readsEveryInput ? nil : summing
        return dy.scalars.withUnsafeBufferPointer { dp in
            kernelGradient(x, concatenatedWith: x2, window: g, dy: dp.baseAddress!, relu: nil, kernelShape: kernelShape, summing: summing)
        }
    }

    /// The kernel gradient of a convolution followed by a ReLU whose output is
    /// `y`, given dy (the ReLU's output gradient): dz = dy where y > 0, else 0,
    /// made row by row as the kernel gradient reads it (ReLU's backward pass
    /// without a sweep of its own), dL/dW of dz, and Σ dz per channel (the
    /// bias gradient) when `summingBias`.
    static func kernelGradientThroughReLU(_ x: Tensor, concatenatedWith x2: Tensor? = nil, window g: Window2D, dy: Tensor,
                                          output y: Tensor, kernelShape: [Int],
                                          summingBias: Bool) -> (kernel: Tensor, dz: Tensor, sums: Tensor?) {
        var result: (kernel: Tensor, sums: Tensor?)!
        let dz = Tensor.uninitialized(shape: dy.shape) { out in
            dy.scalars.withUnsafeBufferPointer { dp in
                y.scalars.withUnsafeBufferPointer { yp in
                    result = kernelGradient(x, concatenatedWith: x2, window: g, dy: dp.baseAddress!, relu: (yp.baseAddress!, out.baseAddress!),
                                            kernelShape: kernelShape, summing: summingBias ? .outputGradient : nil)
                }
            }
        }
        return (result.kernel, dz, result.sums)
    }

    private static func kernelGradient(_ x: Tensor, concatenatedWith x2: Tensor?, window g: Window2D, dy: UnsafePointer<Float>,
                                       relu: (y: UnsafePointer<Float>, dz: UnsafeMutablePointer<Float>)?,
                                       kernelShape: [Int], summing: RowSums?) -> (kernel: Tensor, sums: Tensor?) {
        let (kh, kw, cin, cout) = (kernelShape[0], kernelShape[1], kernelShape[2], kernelShape[3])
        let padded = paddedWidth(cout)
        let sumWidth = summing == .input ? cin : cout
        // Each part: its packed dW, then its sums.
        let size = kh * kw * cin * padded + (summing == nil ? 0 : sumWidth)
        let rowCount = g.batch * g.rows.output
        let parts = min(Parallel.maximumParts, rowCount)
        var partials = [Float](repeating: 0, count: parts * size)
        let (rows, cols) = (axis(g.rows), axis(g.cols))
        let (dd, yy, dz) = (UncheckedSendable(dy), UncheckedSendable(relu?.y), UncheckedSendable(relu?.dz))
        let cin1 = x.shape[3], cin2 = x2?.shape[3] ?? 0
        x.scalars.withUnsafeBufferPointer { xp in
            (x2?.scalars).withBaseAddress { x2p in
                partials.withUnsafeMutableBufferPointer { pp in
                    let (xx, second, out) = (UncheckedSendable(xp.baseAddress!), UncheckedSendable(x2p), UncheckedSendable(pp.baseAddress!))
                    Parallel.forEachRange(parts) { workers in
                        for w in workers {
                            let part = out.value + w * size, sums = part + kh * kw * cin * padded
                            segkit_conv2d_kernel_gradient_direct(
                                xx.value, Int32(cin1), second.value, Int32(cin2), rows, cols, dd.value, yy.value, dz.value,
                                Int32(cout), Int32(padded), part, Int32(rowCount * w / parts), Int32(rowCount * (w + 1) / parts),
                                summing == .outputGradient ? sums : nil, summing == .input ? sums : nil)
                        }
                    }
                }
            }
        }
        return unpack(partials, parts: parts, kernelShape: kernelShape, sums: summing == nil ? 0 : sumWidth)
    }

    /// Whether a transposed convolution with `inputChannels` channels takes both
    /// its gradients from `transposeGradients` (one pass over its output gradient).
    static func fusesTransposeGradients(inputChannels: Int) -> Bool {
        inputChannels <= 16 && (forcedPath == nil || forcedPath == "direct")
    }

    /// Both gradients of a transposed convolution with HWIO kernel `kernel`
    /// (its output's channels as I, its input's as O, as Keras stores it) and
    /// an input `x` of at most 16 channels, given its output gradient `dz`: the
    /// kernel gradient, the input gradient (the convolution of dz over window
    /// `g`), and Σ dz per channel (the bias gradient) when `summingBias` and
    /// every row of dz is read. One pass over dz serves both: each value is
    /// loaded once and multiplies both an x vector and a weight vector.
    static func transposeGradients(_ dz: Tensor, window g: Window2D, input x: Tensor, kernel: Tensor,
                                   summingBias: Bool) -> (kernel: Tensor, inputGradient: Tensor, sums: Tensor?) {
        let (kh, kw, cg, cx) = (kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3])
        precondition(cx <= 16, "transposeGradients takes inputs of at most 16 channels")
        let summing = summingBias && g.rows.readsEveryInput
        let (w, _) = pack(kernel, swapChannels: false)
        let size = kh * kw * cg * 16 + (summing ? cg : 0)
        let rowCount = g.batch * g.rows.output
        let parts = min(Parallel.maximumParts, rowCount)
        var partials = [Float](repeating: 0, count: parts * size)
        let (rows, cols) = (axis(g.rows), axis(g.cols))
        let dx = Tensor.uninitialized(shape: x.shape) { out in
            let o = UncheckedSendable(out.baseAddress!)
            dz.scalars.withUnsafeBufferPointer { dp in
                x.scalars.withUnsafeBufferPointer { xp in
                    partials.withUnsafeMutableBufferPointer { pp in
                        let (dd, xx, pt) = (UncheckedSendable(dp.baseAddress!), UncheckedSendable(xp.baseAddress!), UncheckedSendable(pp.baseAddress!))
                        Parallel.forEachRange(parts) { workers in
                            for wk in workers {
                                let part = pt.value + wk * size
                                segkit_conv2d_transpose_gradients_direct(
                                    dd.value, Int32(cg), rows, cols, xx.value, Int32(cx), w, part, o.value,
                                    Int32(rowCount * wk / parts), Int32(rowCount * (wk + 1) / parts),
                                    summing ? part + kh * kw * cg * 16 : nil)
                            }
                        }
                    }
                }
            }
        }
        let (dw, sums) = unpack(partials, parts: parts, kernelShape: kernel.shape, sums: summing ? cg : 0)
        return (dw, dx, sums)
    }

    /// The kernel gradient (and `sums` per-channel sums after it, if any) from
    /// per-worker partials, each packed [kh][kw][in][out padded to 16]: added
    /// in worker order, then the channel padding dropped.
    private static func unpack(_ partials: [Float], parts: Int, kernelShape: [Int], sums: Int) -> (kernel: Tensor, sums: Tensor?) {
        let (kh, kw, cin, cout) = (kernelShape[0], kernelShape[1], kernelShape[2], kernelShape[3])
        let padded = paddedWidth(cout)
        let summed = sumInOrder(partials, parts: parts)
        var dw = [Float](repeating: 0, count: kh * kw * cin * cout)
        for row in 0..<(kh * kw * cin) {
            for o in 0..<cout { dw[row * cout + o] = summed[row * padded + o] }
        }
        let rowSums = sums == 0 ? nil : Tensor(uncheckedShape: [sums], scalars: Array(summed[(kh * kw * cin * padded)...]))
        return (Tensor(uncheckedShape: kernelShape, scalars: dw), rowSums)
    }

    /// Which tensor's per-channel sums a kernel gradient also takes.
    enum RowSums {
        /// dy's (a Conv2D's bias gradient).
        case outputGradient
        /// x's (a Conv2DTranspose's: its output gradient is this convolution's input).
        case input
    }
}
