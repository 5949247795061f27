/// Keras's Flatten (N, ...) → (N, product) and Reshape (N, ...) → (N, target),
/// with at most one -1 in the target. Row-major order is kept, which for NHWC
/// is Keras's channels-last flattening order.
public final class Reshape: Layer {
    /// The target shape without the batch axis; nil means Flatten.
    public let target: [Int]?

    /// Keras's Reshape (keras/src/layers/reshaping/reshape.py) to `target`, batch
    /// axis excluded; nil makes a Flatten.
    /// - Throws: `EngineError.invalidArgument` for a size that is neither positive
    ///   nor −1, or more than one −1.
    public init(name: String, target: [Int]?) throws {
        if let target {
            guard target.filter({ $0 == -1 }).count <= 1, target.allSatisfy({ $0 == -1 || $0 > 0 }) else {
                throw EngineError.invalidArgument(op: "Reshape '\(name)'", message: "target \(target) must be positive sizes with at most one -1")
            }
        }
        self.target = target
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        try Reshape(name: name, target: target)
    }

    private init(flattenNamed name: String) {
        self.target = nil
        super.init(name: name)
    }

    /// Keras's Flatten (keras/src/layers/reshaping/flatten.py): `[N, ...]` → `[N, product]`.
    public static func flatten(name: String) -> Reshape { Reshape(flattenNamed: name) }

    public override var kind: String { target == nil ? "Flatten" : "Reshape" }

    func resolved(perSample: Int?) throws -> StaticShape {
        guard let target else { return [perSample] }
        guard let perSample else { return target.map { $0 == -1 ? nil : $0 } }
        let known = Tensor.elementCount(target.filter { $0 != -1 })
        if target.contains(-1) {
            guard known > 0, perSample % known == 0 else { throw mismatch(perSample) }
            return target.map { $0 == -1 ? perSample / known : $0 }
        }
        guard known == perSample else { throw mismatch(perSample) }
        return target
    }

    private func mismatch(_ perSample: Int) -> EngineError {
        .shapeMismatch(op: "Reshape '\(name)'", expected: "\(target!) to hold \(perSample) values per sample", found: "a different count")
    }

    /// `[N] + target` (the −1 resolved when the per-sample size is known), or `[N, product]`.
    /// - Throws: `EngineError.shapeMismatch` when the target cannot hold the input's values per sample.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        let rest = s.dropFirst()
        let perSample: Int? = rest.contains(where: { $0 == nil }) ? nil : Tensor.elementCount(rest.map { $0! })
        return [s.first ?? nil] + (try resolved(perSample: perSample))
    }

    /// The same values under the new shape (no copy); the cache is the input shape.
    /// - Throws: `EngineError.shapeMismatch` for a rank-0 input or a target that
    ///   cannot hold its values per sample.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard x.rank >= 1 else { throw mismatch(0) }
        let n = x.shape[0]
        let perSample = n == 0 ? 0 : x.count / n
        let shape = try resolved(perSample: perSample).map { $0! }
        return LayerOutput(x.reshapedUnchecked([n] + shape), cache: mode == .training ? x.shape : nil)
    }

    /// dy under the input's shape.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        return [gradOutput.reshapedUnchecked(try requireCache(cache, as: [Int].self))]
    }
}
