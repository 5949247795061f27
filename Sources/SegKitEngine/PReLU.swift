/// Keras's PReLU: y = x for x > 0, α·x otherwise, with a learned α per element of
/// the input (batch axis excluded) shared along `shared_axes` (length 1 there).
/// Backward: dx = dy·(x > 0 ? 1 : α), dα = Σ dy·x over x ≤ 0, summed over the
/// batch and the shared axes.
public final class PReLU: Layer {
    /// α: the input's shape without the batch axis, 1 along shared axes.
    public let alpha: Parameter

    /// A Keras PReLU (keras/src/layers/activations/prelu.py).
    /// - Parameter alpha: shape = the input's without the batch axis, 1 along shared axes.
    public init(name: String, alpha: Tensor) {
        self.alpha = Parameter(name: "alpha", value: alpha)
        super.init(name: name, parameters: [self.alpha])
    }

    override func makeCopy() throws -> Layer {
        PReLU(name: name, alpha: alpha.value)
    }

    /// The input's shape.
    /// - Throws: `EngineError.shapeMismatch` for an input whose rank or sizes do not match α's.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        guard s.count == alpha.value.rank + 1,
              zip(s.dropFirst(), alpha.value.shape).allSatisfy({ d, a in a == 1 || d == nil || d == a }) else {
            throw EngineError.shapeMismatch(op: "PReLU '\(name)'", expected: "an input (None, \(alpha.value.shape)) with shared axes 1",
                                            found: describe(s))
        }
        return s
    }

    /// x where x > 0, α·x elsewhere (α broadcast over the batch and shared axes);
    /// the cache is x and the broadcast α. The input is not checked against α
    /// here (`outputShape` is).
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        // The slope must broadcast over the input before it is expanded to it.
        _ = try outputShape(for: [x.shape.map { $0 }])
        let a = Broadcast.expand(alpha.value, to: x.shape)
        var y = x
        for i in 0..<y.count where y.scalars[i] <= 0 { y.scalars[i] *= a.scalars[i] }
        return LayerOutput(y, cache: mode == .training ? (x, a) : nil)
    }

    /// By the formulas in the type's comment.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let (x, a) = try requireCache(cache, as: (Tensor, Tensor).self)
        if alpha.isTrainable {
            var d = gradOutput
            for i in 0..<d.count { d.scalars[i] = x.scalars[i] > 0 ? 0 : d.scalars[i] * x.scalars[i] }
            alpha.accumulateGradient(Broadcast.reduce(d, to: alpha.value.shape))
        }
        guard needInputGradients[0] else { return [nil] }
        var g = gradOutput
        for i in 0..<g.count where x.scalars[i] <= 0 { g.scalars[i] *= a.scalars[i] }
        return [g]
    }
}
