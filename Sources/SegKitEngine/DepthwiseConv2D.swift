import CKernels

/// Keras's DepthwiseConv2D: kernel `(kh, kw, in, depth_multiplier)`; output
/// channel `c·dm + m` is input channel c convolved with kernel slice (c, m).
///
/// Each output reads only kh·kw values per channel, too little work for a
/// matrix product to pay off, so forward and backward are CKernels' direct
/// loops (`depthwise.c`): 16 channels to a vector, rows across the workers.
public final class DepthwiseConv2D: Layer {
    /// Output channels per input channel (`kernel.shape[3]`).
    public let depthMultiplier: Int
    /// Kernel height and width in pixels, (kh, kw), each at most 64.
    public let kernelSize: (Int, Int)
    /// Step between output pixels in input pixels, (rows, cols).
    public let strides: (Int, Int)
    /// `valid` or `same` (TF rule: odd padding bottom/right).
    public let padding: Padding
    /// Spacing between kernel taps in input pixels, (rows, cols).
    public let dilation: (Int, Int)
    /// Applied to depthwise(x) + bias.
    public let activation: Activation
    /// `[kh, kw, in, depth_multiplier]`, Keras's "depthwise_kernel".
    public let kernel: Parameter
    /// `[in · depth_multiplier]`, or nil.
    public let bias: Parameter?

