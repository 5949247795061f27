/// Keras's LayerNormalization over the last axis (`axis: -1`, ConvNeXt's):
/// y = (x − μ) / √(σ² + ε) · γ + β with μ, σ² the mean and (biased) variance of
/// each row of the last axis — the same in training and inference (no moving
/// statistics). Weight order as Keras saves it: gamma (`scale`), beta (`center`).
/// Backward (Ba et al. 2016, the standard derivation): with x̂ the normalised row
/// and g = dy·γ, dx = (g − mean(g) − x̂·mean(g·x̂)) / √(σ² + ε).
public final class LayerNormalization: Layer {
    /// Added to each row's variance before the square root (Keras's default 1e-3).
    public let epsilon: Float
    /// Scale γ, `[channels]`; nil for `scale=False`.
    public let gamma: Parameter?
    /// Offset β, `[channels]`; nil for `center=False`.
    public let beta: Parameter?
    /// Size of the last axis it normalises.
    public let channels: Int

    /// Checks and wraps a Keras LayerNormalization's weights
    /// (keras/src/layers/normalization/layer_normalization.py).
    /// - Throws: `EngineError.shapeMismatch` for a weight that is not `[channels]`.
    public init(name: String, channels: Int, epsilon: Float = 1e-3, gamma: Tensor?, beta: Tensor?) throws {
        for (label, t) in [("gamma", gamma), ("beta", beta)] {
            if let t, t.shape != [channels] {
                throw EngineError.shapeMismatch(op: "LayerNormalization '\(name)' \(label)", expected: "[\(channels)]", found: "\(t.shape)")
            }
        }
        self.channels = channels
        self.epsilon = epsilon
        let g = gamma.map { Parameter(name: "gamma", value: $0) }
        let b = beta.map { Parameter(name: "beta", value: $0) }
        self.gamma = g
        self.beta = b
        super.init(name: name, parameters: [g, b].compactMap { $0 })
    }

    override func makeCopy() throws -> Layer {
        try LayerNormalization(name: name, channels: channels, epsilon: epsilon, gamma: gamma?.value, beta: beta?.value)
    }

    /// The input's shape.
    /// - Throws: `EngineError.shapeMismatch` when a known last axis is not `channels`.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        if let c = s.last ?? nil, c != channels {
            throw EngineError.shapeMismatch(op: "LayerNormalization '\(name)'", expected: "\(channels) channels", found: "\(c)")
        }
        return s
    }

    struct Cache { var normalized: Tensor; var inverseDeviation: [Float] }

    /// Normalises each row of the last axis; the cache keeps x̂ and 1/√(σ² + ε) per row.
    /// - Throws: `EngineError.shapeMismatch` when the last axis is not `channels`.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard x.shape.last == channels else {
            throw EngineError.shapeMismatch(op: "LayerNormalization '\(name)'", expected: "\(channels) channels", found: "\(x.shape)")
        }
        let c = channels, rows = x.count / c
        var normalized = x
        var inverse = [Float](repeating: 0, count: rows)
        normalized.scalars.withUnsafeMutableBufferPointer { v in
            for r in 0..<rows {
                var mean: Double = 0, square: Double = 0
                for k in 0..<c { mean += Double(v[r * c + k]) }
                mean /= Double(c)
                for k in 0..<c { let d = Double(v[r * c + k]) - mean; square += d * d }
                let inv = Float(1 / (square / Double(c) + Double(epsilon)).squareRoot())
                inverse[r] = inv
                for k in 0..<c { v[r * c + k] = (v[r * c + k] - Float(mean)) * inv }
            }
        }
        let y = scaledAndOffset(normalized, gamma: gamma, beta: beta)
        return LayerOutput(y, cache: mode == .training ? Cache(normalized: normalized, inverseDeviation: inverse) : nil)
    }

    /// dβ = Σ dy, dγ = Σ dy·x̂ over rows; dx by the formula in the type's comment.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let cache = try requireCache(cache, as: Cache.self)
        let c = channels, rows = gradOutput.count / c
        let xhat = cache.normalized.scalars, dy = gradOutput.scalars
        accumulateScaleAndOffsetGradients(gamma: gamma, beta: beta, dy: dy, normalized: xhat, channels: c)
        guard needInputGradients[0] else { return [nil] }
        let scale = gamma?.value.scalars
        var dx = [Float](repeating: 0, count: dy.count)
        for r in 0..<rows {
            var meanG: Float = 0, meanGX: Float = 0
            for k in 0..<c {
                let g = dy[r * c + k] * (scale?[k] ?? 1)
                meanG += g
                meanGX += g * xhat[r * c + k]
            }
            meanG /= Float(c)
            meanGX /= Float(c)
            for k in 0..<c {
                let g = dy[r * c + k] * (scale?[k] ?? 1)
                dx[r * c + k] = (g - meanG - xhat[r * c + k] * meanGX) * cache.inverseDeviation[r]
            }
        }
        return [Tensor.assembled(shape: gradOutput.shape, scalars: dx)]
    }
}
