import Foundation

/// Keras's BatchNormalization over the last (channel) axis
/// (keras/src/layers/normalization/batch_normalization.py; Ioffe & Szegedy,
/// "Batch Normalization", 2015): y = γ·(x − μ)/√(σ² + ε) + β per channel.
///
/// Training mode (and the layer trainable): normalises with the batch's mean and
/// biased variance, and moves the moving statistics by
/// `moving = moving·momentum + batch·(1 − momentum)` (Keras 3's rule).
/// Inference mode, or a frozen layer in any mode (as Keras does): uses the
/// moving statistics. Weight order as Keras saves it: gamma, beta,
/// moving_mean, moving_variance; the moving statistics are never trainable.
public final class BatchNormalization: Layer {
    /// Weight of the old moving statistics in each update (Keras's default 0.99).
    public let momentum: Float
    /// Added to the variance before the square root (Keras's default 1e-3).
    public let epsilon: Float
    /// Scale γ, `[channels]`; nil for `scale=False` (γ = 1).
    public let gamma: Parameter?
    /// Offset β, `[channels]`; nil for `center=False` (β = 0).
    public let beta: Parameter?
    /// Moving mean μ, `[channels]`, updated by training-mode forward passes, never trainable.
    public let movingMean: Parameter
    /// Moving (biased) variance σ², `[channels]`, updated like `movingMean`, never trainable.
    public let movingVariance: Parameter
    /// Size of the last axis it normalises.
    public let channels: Int

    /// Checks and wraps a Keras BatchNormalization's weights; moving statistics
    /// default to zeros (mean) and ones (variance), as a new Keras layer's.
    /// - Throws: `EngineError.shapeMismatch` for a weight that is not `[channels]`.
    public init(
        name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3,
        gamma: Tensor?, beta: Tensor?, movingMean: Tensor? = nil, movingVariance: Tensor? = nil
    ) throws {
        for (label, t) in [("gamma", gamma), ("beta", beta), ("moving_mean", movingMean), ("moving_variance", movingVariance)] {
            if let t, t.shape != [channels] {
                throw EngineError.shapeMismatch(op: "BatchNormalization '\(name)' \(label)", expected: "[\(channels)]", found: "\(t.shape)")
            }
        }
        let g = gamma.map { Parameter(name: "gamma", value: $0) }
        let b = beta.map { Parameter(name: "beta", value: $0) }
        let mm = Parameter(name: "moving_mean", value: movingMean ?? Tensor(zeros: [channels]), trainable: false, canTrain: false)
        let mv = Parameter(name: "moving_variance", value: movingVariance ?? Tensor(repeating: 1, shape: [channels]),
                           trainable: false, canTrain: false)
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        self.gamma = g
        self.beta = b
        self.movingMean = mm
        self.movingVariance = mv
        super.init(name: name, parameters: [g, b].compactMap { $0 } + [mm, mv])
    }

    override func makeCopy() throws -> Layer {
        try BatchNormalization(name: name, channels: channels, momentum: momentum, epsilon: epsilon, gamma: gamma?.value, beta: beta?.value,
                               movingMean: movingMean.value, movingVariance: movingVariance.value)
    }

