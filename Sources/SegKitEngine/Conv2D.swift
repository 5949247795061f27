import CKernels

/// Keras's Conv2D: HWIO kernel `(kh, kw, cin/groups, filters)`, optional bias,
/// strides, `same`/`valid` padding, dilation, groups, fused activation.
///
/// The products run on `ConvolutionKernels` (ConvolutionKernels.swift), which
/// picks per shape among Winograd, the direct C loops, im2col + sgemm and the
/// column split. Backward: dW = patchesᵀ·dZ, dX = col2im(dZ·Wᵀ), db = Σ dZ.
public final class Conv2D: Layer, AddsToOutput, PointwiseProjecting, ReadsConcatenatedParts {
    /// Output channels (`kernel.shape[3]`).
    public let filters: Int
    /// Kernel height and width in pixels, (kh, kw).
    public let kernelSize: (Int, Int)
    /// Step between output pixels in input pixels, (rows, cols).
    public let strides: (Int, Int)
    /// `valid` (no padding) or `same` (TF rule: the odd pixel of padding goes bottom/right).
    public let padding: Padding
    /// Spacing between kernel taps in input pixels, (rows, cols); 1 is undilated.
    public let dilation: (Int, Int)
    /// Keras's `groups`: input and output channels split into this many independent convolutions.
    public let groups: Int
    /// Applied to conv(x) + bias (fused into the convolution's output chunks where it can be).
    public let activation: Activation
    /// HWIO kernel `[kh, kw, in / groups, filters]`, named "kernel" (or as given).
    public let kernel: Parameter
    /// `[filters]`, or nil for `use_bias=False`.
    public let bias: Parameter?

