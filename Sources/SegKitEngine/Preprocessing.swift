/// Keras's Rescaling (keras/src/layers/preprocessing/rescaling.py): y = x·scale
/// + offset (scalars, or one value per channel of the last axis); no weights.
public final class Rescaling: Layer {
    /// One value, or one per channel.
    public let scale: [Float]
    /// One value, or one per channel.
    public let offset: [Float]

    /// A Rescaling layer; lengths are checked against the input's channels in `forward`.
    /// - Throws: `EngineError.invalidArgument` for an empty `scale` or `offset`.
    public init(name: String, scale: [Float], offset: [Float]) throws {
        guard !scale.isEmpty, !offset.isEmpty else {
            throw EngineError.invalidArgument(op: "Rescaling '\(name)'", message: "scale and offset need at least one value")
        }
        self.scale = scale
        self.offset = offset
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        try Rescaling(name: name, scale: scale, offset: offset)
    }

    /// The input's shape.
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape { inputShapes[0] }

    /// x·scale + offset per channel of the last axis.
    /// - Throws: `EngineError.shapeMismatch` for a `scale` or `offset` of neither 1
    ///   nor the channel count.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        let c = x.shape.last ?? 1
        for v in [scale, offset] where v.count != 1 && v.count != c {
            throw EngineError.shapeMismatch(op: "Rescaling '\(name)'", expected: "1 or \(c) values", found: "\(v.count)")
        }
        return LayerOutput(perChannelAffine(x, scale: scale, offset: offset), cache: mode == .training ? true : nil)
    }

    /// dx = dy·scale.
    /// - Throws: `EngineError.invalidArgument` after an inference-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        // Like every layer: a backward pass needs a training-mode forward pass first.
        _ = try requireCache(cache, as: Bool.self)
        guard needInputGradients[0] else { return [nil] }
        return [perChannelAffine(gradOutput, scale: scale, offset: [0])]
    }
}

/// Keras's Normalization over the last axis (keras/src/layers/preprocessing/normalization.py):
/// y = (x − mean) / max(√variance, 1e-7),
/// with the statistics `adapt()` stored (mean, variance, count: never trainable).
public final class Normalization: Layer {
    /// Per-channel (or single) mean, never trainable.
    public let mean: Parameter
    /// Per-channel (or single) variance, never trainable.
    public let variance: Parameter
    /// `adapt()`'s sample count (Keras's "count"), kept only to be written back.
    public let sampleCount: Parameter

    /// A Normalization layer with `adapt()`'s statistics.
    /// - Throws: `EngineError.shapeMismatch` when `mean` and `variance` differ in size or are empty.
    public init(name: String, mean: Tensor, variance: Tensor, count: Tensor = Tensor(zeros: [])) throws {
        guard mean.count == variance.count, mean.count > 0 else {
            throw EngineError.shapeMismatch(op: "Normalization '\(name)'", expected: "mean and variance of one size",
                                            found: "\(mean.shape) and \(variance.shape)")
        }
        self.mean = Parameter(name: "mean", value: mean, trainable: false, canTrain: false)
        self.variance = Parameter(name: "variance", value: variance, trainable: false, canTrain: false)
        self.sampleCount = Parameter(name: "count", value: count, trainable: false, canTrain: false)
        super.init(name: name, parameters: [self.mean, self.variance, self.sampleCount])
    }

    override func makeCopy() throws -> Layer {
        try Normalization(name: name, mean: mean.value, variance: variance.value, count: sampleCount.value)
    }

    /// Keras divides by max(√variance, epsilon) with its float32 epsilon 1e-7.
    var scale: [Float] { variance.value.scalars.map { 1 / max($0.squareRoot(), 1e-7) } }

    /// The input's shape.
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape { inputShapes[0] }

    /// (x − mean)/max(√variance, 1e-7) per channel of the last axis.
    /// - Throws: `EngineError.shapeMismatch` when the statistics are neither one
    ///   value nor one per channel.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        let c = x.shape.last ?? 1
        guard mean.value.count == 1 || mean.value.count == c else {
            throw EngineError.shapeMismatch(op: "Normalization '\(name)'", expected: "\(mean.value.count) channels", found: "input \(x.shape)")
        }
        let s = scale
        let offset = zip(mean.value.scalars, s).map { -$0 * $1 }
        return LayerOutput(perChannelAffine(x, scale: s, offset: offset), cache: mode == .training ? true : nil)
    }

    /// dx = dy / max(√variance, 1e-7).
    /// - Throws: `EngineError.invalidArgument` after an inference-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        // Like every layer: a backward pass needs a training-mode forward pass first.
        _ = try requireCache(cache, as: Bool.self)
        guard needInputGradients[0] else { return [nil] }
        return [perChannelAffine(gradOutput, scale: scale, offset: [0])]
    }
}

/// y = x·scale[c] + offset[c] over the last axis (a one-element list applies to all).
func perChannelAffine(_ x: Tensor, scale: [Float], offset: [Float]) -> Tensor {
    let c = x.shape.last ?? 1
    let s = scale.count == 1 ? [Float](repeating: scale[0], count: c) : scale
    let o = offset.count == 1 ? [Float](repeating: offset[0], count: c) : offset
    var y = x
    y.scalars.withUnsafeMutableBufferPointer { v in
        var i = 0
        while i < v.count {
            for k in 0..<c { v[i + k] = v[i + k] * s[k] + o[k] }
            i += c
        }
    }
    return y
}
