import CKernels
/// Keras's Add and Multiply: element-wise over two or more inputs of one shape.
public final class ElementwiseMerge: Layer {
    public enum Operation: Sendable { case add, multiply }
    public let operation: Operation

    public init(name: String, _ operation: Operation) {
        self.operation = operation
        super.init(name: name)
    }

    public override var kind: String { operation == .add ? "Add" : "Multiply" }
    public override var inputArity: Int? { nil }

    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        var merged = inputShapes[0]
        for s in inputShapes.dropFirst() {
            guard s.count == merged.count else { throw mismatch(inputShapes.map(describe)) }
            for (i, d) in s.enumerated() {
                switch (merged[i], d) {
                case let (a?, b?) where a != b: throw mismatch(inputShapes.map(describe))
                case (nil, let b): merged[i] = b
                default: break
                }
            }
        }
        return merged
    }

    private func mismatch(_ found: Any) -> EngineError {
        .shapeMismatch(op: "\(kind) '\(name)'", expected: "inputs of one shape", found: "\(found)")
    }

    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        guard inputs.allSatisfy({ $0.shape == inputs[0].shape }) else { throw mismatch(inputs.map(\.shape)) }
        // One pass writing a new output for two inputs (not a copy of the first, then an add).
        let op = operation
        let y = Tensor.uninitialized(shape: inputs[0].shape) { out in
            let o = UncheckedSendable(out)
            let sources = UncheckedSendable(inputs)
            Parallel.forEachRange(out.count, minimumPerWorker: 1 << 15) { r in
                let target = o.value.baseAddress! + r.lowerBound
                sources.value[0].scalars.withUnsafeBufferPointer { first in
                    guard sources.value.count > 1 else { target.update(from: first.baseAddress! + r.lowerBound, count: r.count); return }
                    // out = x₀ ∘ x₁, then out = out ∘ xₖ: one pass per further input.
                    for (k, other) in sources.value.dropFirst().enumerated() {
                        let left = k == 0 ? first.baseAddress! + r.lowerBound : UnsafePointer(target)
                        other.scalars.withUnsafeBufferPointer { b in
                            switch op {
                            case .add: segkit_add(left, b.baseAddress! + r.lowerBound, target, r.count)
                            case .multiply: segkit_multiply(left, b.baseAddress! + r.lowerBound, target, r.count)
                            }
                        }
                    }
                }
            }
        }
        // Multiply's backward needs every input; Add's needs nothing.
        return LayerOutput(y, cache: mode == .training ? (operation == .multiply ? inputs : []) : nil)
    }

    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        switch operation {
        case .add:
            return needInputGradients.map { $0 ? gradOutput : nil }
        case .multiply:
            let inputs = try requireCache(cache, as: [Tensor].self)
            return needInputGradients.indices.map { i in
                guard needInputGradients[i] else { return nil }
                var g = gradOutput
                for (j, x) in inputs.enumerated() where j != i { g.multiply(x) }
                return g
            }
        }
    }
}

/// Keras's Concatenate along one axis (default the last, channels).
public final class Concatenate: Layer {
    /// Negative counts from the end, as in Keras.
    public let axis: Int

    public init(name: String, axis: Int = -1) {
        self.axis = axis
        super.init(name: name)
    }

    public override var inputArity: Int? { nil }

