/// Keras's GroupNormalization over the last axis (`axis: -1`; Wu & He, "Group
/// Normalization", 2018): the C channels are split into G contiguous groups of
/// C/G, and each sample's group is normalised by the mean μ and biased variance σ²
/// of all its values — every position of the non-batch axes, every channel of the
/// group: y = (x − μ) / √(σ² + ε) · γ + β, γ and β per channel. The same in
/// training and inference (no moving statistics). Keras computes it in float32
/// whatever the dtype policy (`_apply_normalization` in
/// keras/src/layers/normalization/group_normalization.py: `ops.moments` over the
/// group's axes, `rsqrt(variance + epsilon)`). Weight order as Keras saves it:
/// gamma (`scale`), beta (`center`).
///
/// An output pixel depends on its whole map, as after a global pooling: the same
/// image gives other values in another size or cut into tiles.
///
/// Backward (the standard derivation of Ba et al. 2016, per sample and group S of
/// M values): with x̂ the normalised values and g = dy·γ,
/// dx = (g − mean_S(g) − x̂·mean_S(g·x̂)) / √(σ² + ε).
public final class GroupNormalization: Layer {
    /// How many groups the channels are split into (Keras's `groups`; a config's −1 is `channels`).
    public let groups: Int
    /// Added to each group's variance before the square root (Keras's default 1e-3).
    public let epsilon: Float
    /// Scale γ, `[channels]`; nil for `scale=False`.
    public let gamma: Parameter?
    /// Offset β, `[channels]`; nil for `center=False`.
    public let beta: Parameter?
    /// Size of the last axis; a multiple of `groups`.
    public let channels: Int

    /// Checks and wraps a Keras GroupNormalization's configuration and weights.
    /// - Throws: `EngineError.invalidArgument` when `groups` is not a divisor of
    ///   `channels`; `EngineError.shapeMismatch` for a weight that is not `[channels]`.
    public init(name: String, channels: Int, groups: Int, epsilon: Float = 1e-3, gamma: Tensor?, beta: Tensor?) throws {
        guard groups >= 1, channels % groups == 0 else {
            throw EngineError.invalidArgument(op: "GroupNormalization '\(name)'",
                                              message: "groups \(groups) does not divide its \(channels) channels")
        }
        for (label, t) in [("gamma", gamma), ("beta", beta)] {
            if let t, t.shape != [channels] {
                throw EngineError.shapeMismatch(op: "GroupNormalization '\(name)' \(label)", expected: "[\(channels)]", found: "\(t.shape)")
            }
        }
        self.channels = channels
        self.groups = groups
        self.epsilon = epsilon
        let g = gamma.map { Parameter(name: "gamma", value: $0) }
        let b = beta.map { Parameter(name: "beta", value: $0) }
        self.gamma = g
        self.beta = b
        super.init(name: name, parameters: [g, b].compactMap { $0 })
    }

    override func makeCopy() throws -> Layer {
        try GroupNormalization(name: name, channels: channels, groups: groups, epsilon: epsilon, gamma: gamma?.value, beta: beta?.value)
    }

    /// The input's shape.
    /// - Throws: `EngineError.shapeMismatch` for an input without a batch and a
    ///   channel axis, or when a known last axis is not `channels`.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        guard s.count >= 2 else {
            throw EngineError.shapeMismatch(op: "GroupNormalization '\(name)'", expected: "a batch and a channel axis", found: describe(s))
        }
        if let c = s.last ?? nil, c != channels {
            throw EngineError.shapeMismatch(op: "GroupNormalization '\(name)'", expected: "\(channels) channels", found: "\(c)")
        }
        return s
    }

    /// x̂, and 1/√(σ² + ε) per (sample, group) in sample-major order.
    struct Cache { var normalized: Tensor; var inverseDeviation: [Float] }

    /// Normalises each sample's groups; the cache keeps x̂ and 1/√(σ² + ε) per group.
    /// - Throws: `EngineError.shapeMismatch` for an input of rank below 2 or whose last axis is not `channels`.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard x.rank >= 2, x.shape.last == channels else {
            throw EngineError.shapeMismatch(op: "GroupNormalization '\(name)'", expected: "a batch axis and \(channels) channels",
                                            found: "\(x.shape)")
        }
        let c = channels, width = channels / groups, samples = x.shape[0]
        let positions = samples == 0 ? 0 : x.count / (samples * c)
        let size = Double(positions * width)
        var normalized = x
        var inverse = [Float](repeating: 0, count: samples * groups)
        normalized.scalars.withUnsafeMutableBufferPointer { v in
            // Two passes over each sample (mean, then squared deviations, as jnp.var),
            // summed in Double per group while walking the positions in memory order.
            var mean = [Double](repeating: 0, count: groups), square = [Double](repeating: 0, count: groups)
            for n in 0..<samples {
                let base = n * positions * c
                for k in 0..<groups { mean[k] = 0; square[k] = 0 }
                for i in 0..<(positions * c) { mean[(i % c) / width] += Double(v[base + i]) }
                for k in 0..<groups { mean[k] /= size }
                for i in 0..<(positions * c) {
                    let d = Double(v[base + i]) - mean[(i % c) / width]
                    square[(i % c) / width] += d * d
                }
                for k in 0..<groups { inverse[n * groups + k] = Float(1 / (square[k] / size + Double(epsilon)).squareRoot()) }
                for i in 0..<(positions * c) {
                    let k = (i % c) / width
                    v[base + i] = (v[base + i] - Float(mean[k])) * inverse[n * groups + k]
                }
            }
        }
        let y = scaledAndOffset(normalized, gamma: gamma, beta: beta)
        return LayerOutput(y, cache: mode == .training ? Cache(normalized: normalized, inverseDeviation: inverse) : nil)
    }

    /// dβ = Σ dy, dγ = Σ dy·x̂ over samples and positions; dx by the formula in the type's comment.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let cache = try requireCache(cache, as: Cache.self)
        let c = channels, width = channels / groups
        let xhat = cache.normalized.scalars, dy = gradOutput.scalars
        accumulateScaleAndOffsetGradients(gamma: gamma, beta: beta, dy: dy, normalized: xhat, channels: c)
        guard needInputGradients[0] else { return [nil] }
        let samples = gradOutput.shape[0], perSample = samples == 0 ? 0 : dy.count / samples
        let size = Float(perSample / groups)
        let scale = gamma?.value.scalars
        var dx = [Float](repeating: 0, count: dy.count)
        var meanG = [Float](repeating: 0, count: groups), meanGX = [Float](repeating: 0, count: groups)
        for n in 0..<samples {
            let base = n * perSample
            for k in 0..<groups { meanG[k] = 0; meanGX[k] = 0 }
            for i in 0..<perSample {
                let g = dy[base + i] * (scale?[i % c] ?? 1), k = (i % c) / width
                meanG[k] += g
                meanGX[k] += g * xhat[base + i]
            }
            for k in 0..<groups { meanG[k] /= size; meanGX[k] /= size }
            for i in 0..<perSample {
                let g = dy[base + i] * (scale?[i % c] ?? 1), k = (i % c) / width
                dx[base + i] = (g - meanG[k] - xhat[base + i] * meanGX[k]) * cache.inverseDeviation[n * groups + k]
            }
        }
        return [Tensor.assembled(shape: gradOutput.shape, scalars: dx)]
    }
}
