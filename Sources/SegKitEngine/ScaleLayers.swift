/// Keras's LayerScale (ConvNeXt, `keras.src.applications.convnext`): y = x · γ
/// with a learned γ per channel (the last axis). Backward: dx = dy·γ,
/// dγ = Σ dy·x over every position.
public final class LayerScale: Layer {
    /// γ, one value per channel of the last axis, `[C]`.
    public let gamma: Parameter

    /// A LayerScale with Keras's "gamma" weight.
    public init(name: String, gamma: Tensor) {
        self.gamma = Parameter(name: "gamma", value: gamma)
        super.init(name: name, parameters: [self.gamma])
    }

    override func makeCopy() throws -> Layer {
        LayerScale(name: name, gamma: gamma.value)
    }

    /// The input's shape.
    /// - Throws: `EngineError.shapeMismatch` when a known last axis is not γ's length.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        if let c = s.last ?? nil, c != gamma.value.count {
            throw EngineError.shapeMismatch(op: "LayerScale '\(name)'", expected: "\(gamma.value.count) channels", found: "\(c)")
        }
        return s
    }

    /// x·γ; the cache is x.
    /// - Throws: `EngineError.shapeMismatch` when the last axis is not γ's length.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard x.shape.last == gamma.value.count else {
            throw EngineError.shapeMismatch(op: "LayerScale '\(name)'", expected: "\(gamma.value.count) channels", found: "\(x.shape)")
        }
        var y = x
        Broadcast.combine(&y, gamma.value, .multiply)
        return LayerOutput(y, cache: mode == .training ? x : nil)
    }

    /// dγ = Σ dy·x, dx = dy·γ.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let x = try requireCache(cache, as: Tensor.self)
        if gamma.isTrainable {
            var d = gradOutput
            d.multiply(x)
            gamma.accumulateGradient(Broadcast.reduce(d, to: gamma.value.shape))
        }
        guard needInputGradients[0] else { return [nil] }
        var g = gradOutput
        Broadcast.combine(&g, gamma.value, .multiply)
        return [g]
    }
}

/// InceptionResNetV2's scaled residual (`CustomScaleLayer`, Keras's own
/// application code): y = x + r · scale for its two inputs [x, r].
public final class ScaledResidual: Layer {
    /// The residual branch's factor (InceptionResNetV2's 0.17, 0.1, 0.2, 1.0).
    public let scale: Float

    /// A CustomScaleLayer with its `scale`.
    public init(name: String, scale: Float) {
        self.scale = scale
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        ScaledResidual(name: name, scale: scale)
    }

    public override var kind: String { "CustomScaleLayer" }
    public override var inputArity: Int? { 2 }
    public override var isMerge: Bool { true }

    /// The inputs' (broadcast) shape.
    /// - Throws: `EngineError.shapeMismatch` for shapes that do not broadcast.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        guard let s = Broadcast.staticShape(inputShapes[0], inputShapes[1]) else {
            throw EngineError.shapeMismatch(op: "CustomScaleLayer '\(name)'", expected: "inputs of one shape", found: "\(inputShapes.map(describe))")
        }
        return s
    }

    /// x + r·scale for inputs [x, r] of one shape.
    /// - Throws: `EngineError.shapeMismatch` for inputs of different shapes.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        guard inputs[0].shape == inputs[1].shape else {
            throw EngineError.shapeMismatch(op: "CustomScaleLayer '\(name)'", expected: "inputs of one shape", found: "\(inputs.map(\.shape))")
        }
        var y = inputs[0]
        for i in 0..<y.count { y.scalars[i] += inputs[1].scalars[i] * scale }
        return LayerOutput(y, cache: mode == .training ? true : nil)
    }

    /// dx = dy, dr = dy·scale.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        _ = try requireCache(cache, as: Bool.self)
        var scaled = gradOutput
        scaled.scale(scale)
        return [needInputGradients[0] ? gradOutput : nil, needInputGradients[1] ? scaled : nil]
    }
}
