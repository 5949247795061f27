/// Keras's SeparableConv2D: a depthwise convolution (kernel
/// `(kh, kw, in, depth_multiplier)`, no bias, no activation) followed by a 1x1
/// convolution (kernel `(1, 1, in·dm, filters)`) with the bias and activation.
/// Forward and backward are the two layers' own, chained.
public final class SeparableConv2D: Layer {
    /// The depthwise step: kernel `[kh, kw, in, dm]`, no bias, linear.
    public let depthwise: DepthwiseConv2D
    /// The 1x1 step: kernel `[1, 1, in · dm, filters]` ("pointwise_kernel"), with the bias and activation.
    public let pointwise: Conv2D

    /// Checks and wraps a Keras SeparableConv2D's weights
    /// (keras/src/layers/convolutional/base_separable_conv.py).
    /// - Throws: `EngineError.shapeMismatch` for a depthwise kernel not of rank 4, a
    ///   pointwise kernel not `[1, 1, in · dm, filters]` or a bias not `[filters]`;
    ///   `EngineError.invalidArgument` for strides or dilation below 1 or a
    ///   depthwise kernel larger than 64x64.
    public init(
        name: String, depthwiseKernel: Tensor, pointwiseKernel: Tensor, bias: Tensor?,
        strides: (Int, Int) = (1, 1), padding: Padding = .valid, dilation: (Int, Int) = (1, 1),
        activation: Activation = .linear
    ) throws {
        let dw = try DepthwiseConv2D(name: name, kernel: depthwiseKernel, bias: nil, strides: strides,
                                     padding: padding, dilation: dilation)
        let pw = try Conv2D(name: name, kernel: pointwiseKernel, bias: bias, activation: activation,
                            kernelName: "pointwise_kernel")
        guard pointwiseKernel.rank == 4, pointwiseKernel.shape[0] == 1, pointwiseKernel.shape[1] == 1,
              pointwiseKernel.shape[2] == depthwiseKernel.shape[2] * depthwiseKernel.shape[3]
        else {
            throw EngineError.shapeMismatch(
                op: "SeparableConv2D '\(name)' pointwise_kernel",
                expected: "(1, 1, \(depthwiseKernel.shape[2] * depthwiseKernel.shape[3]), filters)", found: "\(pointwiseKernel.shape)")
        }
        self.depthwise = dw
        self.pointwise = pw
        super.init(name: name, parameters: dw.parameters + pw.parameters)
    }

    override func makeCopy() throws -> Layer {
        try SeparableConv2D(name: name, depthwiseKernel: depthwise.kernel.value, pointwiseKernel: pointwise.kernel.value,
                            bias: pointwise.bias?.value, strides: depthwise.strides, padding: depthwise.padding,
                            dilation: depthwise.dilation, activation: pointwise.activation)
    }

    /// Freezes or unfreezes both steps with the layer.
    public override var isTrainable: Bool {
        didSet {
            depthwise.isTrainable = isTrainable
            pointwise.isTrainable = isTrainable
        }
    }

    /// The pointwise step's shape of the depthwise step's: `[N, H', W', filters]`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or with the wrong channel count.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        try pointwise.outputShape(for: [depthwise.outputShape(for: inputShapes)])
    }

    struct Cache {
        var depthwise: Any?
        var pointwise: Any?
    }

    /// pointwise(depthwise(x)); the cache holds both steps' caches.
    /// - Throws: `EngineError.shapeMismatch` for an input the depthwise step cannot take.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let d = try depthwise.forward(inputs, mode: mode)
        let p = try pointwise.forward([d.output], mode: mode)
        return LayerOutput(p.output, cache: mode == .training ? Cache(depthwise: d.cache, pointwise: p.cache) : nil)
    }

    /// The pointwise step's backward pass, then the depthwise step's (skipped when
    /// neither dx nor the depthwise kernel's gradient is needed).
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let c = try requireCache(cache, as: Cache.self)
        let needsMiddle = needInputGradients[0] || depthwise.kernel.isTrainable
        let middle = try pointwise.backward(gradOutput, cache: c.pointwise, needInputGradients: [needsMiddle])
        guard let dMiddle = middle[0] else { return [nil] }
        return try depthwise.backward(dMiddle, cache: c.depthwise, needInputGradients: needInputGradients)
    }
}
