/// Keras's Dropout (and SpatialDropout2D, which drops whole channels): in
/// training mode zeroes each value (or channel) with probability `rate` and
/// scales the rest by 1/(1 − rate); in inference mode the identity. A
/// `noiseShape` draws one value per element of that shape (nil: the input's
/// length on that axis) and broadcasts it: (None, 1, 1, 1) is EfficientNet's
/// stochastic depth, one draw per image.
public final class Dropout: Layer {
    /// Probability of dropping a value (or channel), in [0, 1).
    public let rate: Float
    /// SpatialDropout2D: one draw per (image, channel), shared by all positions.
    public let perChannel: Bool
    /// Keras's `noise_shape` (nil: one draw per value).
    public let noiseShape: [Int?]?
    fileprivate var generator: SeededGenerator

    /// Keras's Dropout or SpatialDropout2D (keras/src/layers/regularization/);
    /// `seed` starts the mask generator.
    /// - Throws: `EngineError.invalidArgument` for a rate outside [0, 1).
    public init(name: String, rate: Float, perChannel: Bool = false, noiseShape: [Int?]? = nil, seed: UInt64 = 0) throws {
        guard rate >= 0, rate < 1 else {
            throw EngineError.invalidArgument(op: "Dropout '\(name)'", message: "rate \(rate) must be in [0, 1)")
        }
        self.rate = rate
        self.perChannel = perChannel
        self.noiseShape = noiseShape
        self.generator = SeededGenerator(seed: seed)
        super.init(name: name)
    }

    /// The copy continues this layer's random stream where it stands, as a
    /// freshly imported layer that never ran would start it.
    override func makeCopy() throws -> Layer {
        let c = try Dropout(name: name, rate: rate, perChannel: perChannel, noiseShape: noiseShape)
        c.generator = generator
        return c
    }

    public override var kind: String { perChannel ? "SpatialDropout2D" : "Dropout" }

    public override var trainingChangesOutput: Bool { true }

    /// The input's shape.
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape { inputShapes[0] }

    /// Training: x·mask, the mask 0 or 1/(1 − rate) per value, per (image,
    /// channel) or per `noiseShape` element; the cache is the mask. Inference: x.
    /// - Throws: `EngineError.shapeMismatch` for a SpatialDropout2D input not of
    ///   rank 4 or an input whose rank differs from `noiseShape`'s.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard mode == .training, rate > 0 else { return LayerOutput(x, cache: mode == .training ? Tensor?.none as Any : nil) }
        if perChannel { try expectRank(4, x, layer: self) }
        let keep = 1 / (1 - rate)
        if let noiseShape, !perChannel {
            guard noiseShape.count == x.rank else {
                throw EngineError.shapeMismatch(op: "Dropout '\(name)'", expected: "a rank-\(noiseShape.count) input for its noise_shape", found: "\(x.shape)")
            }
            let shape = zip(noiseShape, x.shape).map { $0 ?? $1 }
            var draws = Tensor(zeros: shape)
            for i in 0..<draws.count { draws.scalars[i] = generator.nextUniform() < rate ? 0 : keep }
            let mask = Broadcast.expand(draws, to: x.shape)
            var y = x
            y.multiply(mask)
            return LayerOutput(y, cache: Optional(mask) as Any)
        }
        var mask = Tensor(zeros: x.shape)
        mask.scalars.withUnsafeMutableBufferPointer { m in
            if perChannel {
                let (n, h, w, c) = x.nhwc
                for b in 0..<n {
                    for k in 0..<c {
                        let v: Float = generator.nextUniform() < rate ? 0 : keep
                        for p in 0..<(h * w) { m[(b * h * w + p) * c + k] = v }
                    }
                }
            } else {
                for i in 0..<m.count { m[i] = generator.nextUniform() < rate ? 0 : keep }
            }
        }
        var y = x
        y.multiply(mask)
        return LayerOutput(y, cache: Optional(mask) as Any)
    }

    /// dx = dy·mask.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        guard let mask = try requireCache(cache, as: Tensor?.self) else { return [gradOutput] }
        var g = gradOutput
        g.multiply(mask)
        return [g]
    }
}

extension Dropout {
    /// Restarts the mask sequence (to replay a training step or epoch exactly).
    public func reseed(_ seed: UInt64) { generator = SeededGenerator(seed: seed) }
}
