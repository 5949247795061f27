/// Keras's Conv2DTranspose: kernel `(kh, kw, filters, in)`, strides, `same` /
/// `valid` padding, `output_padding`, dilation, optional bias, fused activation.
///
/// It is the input-gradient of a convolution whose input is this layer's output:
/// viewed as HWIO, the stored kernel maps `filters` channels to `in` channels,
/// so forward is `ConvolutionKernels.inputGradient` and the input gradient is
/// `ConvolutionKernels.forward`, the same code Conv2D uses.
public final class Conv2DTranspose: Layer, FoldsPointwiseProjections {
    public let filters: Int
    public let kernelSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let outputPadding: (Int, Int)?
    public let dilation: (Int, Int)
    public let activation: Activation
    public let kernel: Parameter
    public let bias: Parameter?

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

    public var foldsPointwiseProjections: Bool { activation == .linear }

    /// convᵀ(x) + bias + the projection, on the direct loops (the projection is
    /// one more tap of their register tiles); nil where those loops are not the
    /// ones this layer's shapes use.
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
