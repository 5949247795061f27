/// Keras's Permute: reorders the axes after the batch axis (`dims`, 1-based as in
/// Keras: (2, 1, 3) swaps height and width). Backward applies the inverse order.
public final class Permute: Layer {
    /// The input axis (1-based, batch excluded) each output axis takes.
    public let dims: [Int]

    /// Keras's Permute (keras/src/layers/reshaping/permute.py).
    /// - Throws: `EngineError.invalidArgument` when `dims` is not a permutation of 1...dims.count.
    public init(name: String, dims: [Int]) throws {
        guard Set(dims) == Set(1...max(1, dims.count)), dims.count == Set(dims).count else {
            throw EngineError.invalidArgument(op: "Permute '\(name)'", message: "dims \(dims) must be a permutation of 1...\(dims.count)")
        }
        self.dims = dims
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        try Permute(name: name, dims: dims)
    }

    /// `[N] + dims.map { input[$0] }`.
    /// - Throws: `EngineError.shapeMismatch` for an input whose rank is not `dims.count + 1`.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        guard s.count == dims.count + 1 else {
            throw EngineError.shapeMismatch(op: "Permute '\(name)'", expected: "a rank-\(dims.count + 1) input", found: describe(s))
        }
        return [s[0]] + dims.map { s[$0] }
    }

    /// `x` with its axes in the order `axes` (0-based, the batch axis included).
    static func transpose(_ x: Tensor, _ axes: [Int]) -> Tensor {
        let shape = axes.map { x.shape[$0] }
        var inStrides = [Int](repeating: 1, count: x.rank)
        for a in stride(from: x.rank - 2, through: 0, by: -1) { inStrides[a] = inStrides[a + 1] * x.shape[a + 1] }
        let strides = axes.map { inStrides[$0] }
        var out = [Float](repeating: 0, count: x.count)
        var index = [Int](repeating: 0, count: shape.count)
        for o in 0..<out.count {
            var source = 0
            for a in 0..<shape.count { source += index[a] * strides[a] }
            out[o] = x.scalars[source]
            var a = shape.count - 1
            while a >= 0 {
                index[a] += 1
                if index[a] < shape[a] { break }
                index[a] = 0
                a -= 1
            }
        }
        return Tensor.assembled(shape: shape, scalars: out)
    }

    /// x with its non-batch axes reordered (a copy).
    /// - Throws: `EngineError.shapeMismatch` for an input whose rank is not `dims.count + 1`.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard x.rank == dims.count + 1 else {
            throw EngineError.shapeMismatch(op: "Permute '\(name)'", expected: "a rank-\(dims.count + 1) input", found: "\(x.shape)")
        }
        return LayerOutput(Self.transpose(x, [0] + dims), cache: mode == .training ? true : nil)
    }

    /// dy under the inverse permutation.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        _ = try requireCache(cache, as: Bool.self)
        guard needInputGradients[0] else { return [nil] }
        var inverse = [Int](repeating: 0, count: dims.count + 1)
        for (o, i) in ([0] + dims).enumerated() { inverse[i] = o }
        return [Self.transpose(gradOutput, inverse)]
    }
}