    /// The input's shape.
    /// - Throws: `EngineError.shapeMismatch` when a known last axis is not `channels`.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        if let c = s.last ?? nil, c != channels {
            throw EngineError.shapeMismatch(op: "BatchNormalization '\(name)'", expected: "\(channels) channels", found: "\(c)")
        }
        return s
    }

    struct Cache {
        var xhat: Tensor
        var invStd: [Float]
        var usedBatchStatistics: Bool
    }

    /// Normalises `[..., channels]` with the batch's statistics (training mode and
    /// trainable; the moving statistics move as a side effect) or the moving ones;
    /// the cache keeps x̂ and 1/√(σ² + ε).
    /// - Throws: `EngineError.shapeMismatch` when the last axis is not `channels`;
    ///   `EngineError.invalidArgument` for batch statistics of an empty batch.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard x.shape.last == channels else {
            throw EngineError.shapeMismatch(op: "BatchNormalization '\(name)'", expected: "\(channels) channels on the last axis", found: "input \(x.shape)")
        }
        let c = channels
        let rows = x.count / c
        let batchStatistics = mode == .training && isTrainable
        var mean = movingMean.value.scalars
        var variance = movingVariance.value.scalars
        if batchStatistics {
            guard rows > 0 else {
                throw EngineError.invalidArgument(op: "BatchNormalization '\(name)'", message: "training on an empty batch")
            }
            (mean, variance) = BatchNormalization.moments(x, channels: c)
            let keep = momentum
            movingMean.value.scalars.withUnsafeMutableBufferPointer { m in
                for k in 0..<c { m[k] = m[k] * keep + mean[k] * (1 - keep) }
            }
            movingVariance.value.scalars.withUnsafeMutableBufferPointer { v in
                for k in 0..<c { v[k] = v[k] * keep + variance[k] * (1 - keep) }
            }
        }
        let invStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        let scale = gamma?.value.scalars ?? [Float](repeating: 1, count: c)
        let shift = beta?.value.scalars ?? [Float](repeating: 0, count: c)
        var xhat = x
        var y = x
        xhat.scalars.withUnsafeMutableBufferPointer { xh in
            y.scalars.withUnsafeMutableBufferPointer { yp in
                var i = 0
                for _ in 0..<rows {
                    for k in 0..<c {
                        let h = (xh[i + k] - mean[k]) * invStd[k]
                        xh[i + k] = h
                        yp[i + k] = h * scale[k] + shift[k]
                    }
                    i += c
                }
            }
        }
        let cache = mode == .training ? Cache(xhat: xhat, invStd: invStd, usedBatchStatistics: batchStatistics) : nil
        return LayerOutput(y, cache: cache)
    }

    /// The inference map as y = x·scale + shift per channel: scale = γ/√(σ² + ε),
    /// shift = β − μ·scale (how TensorFlow's batch_normalization computes it).
    func inferenceScaleAndShift() -> (scale: [Float], shift: [Float]) {
        let mean = movingMean.value.scalars, variance = movingVariance.value.scalars
        let gammas = gamma?.value.scalars, betas = beta?.value.scalars
        var scale = [Float](repeating: 0, count: channels), shift = [Float](repeating: 0, count: channels)
        for k in 0..<channels {
            scale[k] = (gammas?[k] ?? 1) / (variance[k] + epsilon).squareRoot()
            shift[k] = (betas?[k] ?? 0) - mean[k] * scale[k]
        }
        return (scale, shift)
    }

    /// Per-channel mean and biased variance over every other axis (two passes, for accuracy).
    static func moments(_ x: Tensor, channels c: Int) -> ([Float], [Float]) {
        let rows = x.count / c
        var mean = [Double](repeating: 0, count: c)
        var variance = [Double](repeating: 0, count: c)
        x.scalars.withUnsafeBufferPointer { xp in
            var i = 0
            for _ in 0..<rows {
                for k in 0..<c { mean[k] += Double(xp[i + k]) }
                i += c
            }
            for k in 0..<c { mean[k] /= Double(rows) }
            i = 0
            for _ in 0..<rows {
                for k in 0..<c {
                    let d = Double(xp[i + k]) - mean[k]
                    variance[k] += d * d
                }
                i += c
            }
        }
        return (mean.map { Float($0) }, variance.map { Float($0 / Double(rows)) })
    }

    /// dβ = Σ dy, dγ = Σ dy·x̂ per channel; dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂))
    /// with batch statistics (Ioffe & Szegedy §3), γ/σ · dy with the moving ones.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let cache = try requireCache(cache, as: Cache.self)
        let c = channels
        let rows = gradOutput.count / c
        // Σ dy and Σ dy·x̂ per channel: the beta and gamma gradients, and the two
        // terms the batch-statistics input gradient subtracts.
        var sumDy = [Float](repeating: 0, count: c)
        var sumDyXhat = [Float](repeating: 0, count: c)
        gradOutput.scalars.withUnsafeBufferPointer { dy in
            cache.xhat.scalars.withUnsafeBufferPointer { xh in
                var i = 0
                for _ in 0..<rows {
                    for k in 0..<c {
                        sumDy[k] += dy[i + k]
                        sumDyXhat[k] += dy[i + k] * xh[i + k]
                    }
                    i += c
                }
            }
        }
        if let beta, beta.isTrainable { beta.accumulateGradient(Tensor(uncheckedShape: [c], scalars: sumDy)) }
        if let gamma, gamma.isTrainable { gamma.accumulateGradient(Tensor(uncheckedShape: [c], scalars: sumDyXhat)) }
        guard needInputGradients[0] else { return [nil] }
        let scale = gamma?.value.scalars ?? [Float](repeating: 1, count: c)
        var dx = gradOutput
        dx.scalars.withUnsafeMutableBufferPointer { d in
            cache.xhat.scalars.withUnsafeBufferPointer { xh in
                var i = 0
                if cache.usedBatchStatistics {
                    // dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂))
                    let n = Float(rows)
                    for _ in 0..<rows {
                        for k in 0..<c {
                            d[i + k] = scale[k] * cache.invStd[k]
                                * (d[i + k] - sumDy[k] / n - xh[i + k] * sumDyXhat[k] / n)
                        }
                        i += c
                    }
                } else {
                    for _ in 0..<rows {
                        for k in 0..<c { d[i + k] *= scale[k] * cache.invStd[k] }
                        i += c
                    }
                }
            }
        }
        return [dx]
    }
}