    /// Checks and wraps a Keras DepthwiseConv2D's weights
    /// (keras/src/layers/convolutional/base_depthwise_conv.py).
    /// - Parameters:
    ///   - kernel: `[kh, kw, in, depth_multiplier]`.
    ///   - bias: `[in · depth_multiplier]`, or nil.
    /// - Throws: `EngineError.shapeMismatch` for a kernel not of rank 4 or a bias of
    ///   the wrong length; `EngineError.invalidArgument` for strides or dilation
    ///   below 1 or a kernel larger than 64x64.
    public init(
        name: String, kernel: Tensor, bias: Tensor?, strides: (Int, Int) = (1, 1),
        padding: Padding = .valid, dilation: (Int, Int) = (1, 1), activation: Activation = .linear
    ) throws {
        guard kernel.rank == 4 else {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "a rank-4 kernel (kh, kw, in, multiplier)", found: "\(kernel.shape)")
        }
        let outChannels = kernel.shape[2] * kernel.shape[3]
        if let bias, bias.shape != [outChannels] {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)' bias", expected: "[\(outChannels)]", found: "\(bias.shape)")
        }
        guard strides.0 >= 1, strides.1 >= 1, dilation.0 >= 1, dilation.1 >= 1 else {
            throw EngineError.invalidArgument(op: "DepthwiseConv2D '\(name)'", message: "strides and dilation must be ≥ 1")
        }
        guard kernel.shape[0] <= 64, kernel.shape[1] <= 64 else {
            throw EngineError.invalidArgument(op: "DepthwiseConv2D '\(name)'",
                                              message: "a \(kernel.shape[0])x\(kernel.shape[1]) kernel is larger than SegKit's depthwise kernels take (64x64)")
        }
        let k = Parameter(name: "depthwise_kernel", value: kernel)
        let b = bias.map { Parameter(name: "bias", value: $0) }
        self.depthMultiplier = kernel.shape[3]
        self.kernelSize = (kernel.shape[0], kernel.shape[1])
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.activation = activation
        self.kernel = k
        self.bias = b
        super.init(name: name, parameters: [k] + (b.map { [$0] } ?? []))
    }

    override func makeCopy() throws -> Layer {
        try DepthwiseConv2D(name: name, kernel: kernel.value, bias: bias?.value, strides: strides, padding: padding, dilation: dilation, activation: activation)
    }

    var inputChannels: Int { kernel.shape[2] }

    func window(for shape: [Int]) throws -> Window2D {
        let c = shape[3]
        guard c == inputChannels else {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c) (input \(shape))")
        }
        guard let g = Window2D.forward(over: shape, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding) else {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "an input at least as large as the dilated kernel", found: "\(shape)")
        }
        return g
    }

    /// `[N, H', W', in · depth_multiplier]`, H' and W' as Conv2D's.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or with the wrong channel count.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        if let c = s[3], c != inputChannels {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c)")
        }
        return Window2D.forwardShape(s, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding,
                                     channels: inputChannels * depthMultiplier)
    }

    struct Cache {
        var input: Tensor
        var window: Window2D
        var activation: ActivationRecord
    }

    /// activation(depthwise(x) + bias) for x `[N, H, W, in]` → `[N, H', W', in · dm]`
    /// on the C loops (`depthwise.c`); the training cache keeps x and the window.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4, with the
    ///   wrong channel count, or smaller than the dilated kernel.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        // The activation runs on each chunk of rows as it is made (in cache) in
        // inference, and in training where its derivative reads only the output.
        let fuse = activation != .linear && (mode == .inference || activation.backwardUsesOutput)
        let y = DepthwiseConv2D.convolve(x, window: g, kernel: kernel.value.scalars, multiplier: depthMultiplier,
                                         bias: bias?.value.scalars, activation: fuse ? activation : .linear)
        if fuse || activation == .linear {
            let record = fuse && mode == .training ? ActivationRecord(y: y) : ActivationRecord()
            return LayerOutput(y, cache: mode == .training ? Cache(input: x, window: g, activation: record) : nil)
        }
        let (out, record) = ActivationRecord.forward(activation, y, mode: mode)
        return LayerOutput(out, cache: mode == .training ? Cache(input: x, window: g, activation: record) : nil)
    }

    /// activation(depthwise(x) + bias) for input `x` [N, H, W, C] over window
    /// `g`, with `kernel` laid out as Keras's (kh, kw, C, multiplier) and
    /// `bias` of C·multiplier values: split across the engine's workers by
    /// output rows, the activation applied to each chunk of rows as it is made.
    /// Also the inference pass of a DepthwiseConv2D with a BatchNormalization
    /// folded into `kernel` and `bias`.
    static func convolve(_ x: Tensor, window g: Window2D, kernel: [Float], multiplier: Int, bias: [Float]?,
                         activation: Activation) -> Tensor {
        let cin = x.shape[3], cout = cin * multiplier
        let (rows, cols) = (DirectConvolution.axis(g.rows), DirectConvolution.axis(g.cols))
        let chunk = DirectConvolution.rowsPerChunk(pixelsPerRow: g.cols.output, channels: cout)
        return Tensor.uninitialized(shape: [g.batch, g.rows.output, g.cols.output, cout]) { out in
            let o = UncheckedSendable(out.baseAddress!)
            x.scalars.withUnsafeBufferPointer { xp in
                kernel.withUnsafeBufferPointer { wp in
                    bias.withBaseAddress { bp in
                        let (xs, ws, bs) = (UncheckedSendable(xp.baseAddress!), UncheckedSendable(wp.baseAddress!), UncheckedSendable(bp))
                        Parallel.forEachRange(g.batch * g.rows.output) { range in
                            for start in stride(from: range.lowerBound, to: range.upperBound, by: chunk) {
                                let end = min(start + chunk, range.upperBound)
                                segkit_depthwise_forward(xs.value, Int32(cin), Int32(multiplier), rows, cols, ws.value, bs.value,
                                                         o.value, Int32(start), Int32(end))
                                let first = start * g.cols.output * cout
                                activation.applySerially(UnsafeMutableBufferPointer(start: o.value + first, count: (end - start) * g.cols.output * cout),
                                                         lastAxis: cout)
                            }
                        }
                    }
                }
            }
        }
    }

    /// dz = dy through the activation; dW as per-part sums over output rows added
    /// in order (deterministic), db = Σ dz; dx `[N, H, W, in]` as a gather.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let c = try requireCache(cache, as: Cache.self)
        let dz = c.activation.backward(activation, gradOutput, bias: bias)
        let (cin, dm) = (inputChannels, depthMultiplier)
        let g = c.window
        let (rows, cols) = (DirectConvolution.axis(g.rows), DirectConvolution.axis(g.cols))
        if kernel.isTrainable {
            // One partial kernel gradient per part of the output rows, added in
            // part order: the same sum on every run whichever worker ran a part.
            let taps = kernel.value.count
            let outputRows = g.batch * g.rows.output
            let parts = max(1, min(Parallel.maximumParts, outputRows))
            var partials = [Float](repeating: 0, count: parts * taps)
            c.input.scalars.withUnsafeBufferPointer { xp in
                dz.scalars.withUnsafeBufferPointer { dzp in
                    partials.withUnsafeMutableBufferPointer { pp in
                        let (xs, ds, ps) = (UncheckedSendable(xp.baseAddress!), UncheckedSendable(dzp.baseAddress!), UncheckedSendable(pp.baseAddress!))
                        Parallel.forEachRange(parts) { partRange in
                            for part in partRange {
                                segkit_depthwise_kernel_gradient(xs.value, ds.value, Int32(cin), Int32(dm), rows, cols, ps.value + part * taps,
                                                                 Int32(outputRows * part / parts), Int32(outputRows * (part + 1) / parts))
                            }
                        }
                    }
                }
            }
            var dw = Tensor(zeros: kernel.shape)
            dw.scalars.withUnsafeMutableBufferPointer { d in
                partials.withUnsafeBufferPointer { p in
                    for part in 0..<parts { segkit_add(d.baseAddress!, p.baseAddress! + part * taps, d.baseAddress!, taps) }
                }
            }
            kernel.accumulateGradient(dw)
        }
        guard needInputGradients[0] else { return [nil] }
        let dx = Tensor.uninitialized(shape: c.input.shape) { out in
            let o = UncheckedSendable(out.baseAddress!)
            dz.scalars.withUnsafeBufferPointer { dzp in
                kernel.value.scalars.withUnsafeBufferPointer { wp in
                    let (ds, ws) = (UncheckedSendable(dzp.baseAddress!), UncheckedSendable(wp.baseAddress!))
                    Parallel.forEachRange(g.batch * g.rows.input) { range in
                        segkit_depthwise_input_gradient(ds.value, Int32(cin), Int32(dm), rows, cols, ws.value, o.value,
                                                        Int32(range.lowerBound), Int32(range.upperBound))
                    }
                }
            }
        }
        return [dx]
    }
}