    /// Checks and wraps a Keras Conv2D's weights (keras/src/layers/convolutional/base_conv.py).
    /// - Parameters:
    ///   - kernel: HWIO values `[kh, kw, in / groups, filters]`; `kernel.shape[2]` fixes the input channels per group.
    ///   - bias: `[filters]`, or nil.
    ///   - kernelName: the weight's Keras name ("pointwise_kernel" inside SeparableConv2D).
    /// - Throws: `EngineError.shapeMismatch` for a kernel not of rank 4 or a bias not
    ///   `[filters]`; `EngineError.invalidArgument` for filters not divisible by
    ///   `groups`, strides or dilation below 1, or strides and dilation both above 1.
    public init(
        name: String, kernel: Tensor, bias: Tensor?, strides: (Int, Int) = (1, 1),
        padding: Padding = .valid, dilation: (Int, Int) = (1, 1), groups: Int = 1,
        activation: Activation = .linear, kernelName: String = "kernel"
    ) throws {
        guard kernel.rank == 4 else {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "a rank-4 HWIO kernel", found: "\(kernel.shape)")
        }
        let filters = kernel.shape[3]
        guard groups >= 1, filters % groups == 0 else {
            throw EngineError.invalidArgument(op: "Conv2D '\(name)'", message: "\(filters) filters do not split into \(groups) groups")
        }
        if let bias, bias.shape != [filters] {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)' bias", expected: "[\(filters)]", found: "\(bias.shape)")
        }
        guard strides.0 >= 1, strides.1 >= 1, dilation.0 >= 1, dilation.1 >= 1 else {
            throw EngineError.invalidArgument(op: "Conv2D '\(name)'", message: "strides and dilation must be ≥ 1")
        }
        guard strides == (1, 1) || dilation == (1, 1) else {
            throw EngineError.invalidArgument(op: "Conv2D '\(name)'", message: "strides > 1 with dilation > 1 is not allowed (as in Keras)")
        }
        self.filters = filters
        self.kernelSize = (kernel.shape[0], kernel.shape[1])
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.activation = activation
        let k = Parameter(name: kernelName, value: kernel)
        let b = bias.map { Parameter(name: "bias", value: $0) }
        self.kernel = k
        self.bias = b
        super.init(name: name, parameters: [k] + (b.map { [$0] } ?? []))
    }

    override func makeCopy() throws -> Layer {
        try Conv2D(name: name, kernel: kernel.value, bias: bias?.value, strides: strides, padding: padding, dilation: dilation,
                   groups: groups, activation: activation, kernelName: kernel.name)
    }

    var inputChannels: Int { kernel.shape[2] * groups }

    /// 1x1, stride 1, no groups: the patch matrix is the input itself.
    var isPointwise: Bool { kernelSize == (1, 1) && strides == (1, 1) && groups == 1 }

    func window(for shape: [Int]) throws -> Window2D {
        let c = shape[3]
        guard c == inputChannels else {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c) (input \(shape))")
        }
        guard let g = Window2D.forward(over: shape, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding) else {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "an input at least as large as the dilated kernel with valid padding", found: "\(shape)")
        }
        return g
    }

    /// `[N, H', W', filters]` with H' = ⌈H / stride⌉ (`same`) or
    /// ⌈(H − (kh − 1)·dilation) / stride⌉ (`valid`), as Keras's `compute_conv_output_shape`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or with the wrong channel count.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        if let c = s[3], c != inputChannels {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c)")
        }
        return Window2D.forwardShape(s, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding, channels: filters)
    }

    struct Cache {
        var input: Tensor
        /// The second part of a concatenated input (`input` then the first), read where it is.
        var concatenated: Tensor? = nil
        var window: Window2D
        var activation: ActivationRecord

        var inputShape: [Int] {
            guard let concatenated else { return input.shape }
            return Array(input.shape.dropLast()) + [input.shape[3] + concatenated.shape[3]]
        }
    }

    /// activation(conv(x) + bias) for x `[N, H, W, in]` → `[N, H', W', filters]`;
    /// the training cache keeps x, the window and what the activation's derivative needs.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4, with the wrong
    ///   channel count, or smaller than the dilated kernel with `valid` padding.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        return output(of: x, window: g, mode: mode) { epilogue in
            ConvolutionKernels.forward(x, window: g, kernel: kernel.value, groups: groups, bias: bias?.value.scalars, epilogue: epilogue)
        }
    }

    /// Whether the layer can read a channel concatenation's two parts in place (ungrouped only).
    public var foldsConcatenatedInputs: Bool { groups == 1 }

    /// The layer's output for the channel concatenation of `parts` (two NHWC
    /// tensors of equal N, H, W), read where they are: where the direct loops
    /// make this layer's output, which then read both parts in place (the kernel
    /// gradient's loops, which the direct forward's choice implies, do too): a
    /// U-Net decoder's first convolution without its concatenation's copy of the
    /// two tensors. Nil (nothing done) where the layer is grouped or the shapes
    /// take another kernel.
    /// - Throws: `EngineError.shapeMismatch` when the parts' channels together are
    ///   not the layer's input channels or the input is smaller than the kernel.
    public func forward(concatenationOf parts: [Tensor], mode: ExecutionMode) throws -> LayerOutput? {
        guard groups == 1, parts.count == 2, parts[0].rank == 4, parts[1].rank == 4,
              parts[0].shape.dropLast() == parts[1].shape.dropLast() else { return nil }
        let shape = Array(parts[0].shape.dropLast()) + [parts[0].shape[3] + parts[1].shape[3]]
        let g = try window(for: shape)
        guard ConvolutionKernels.forwardUsesDirectLoops(window: g, kernelShape: kernel.shape, inputChannels: shape[3], groups: 1) else { return nil }
        return output(of: parts[0], concatenatedWith: parts[1], window: g, mode: mode) { epilogue in
            DirectConvolution.forward(parts[0], concatenatedWith: parts[1], window: g, kernel: kernel.value, bias: bias?.value.scalars,
                                      epilogue: epilogue)
        }
    }

    /// The activation applied to what `convolve(epilogue)` makes, and the cache.
    private func output(of x: Tensor, concatenatedWith x2: Tensor? = nil, window g: Window2D, mode: ExecutionMode,
                        convolve: (OutputEpilogue?) -> Tensor) -> LayerOutput {
        // The activation is fused into the convolution's chunks in inference, and
        // in training too when its derivative needs only the output (ReLU,
        // sigmoid, tanh, softmax): one pass over the output fewer.
        let fuseActivation = activation != .linear && (mode == .inference || activation.backwardUsesOutput)
        let z = convolve(fuseActivation ? activationEpilogue(activation) : nil)
        if fuseActivation {
            return LayerOutput(z, cache: mode == .training ? Cache(input: x, concatenated: x2, window: g, activation: ActivationRecord(y: z)) : nil)
        }
        let (y, record) = ActivationRecord.forward(activation, z, mode: mode)
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, concatenated: x2, window: g, activation: record) : nil)
    }

    /// conv(x) + bias + addend, the addend added to each chunk of the output as
    /// it is finished: a linear convolution feeding an Add (a skip connection's
    /// projection) without the Add's own pass over three tensors. Nil (nothing
    /// done) for a non-linear layer or an `addend` not of the output's shape
    /// `[N, H', W', filters]` (an Add that broadcasts).
    /// - Throws: `EngineError.shapeMismatch` for an input the layer cannot take.
    public func forward(_ inputs: [Tensor], mode: ExecutionMode, adding addend: Tensor) throws -> LayerOutput? {
        guard activation == .linear else { return nil }
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        guard let y = convolve(x, window: g, kernel: kernel.value, bias: bias?.value.scalars, adding: addend) else { return nil }
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, window: g, activation: ActivationRecord()) : nil)
    }

    /// conv(x; kernel) + bias + addend over window `g`, the addend added to each
    /// chunk of the output as it is finished, then `after` on the chunk; nil
    /// when `addend` does not have the output's shape (an Add that broadcasts).
    func convolve(_ x: Tensor, window g: Window2D, kernel: Tensor, bias: [Float]?, adding addend: Tensor,
                  then after: OutputEpilogue? = nil) -> Tensor? {
        let cout = filters
        guard addend.shape == [g.batch, g.rows.output, g.cols.output, cout] else { return nil }
        return addend.scalars.withUnsafeBufferPointer { a in
            let a = UncheckedSendable(a.baseAddress!)
            return ConvolutionKernels.forward(x, window: g, kernel: kernel, groups: groups, bias: bias) { p, first, pixels in
                segkit_add(p, a.value + first * cout, p, pixels * cout)
                after?(p, first, pixels)
            }
        }
    }

    /// Whether the layer is a 1x1, stride-1, ungrouped, undilated, linear
    /// convolution: a skip's projection that a Conv2DTranspose can fold in.
    public var isPointwiseProjection: Bool {
        isPointwise && dilation == (1, 1) && activation == .linear
    }

    /// This layer applied to `inputs` as a term for `Conv2DTranspose.forward(_:mode:plus:)`
    /// (input `[N, H, W, in]`, kernel `[1, 1, in, filters]`, bias), with the cache a
    /// `mode` forward pass would have made; nil when `isPointwiseProjection` is false.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or with the wrong channel count.
    public func pointwiseProjection(of inputs: [Tensor], mode: ExecutionMode) throws -> (term: PointwiseProjection, cache: Any?)? {
        guard isPointwiseProjection else { return nil }
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        return (PointwiseProjection(input: x, kernel: kernel.value, bias: bias?.value.scalars),
                mode == .training ? Cache(input: x, window: g, activation: ActivationRecord()) : nil)
    }

    /// dz = dy through the activation; adds dW = patchesᵀ·dz and db = Σ dz where
    /// they train; returns dx = col2im(dz·Wᵀ) `[N, H, W, in]` when asked. With ReLU on
    /// the direct loops, the ReLU mask is applied as the kernel gradient reads dy.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let c = try requireCache(cache, as: Cache.self)
        let dz = accumulateParameterGradients(gradOutput, c)
        guard needInputGradients[0] else { return [nil] }
        return [ConvolutionKernels.inputGradient(dz, window: c.window, kernel: kernel.value, groups: groups, inputShape: c.inputShape)]
    }

    /// Where the forward pass read a concatenation's parts, the direct loops
    /// make the input gradient and the first part ends at a whole vector (a
    /// multiple of 16 channels): the parameter gradients added as `backward`
    /// does, and the parts' gradients (each of its part's shape, nil where not
    /// `needed`), each written where it is. Nil, having done nothing, otherwise.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public func backward(_ gradOutput: Tensor, cache: Any?, toConcatenatedParts needed: [Bool]) throws -> [Tensor?]? {
        let c = try requireCache(cache, as: Cache.self)
        guard let second = c.concatenated, c.input.shape[3] % 16 == 0,
              ConvolutionKernels.inputGradientUsesDirectLoops(window: c.window, kernelShape: kernel.shape, inputChannels: inputChannels,
                                                              groups: groups) else { return nil }
        let dz = accumulateParameterGradients(gradOutput, c)
        guard needed.contains(true) else { return [nil, nil] }
        let (d1, d2) = DirectConvolution.transpose(dz, window: c.window, kernel: kernel.value, intoParts: (c.input.shape, second.shape))
        return [needed[0] ? d1 : nil, needed[1] ? d2 : nil]
    }

    /// Adds dL/dW and dL/db into the parameters that train; returns dL/dz (dy through the activation).
    private func accumulateParameterGradients(_ gradOutput: Tensor, _ c: Cache) -> Tensor {
        if kernel.isTrainable, activation == .relu(), let y = c.activation.y,
           ConvolutionKernels.kernelGradientUsesDirectLoops(window: c.window, kernelShape: kernel.shape, groups: groups) {
            // ReLU's backward pass made by the kernel gradient as it reads dy.
            let summingBias = bias?.isTrainable == true
            let fused = DirectConvolution.kernelGradientThroughReLU(c.input, concatenatedWith: c.concatenated, window: c.window,
                                                                    dy: gradOutput, output: y, kernelShape: kernel.shape,
                                                                    summingBias: summingBias)
            kernel.accumulateGradient(fused.kernel)
            if summingBias { bias!.accumulateGradient(fused.sums!) }
            return fused.dz
        }
        return accumulateConvolutionGradients(gradOutput, activation: activation, record: c.activation, kernel: kernel, bias: bias,
                                              biasSums: .outputGradient) { dz, summing in
            ConvolutionKernels.kernelGradient(c.input, concatenatedWith: c.concatenated, window: c.window, dz: dz,
                                              kernelShape: kernel.shape, groups: groups, summing: summing)
        }
    }
}

