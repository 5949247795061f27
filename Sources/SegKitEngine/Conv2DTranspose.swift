/// Keras's Conv2DTranspose: kernel `(kh, kw, filters, in)`, strides, `same` /
/// `valid` padding, `output_padding`, dilation, optional bias, fused activation.
///
/// It is the input-gradient of a convolution whose input is this layer's output:
/// viewed as HWIO, the stored kernel maps `filters` channels to `in` channels,
/// so forward is `ConvolutionKernels.inputGradient` and the input gradient is
/// `ConvolutionKernels.forward`, the same code Conv2D uses.
public final class Conv2DTranspose: Layer, FoldsPointwiseProjections {
    /// Output channels (`kernel.shape[2]`).
    public let filters: Int
    /// Kernel height and width in pixels, (kh, kw).
    public let kernelSize: (Int, Int)
    /// Upsampling factor: output pixels per input pixel, (rows, cols).
    public let strides: (Int, Int)
    /// `valid` or `same` (output = input · stride with `same`), as Keras's `deconv_output_length`.
    public let padding: Padding
    /// Keras's `output_padding`: extra rows and columns at the bottom/right, each
    /// below its stride; nil lets the padding rule decide the output size.
    public let outputPadding: (Int, Int)?
    /// Spacing between kernel taps in output pixels, (rows, cols).
    public let dilation: (Int, Int)
    /// Applied to convᵀ(x) + bias.
    public let activation: Activation
    /// Kernel `[kh, kw, filters, in]` as Keras stores it (output channels before input).
    public let kernel: Parameter
    /// `[filters]`, or nil.
    public let bias: Parameter?

    /// Checks and wraps a Keras Conv2DTranspose's weights
    /// (keras/src/layers/convolutional/base_conv_transpose.py).
    /// - Parameters:
    ///   - kernel: `[kh, kw, filters, in]`, Keras's layout.
    ///   - bias: `[filters]`, or nil.
    /// - Throws: `EngineError.shapeMismatch` for a kernel not of rank 4 or a bias not
    ///   `[filters]`; `EngineError.invalidArgument` for strides or dilation below 1 or
    ///   an `outputPadding` negative or not smaller than the strides.
    public init(
        name: String, kernel: Tensor, bias: Tensor?, strides: (Int, Int) = (1, 1),
        padding: Padding = .valid, outputPadding: (Int, Int)? = nil, dilation: (Int, Int) = (1, 1),
        activation: Activation = .linear
    ) throws {
        guard kernel.rank == 4 else {
            throw EngineError.shapeMismatch(op: "Conv2DTranspose '\(name)'", expected: "a rank-4 kernel (kh, kw, filters, in)", found: "\(kernel.shape)")
        }
        let filters = kernel.shape[2]
        if let bias, bias.shape != [filters] {
            throw EngineError.shapeMismatch(op: "Conv2DTranspose '\(name)' bias", expected: "[\(filters)]", found: "\(bias.shape)")
        }
        guard strides.0 >= 1, strides.1 >= 1, dilation.0 >= 1, dilation.1 >= 1 else {
            throw EngineError.invalidArgument(op: "Conv2DTranspose '\(name)'", message: "strides and dilation must be ≥ 1")
        }
        if let op = outputPadding, op.0 >= strides.0 || op.1 >= strides.1 || op.0 < 0 || op.1 < 0 {
            throw EngineError.invalidArgument(op: "Conv2DTranspose '\(name)'", message: "output_padding \(op) must be ≥ 0 and smaller than the strides \(strides)")
        }
        let k = Parameter(name: "kernel", value: kernel)
        let b = bias.map { Parameter(name: "bias", value: $0) }
        self.filters = filters
        self.kernelSize = (kernel.shape[0], kernel.shape[1])
        self.strides = strides
        self.padding = padding
        self.outputPadding = outputPadding
        self.dilation = dilation
        self.activation = activation
        self.kernel = k
        self.bias = b
        super.init(name: name, parameters: [k] + (b.map { [$0] } ?? []))
    }

    override func makeCopy() throws -> Layer {
        try Conv2DTranspose(name: name, kernel: kernel.value, bias: bias?.value, strides: strides, padding: padding,
                            outputPadding: outputPadding, dilation: dilation, activation: activation)
    }

    var inputChannels: Int { kernel.shape[3] }

    func outputLength(_ input: Int, axis: Int) -> Int {
        WindowAxis.transposedLength(
            input: input, kernel: axis == 0 ? kernelSize.0 : kernelSize.1, stride: axis == 0 ? strides.0 : strides.1,
            dilation: axis == 0 ? dilation.0 : dilation.1, padding: padding,
            outputPadding: outputPadding.map { axis == 0 ? $0.0 : $0.1 })
    }

    /// The window of the convolution this layer transposes (its input is our output).
    func window(for x: Tensor) throws -> Window2D {
        let (n, h, w, c) = x.nhwc
        guard c == inputChannels else {
            throw EngineError.shapeMismatch(op: "Conv2DTranspose '\(name)'", expected: "\(inputChannels) input channels", found: "\(c) (input \(x.shape))")
        }
        let rows = WindowAxis.transposed(input: h, kernel: kernelSize.0, stride: strides.0, dilation: dilation.0,
                                         padding: padding, outputPadding: outputPadding?.0)
        let cols = WindowAxis.transposed(input: w, kernel: kernelSize.1, stride: strides.1, dilation: dilation.1,
                                         padding: padding, outputPadding: outputPadding?.1)
        guard rows.input > 0, cols.input > 0 else {
            throw EngineError.shapeMismatch(op: "Conv2DTranspose '\(name)'", expected: "a positive output size", found: "\(rows.input)x\(cols.input) from input \(x.shape)")
        }
        return Window2D(batch: n, rows: rows, cols: cols)
    }