extension DepthwiseConv2D: ReadsZeroPadding {
    func inferenceOutput(_ x: Tensor, padding rows: (Int, Int), _ cols: (Int, Int), kernel: Tensor, bias: [Float],
                         activation: Activation) throws -> Tensor {
        try expectRank(4, x, layer: self)
        let (n, h, w, c) = x.nhwc
        // The window over the padded shape, moved onto the unpadded input: the
        // taps that fall in the padding fall outside the input, which the kernel reads as zeros.
        var g = try window(for: [n, h + rows.0 + rows.1, w + cols.0 + cols.1, c])
        g.rows.input = h
        g.rows.padBefore += rows.0
        g.cols.input = w
        g.cols.padBefore += cols.0
        return DepthwiseConv2D.convolve(x, window: g, kernel: kernel.scalars, multiplier: depthMultiplier, bias: bias, activation: activation)
    }
}

extension DepthwiseConv2D: FoldsBatchNormalization {
    var outputChannels: Int { inputChannels * depthMultiplier }

    func inferenceOutput(_ x: Tensor, kernel: Tensor, bias: [Float], activation: Activation) throws -> Tensor {
        try expectRank(4, x, layer: self)
        return DepthwiseConv2D.convolve(x, window: try window(for: x.shape), kernel: kernel.scalars, multiplier: depthMultiplier,
                                        bias: bias, activation: activation)
    }
}