/// dL/dz from dL/dy through a convolution layer's activation, with dL/dW and
/// dL/db added to `kernel` and `bias` where they train. `kernelGradient(dz,
/// summing)` is the layer's kernel gradient; for a linear layer it is asked for
/// `biasSums`, Σ dz per channel taken from the rows it reads anyway (no pass of
/// its own over dz), and where it returns none dz is summed here.
func accumulateConvolutionGradients(
    _ dy: Tensor, activation: Activation, record: ActivationRecord, kernel: Parameter, bias: Parameter?,
    biasSums: DirectConvolution.RowSums, kernelGradient: (Tensor, DirectConvolution.RowSums?) -> (kernel: Tensor, sums: Tensor?)
) -> Tensor {
    let biasInKernelGradient = activation == .linear && kernel.isTrainable && bias?.isTrainable == true
    let dz = biasInKernelGradient ? dy : record.backward(activation, dy, bias: bias)
    if kernel.isTrainable {
        let (dw, sums) = kernelGradient(dz, biasInKernelGradient ? biasSums : nil)
        kernel.accumulateGradient(dw)
        if biasInKernelGradient { bias!.accumulateGradient(sums ?? sumRows(dz)) }
    }
    return dz
}

/// The BatchNormalization fold rule's view of the layer (`Plan/`): its
/// output for folded weights, with an activation and a residual addend made
/// in the same chunks.
extension Conv2D: AddsResidual {
    var outputChannels: Int { filters }

    func inferenceOutput(_ x: Tensor, kernel: Tensor, bias: [Float], activation: Activation) throws -> Tensor {
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        return ConvolutionKernels.forward(x, window: g, kernel: kernel, groups: groups, bias: bias,
                                          epilogue: activation == .linear ? nil : activationEpilogue(activation))
    }

    func inferenceOutput(_ x: Tensor, kernel: Tensor, bias: [Float], adding addend: Tensor, activation: Activation) throws -> Tensor? {
        try expectRank(4, x, layer: self)
        return convolve(x, window: try window(for: x.shape), kernel: kernel, bias: bias, adding: addend,
                        then: activation == .linear ? nil : activationEpilogue(activation))
    }

    /// `activation` applied to each finished chunk of this layer's output while it is in cache.
    func activationEpilogue(_ activation: Activation) -> OutputEpilogue {
        let cout = filters
        return { p, _, pixels in activation.applySerially(UnsafeMutableBufferPointer(start: p, count: pixels * cout), lastAxis: cout) }
    }
}