    /// `[N, H', W', filters]`, each side by Keras's `deconv_output_length`
    /// (keras/src/utils/conv_utils / ops/operation_utils): with e = (kh − 1)·dilation + 1,
    /// `valid` gives H·stride + max(e − stride, 0), `same` H·stride; with
    /// `output_padding` p, (H − 1)·stride + e − 2·pad + p (pad = e / 2 for `same`, else 0).
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or with the wrong channel count.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        if let c = s[3], c != inputChannels {
            throw EngineError.shapeMismatch(op: "Conv2DTranspose '\(name)'", expected: "\(inputChannels) input channels", found: "\(c)")
        }
        return [s[0], s[1].map { outputLength($0, axis: 0) }, s[2].map { outputLength($0, axis: 1) }, filters]
    }

    struct Cache {
        var input: Tensor
        var window: Window2D
        var activation: ActivationRecord
    }

    /// activation(convᵀ(x) + bias) for x `[N, H, W, in]` → `[N, H', W', filters]`
    /// (Conv2D's input-gradient code); the training cache keeps x and the window.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4, with the wrong
    ///   channel count, or giving an empty output.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x)
        let z = ConvolutionKernels.inputGradient(
            x, window: g, kernel: kernel.value, groups: 1, bias: bias?.value.scalars,
            inputShape: [g.batch, g.rows.input, g.cols.input, filters])
        let (y, record) = ActivationRecord.forward(activation, z, mode: mode)
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, window: g, activation: record) : nil)
    }

    /// Whether `forward(_:mode:plus:)` may be offered a projection (linear layers only).
    public var foldsPointwiseProjections: Bool { activation == .linear }

    /// convᵀ(x) + bias + the projection, on the direct loops (the projection is
    /// one more tap of their register tiles): `projection.input` must be
    /// `[N, H', W', p]` with this layer's output size and its kernel `[1, 1, p, filters]`.
    /// Nil (nothing done) for a non-linear layer, other shapes, or where those
    /// loops are not the ones this layer's shapes use.
    /// - Throws: `EngineError.shapeMismatch` for an input the layer cannot take.
    public func forward(_ inputs: [Tensor], mode: ExecutionMode, plus projection: PointwiseProjection) throws -> LayerOutput? {
        guard activation == .linear else { return nil }
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x)
        let outputShape = [g.batch, g.rows.input, g.cols.input, filters]
        let p = projection.input.shape
        guard p.count == 4, Array(p.prefix(3)) == Array(outputShape.prefix(3)), projection.kernel.shape == [1, 1, p[3], filters],
              ConvolutionKernels.inputGradientUsesDirectLoops(window: g, kernelShape: kernel.shape, inputChannels: filters, groups: 1)
        else { return nil }
        let biases = [bias?.value.scalars, projection.bias].compactMap { $0 }
        let summedBias = biases.count < 2 ? biases.first : zip(biases[0], biases[1]).map { $0 + $1 }
        let y = DirectConvolution.transpose(x, window: g, kernel: kernel.value, bias: summedBias, outputShape: outputShape,
                                            plus: projection)
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, window: g, activation: ActivationRecord()) : nil)
    }

    /// dz = dy through the activation; dW is the transposed view's kernel gradient
    /// (dz as the convolution's input, x as its output gradient); dx = conv(dz) `[N, H, W, in]`.
    /// With at most 16 input channels both are made in one pass over dz.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let c = try requireCache(cache, as: Cache.self)
        if kernel.isTrainable, needInputGradients[0], DirectConvolution.fusesTransposeGradients(inputChannels: c.input.shape[3]) {
            // Both gradients in one pass over dz (a K-class decoder's largest tensor).
            var dx: Tensor?
            _ = accumulateConvolutionGradients(gradOutput, activation: activation, record: c.activation, kernel: kernel, bias: bias,
                                               biasSums: .input) { dz, summing in
                let both = DirectConvolution.transposeGradients(dz, window: c.window, input: c.input, kernel: kernel.value,
                                                                summingBias: summing != nil)
                dx = both.inputGradient
                return (both.kernel, both.sums)
            }
            return [dx]
        }
        // For y = convᵀ(x), dL/dW is the transposed view's kernel gradient with
        // dz as the convolution's input and x as its output gradient.
        let dz = accumulateConvolutionGradients(gradOutput, activation: activation, record: c.activation, kernel: kernel, bias: bias,
                                                biasSums: .input) { dz, summing in
            ConvolutionKernels.kernelGradient(dz, window: c.window, dz: c.input, kernelShape: kernel.shape, groups: 1, summing: summing)
        }
        guard needInputGradients[0] else { return [nil] }
        return [ConvolutionKernels.forward(dz, window: c.window, kernel: kernel.value, groups: 1)]
    }
}