    func resolvedAxis(rank: Int) throws -> Int {
        let a = axis < 0 ? rank + axis : axis
        guard a >= 1, a < rank else {
            throw EngineError.invalidArgument(op: "Concatenate '\(name)'", message: "axis \(axis) is not a non-batch axis of a rank-\(rank) input")
        }
        return a
    }

    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let rank = inputShapes[0].count
        let a = try resolvedAxis(rank: rank)
        var merged = inputShapes[0]
        for s in inputShapes.dropFirst() {
            guard s.count == rank else { throw mismatch(inputShapes.map(describe)) }
            for i in 0..<rank where i != a {
                switch (merged[i], s[i]) {
                case let (x?, y?) where x != y: throw mismatch(inputShapes.map(describe))
                case (nil, let y): merged[i] = y
                default: break
                }
            }
            merged[a] = merged[a].flatMap { m in s[a].map { m + $0 } }
        }
        return merged
    }

    private func mismatch(_ found: Any) -> EngineError {
        .shapeMismatch(op: "Concatenate '\(name)'", expected: "inputs equal in every axis but \(axis)", found: "\(found)")
    }

    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let rank = inputs[0].rank
        let a = try resolvedAxis(rank: rank)
        for x in inputs where x.rank != rank || (0..<rank).contains(where: { $0 != a && x.shape[$0] != inputs[0].shape[$0] }) {
            throw mismatch(inputs.map(\.shape))
        }
        let outer = inputs[0].shape[..<a].reduce(1, *)
        // Each input contributes a contiguous run of `width` floats per outer index.
        let widths = inputs.map { $0.shape[a...].reduce(1, *) }
        let total = widths.reduce(0, +)
        var shape = inputs[0].shape
        shape[a] = inputs.reduce(0) { $0 + $1.shape[a] }
        let offsets = Self.offsets(widths)
        let y = Tensor.uninitialized(shape: shape) { out in
            let o = UncheckedSendable(out.baseAddress!)
            let sources = UncheckedSendable(inputs)
            Self.forEachBlock(of: outer) { start, count in
                for (i, x) in sources.value.enumerated() {
                    x.scalars.withUnsafeBufferPointer { xp in
                        segkit_copy_rows(xp.baseAddress! + start * widths[i], widths[i], o.value + start * total + offsets[i], total, count, widths[i])
                    }
                }
            }
        }
        return LayerOutput(y, cache: mode == .training ? inputs.map(\.shape) : nil)
    }

    /// Whether this concatenation of `parts` joins them on their last axis (channels).
    func joinsLastAxis(of parts: [Tensor]) -> Bool {
        guard let rank = parts.first?.rank else { return false }
        return (try? resolvedAxis(rank: rank)) == rank - 1
    }

    /// The backward cache of a concatenation of `parts` that its consumer read
    /// in place instead (the graph's fold): its backward pass is the same.
    func cache(forPartsOf parts: [Tensor], mode: ExecutionMode) -> Any? {
        mode == .training ? parts.map(\.shape) : nil
    }

    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let shapes = try requireCache(cache, as: [[Int]].self)
        let a = try resolvedAxis(rank: shapes[0].count)
        let outer = shapes[0][..<a].reduce(1, *)
        let widths = shapes.map { $0[a...].reduce(1, *) }
        let total = widths.reduce(0, +)
        let offsets = Self.offsets(widths)
        return gradOutput.scalars.withUnsafeBufferPointer { dy in
            let src = UncheckedSendable(dy.baseAddress!)
            return uninitializedTensors(shapes.indices.map { needInputGradients[$0] ? shapes[$0] : nil }) { destinations in
                let destinations = UncheckedSendable(destinations)
                Self.forEachBlock(of: outer) { start, count in
                    for (i, dst) in destinations.value.enumerated() {
                        guard let dst else { continue }
                        segkit_copy_rows(src.value + start * total + offsets[i], total, dst + start * widths[i], widths[i], count, widths[i])
                    }
                }
            }
        }
    }

    /// Where each input's run starts within a concatenated row.
    private static func offsets(_ widths: [Int]) -> [Int] {
        widths.indices.map { widths[..<$0].reduce(0, +) }
    }

    /// Calls `body(firstRow, rowCount)` for blocks of 64 of the `outer` rows,
    /// split across the workers. Forward and backward copy every input's part
    /// of a block before the next, so each concatenated line is written (or
    /// read) once while in cache; input after input over the whole tensor
    /// touched every line once per input. 64 rows of a 32-channel
    /// concatenation are 8 KiB, well inside L1.
    private static func forEachBlock(of outer: Int, _ body: (Int, Int) -> Void) {
        Parallel.forEachRange(outer, minimumPerWorker: 1024) { r in
            for start in stride(from: r.lowerBound, to: r.upperBound, by: 64) {
                body(start, min(64, r.upperBound - start))
            }
        }
    }
}

/// Tensors of `shapes` (nil where nil), filled by one call of `fill` with all
/// their buffers at once (so one pass can write them all).
private func uninitializedTensors(_ shapes: [[Int]?], _ fill: ([UnsafeMutablePointer<Float>?]) -> Void) -> [Tensor?] {
    func build(_ rest: ArraySlice<[Int]?>, _ pointers: [UnsafeMutablePointer<Float>?]) -> [Tensor?] {
        guard let first = rest.first else { fill(pointers); return [] }
        guard let shape = first else { return [nil] + build(rest.dropFirst(), pointers + [nil]) }
        var tail: [Tensor?] = []
        let tensor = Tensor.uninitialized(shape: shape) { tail = build(rest.dropFirst(), pointers + [$0.baseAddress!]) }
        return [tensor] + tail
    }
    return build(shapes[...], [])
}

extension Tensor {
    /// Multiplies element by element (shapes must match).
    mutating func multiply(_ other: Tensor) {
        precondition(shape == other.shape, "multiplying \(shape) by \(other.shape)")
        scalars.withUnsafeMutableBufferPointer { a in
            other.scalars.withUnsafeBufferPointer { b in
                for i in 0..<a.count { a[i] *= b[i] }
            }
        }
    }
}
