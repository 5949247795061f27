import CKernels
/// Keras's Add, Subtract, Multiply, Average, Maximum and Minimum: element-wise
/// over two or more inputs (Subtract: exactly two) with NumPy broadcasting, as
/// Keras 3's merge layers (`_compute_elemwise_op_output_shape`): trailing axes
/// aligned, each axis equal or 1 (a squeeze-and-excitation block multiplies an
/// (N, H, W, C) map by an (N, 1, 1, C) gate). Inputs of one shape take
/// vectorised C loops; broadcasting ones a strided loop (`Broadcast`).
/// Backward: each input's gradient is reduced (summed) over the axes it was
/// broadcast along; Maximum / Minimum send the gradient to the first input
/// holding the extreme (TensorFlow's tie rule, x ≥ y → x).
public final class ElementwiseMerge: Layer {
    /// The element-wise operation; the raw value is the Keras class name.
    public enum Operation: String, Sendable, CaseIterable {
        /// Σ xᵢ; x₀ − x₁ (two inputs); Π xᵢ; Σ xᵢ / n; max; min.
        case add = "Add", subtract = "Subtract", multiply = "Multiply", average = "Average", maximum = "Maximum", minimum = "Minimum"
    }
    /// What the layer computes.
    public let operation: Operation

    /// A merge layer (keras/src/layers/merging/{add,subtract,multiply,average,maximum,minimum}.py).
    public init(name: String, _ operation: Operation) {
        self.operation = operation
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        ElementwiseMerge(name: name, operation)
    }

    public override var kind: String { operation.rawValue }
    public override var inputArity: Int? { operation == .subtract ? 2 : nil }
    public override var isMerge: Bool { true }

    /// The inputs' broadcast shape (trailing axes aligned, each axis equal or 1).
    /// - Throws: `EngineError.shapeMismatch` for shapes that do not broadcast.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        var merged = inputShapes[0]
        for s in inputShapes.dropFirst() {
            guard let b = Broadcast.staticShape(merged, s) else { throw mismatch(inputShapes.map(describe)) }
            merged = b
        }
        return merged
    }

    private func mismatch(_ found: Any) -> EngineError {
        .shapeMismatch(op: "\(kind) '\(name)'", expected: "inputs of one shape, or shapes that broadcast (each axis equal or 1)", found: "\(found)")
    }

    /// The pairwise operation, applied left to right over the inputs.
    @inline(__always) static func apply(_ op: Operation, _ a: Float, _ b: Float) -> Float {
        switch op {
        case .add, .average: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .maximum: return max(a, b)
        case .minimum: return min(a, b)
        }
    }

    /// A map [N, H, W, C] multiplied by (or added to) one vector per image
    /// [N, 1, 1, C], in either order — a squeeze-and-excitation block's scaling
    /// (EfficientNet, MobileNetV3) — in one vectorised pass across the
    /// workers; nil for any other pair, which the general broadcast takes.
    private func perChannelProduct(_ inputs: [Tensor]) -> Tensor? {
        guard operation == .multiply || operation == .add, inputs.count == 2, inputs[0].rank == 4, inputs[1].rank == 4 else { return nil }
        func isVector(_ v: Tensor, of map: Tensor) -> Bool {
            v.shape == [map.shape[0], 1, 1, map.shape[3]] && map.shape[1] * map.shape[2] > 1
        }
        let (map, vector): (Tensor, Tensor)
        if isVector(inputs[1], of: inputs[0]) { (map, vector) = (inputs[0], inputs[1]) }
        else if isVector(inputs[0], of: inputs[1]) { (map, vector) = (inputs[1], inputs[0]) }
        else { return nil }
        let (n, h, w, c) = map.nhwc
        let multiply = operation == .multiply
        return Tensor.uninitialized(shape: map.shape) { out in
            let o = UncheckedSendable(out.baseAddress!)
            map.scalars.withUnsafeBufferPointer { mp in
                vector.scalars.withUnsafeBufferPointer { vp in
                    let (m, v) = (UncheckedSendable(mp.baseAddress!), UncheckedSendable(vp.baseAddress!))
                    Parallel.forEachRange(n * h * w, minimumPerWorker: 256) { pixels in
                        for p in pixels {
                            let scale = v.value + (p / (h * w)) * c
                            if multiply { segkit_multiply(m.value + p * c, scale, o.value + p * c, c) }
                            else { segkit_add(m.value + p * c, scale, o.value + p * c, c) }
                        }
                    }
                }
            }
        }
    }

    /// The operation over the inputs, left to right, at the broadcast shape; the
    /// cache holds the input shapes (Add, Subtract, Average) or the inputs (Multiply,
    /// Maximum, Minimum).
    /// - Throws: `EngineError.shapeMismatch` for shapes that do not broadcast.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        // Sums need only the shapes for their backward pass; products and extremes the inputs.
        let linear = operation == .add || operation == .subtract || operation == .average
        let cache: Any? = mode == .training ? (linear ? inputs.map { $0.shape } as Any : inputs as Any) : nil
        if let y = perChannelProduct(inputs) { return LayerOutput(y, cache: cache) }
        guard inputs.allSatisfy({ $0.shape == inputs[0].shape }) else {
            var shape = inputs[0].shape
            for x in inputs.dropFirst() {
                guard let b = Broadcast.shape(shape, x.shape) else { throw mismatch(inputs.map(\.shape)) }
                shape = b
            }
            var y = Broadcast.expand(inputs[0], to: shape)
            for x in inputs.dropFirst() { Broadcast.combine(&y, x, operation) }
            if operation == .average { y.scale(1 / Float(inputs.count)) }
            return LayerOutput(y, cache: cache)
        }
        guard operation == .add || operation == .multiply else {
            var y = inputs[0]
            for x in inputs.dropFirst() { Broadcast.combine(&y, x, operation) }
            if operation == .average { y.scale(1 / Float(inputs.count)) }
            return LayerOutput(y, cache: cache)
        }
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
                            if op == .add { segkit_add(left, b.baseAddress! + r.lowerBound, target, r.count) }
                            else { segkit_multiply(left, b.baseAddress! + r.lowerBound, target, r.count) }
                        }
                    }
                }
            }
        }
        return LayerOutput(y, cache: cache)
    }

    /// Each input's gradient, summed over the axes it was broadcast along: dy
    /// (−dy for Subtract's second, dy/n for Average), dy·Π of the others for
    /// Multiply, dy at the first extreme for Maximum/Minimum.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        switch operation {
        case .add, .subtract, .average:
            // No shapes: a fused Add (the executor's), whose inputs have the output's shape.
            let cached = try requireCache(cache, as: [[Int]].self)
            let shapes = cached.isEmpty ? needInputGradients.map { _ in gradOutput.shape } : cached
            return needInputGradients.indices.map { i in
                guard needInputGradients[i] else { return nil }
                var g = Broadcast.reduce(gradOutput, to: shapes[i])
                if operation == .subtract && i == 1 { g.scale(-1) }
                if operation == .average { g.scale(1 / Float(shapes.count)) }
                return g
            }
        case .multiply:
            let inputs = try requireCache(cache, as: [Tensor].self)
            return needInputGradients.indices.map { i in
                guard needInputGradients[i] else { return nil }
                var g = gradOutput
                for (j, x) in inputs.enumerated() where j != i { Broadcast.combine(&g, x, .multiply) }
                return Broadcast.reduce(g, to: inputs[i].shape)
            }
        case .maximum, .minimum:
            // The gradient goes to the first input holding the extreme at each position.
            let inputs = try requireCache(cache, as: [Tensor].self)
            let full = inputs.map { Broadcast.expand($0, to: gradOutput.shape) }
            var winner = [Int](repeating: 0, count: gradOutput.count)
            for p in 0..<gradOutput.count {
                var best = full[0].scalars[p]
                for k in 1..<full.count {
                    let v = full[k].scalars[p]
                    if operation == .maximum ? v > best : v < best { best = v; winner[p] = k }
                }
            }
            return needInputGradients.indices.map { i in
                guard needInputGradients[i] else { return nil }
                var g = gradOutput
                for p in 0..<g.count where winner[p] != i { g.scalars[p] = 0 }
                return Broadcast.reduce(g, to: inputs[i].shape)
            }
        }
    }
}

/// NumPy broadcasting over row-major tensors: shapes aligned at their last axis,
/// each axis equal or 1.
enum Broadcast {
    /// The broadcast of two shapes, nil when some axis differs and neither is 1.
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let n = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: n - a.count) + a, pb = [Int](repeating: 1, count: n - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else { return nil }
            out.append(max(x, y))
        }
        return out
    }

    /// The same for static shapes (nil dimensions: unknown, assumed to match).
    static func staticShape(_ a: StaticShape, _ b: StaticShape) -> StaticShape? {
        let n = max(a.count, b.count)
        let pa = [Int?](repeating: 1, count: n - a.count) + a, pb = [Int?](repeating: 1, count: n - b.count) + b
        var out: StaticShape = []
        for (x, y) in zip(pa, pb) {
            switch (x, y) {
            case let (p?, q?):
                guard p == q || p == 1 || q == 1 else { return nil }
                out.append(max(p, q))
            case (1?, nil), (nil, 1?), (nil, nil): out.append(nil)
            case let (p?, nil): out.append(p)
            case let (nil, q?): out.append(q)
            }
        }
        return out
    }

    /// For each axis of `shape` (padded in front to `rank`), the element stride in
    /// a tensor of `shape`, 0 along axes of length 1 (the broadcast ones).
    static func strides(_ shape: [Int], rank: Int) -> [Int] {
        let padded = [Int](repeating: 1, count: rank - shape.count) + shape
        var strides = [Int](repeating: 0, count: rank)
        var step = 1
        for axis in (0..<rank).reversed() {
            strides[axis] = padded[axis] == 1 ? 0 : step
            step *= padded[axis]
        }
        return strides
    }

    /// Calls `body(outputIndex, sourceIndex)` for every element of `shape`, with
    /// the index of the element of a `source`-shaped tensor broadcast onto it.
    static func forEach(_ shape: [Int], source: [Int], _ body: (Int, Int) -> Void) {
        let rank = shape.count
        guard rank > 0 else { body(0, 0); return }
        let s = strides(source, rank: rank)
        var index = [Int](repeating: 0, count: rank)
        var src = 0
        let total = shape.reduce(1, *)
        let inner = shape[rank - 1], innerStride = s[rank - 1]
        var o = 0
        while o < total {
            for j in 0..<inner { body(o + j, src + j * innerStride) }
            o += inner
            // Advance the outer axes (an odometer).
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                src += s[axis]
                if index[axis] < shape[axis] { break }
                src -= s[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// `x` broadcast to `shape`.
    static func expand(_ x: Tensor, to shape: [Int]) -> Tensor {
        if x.shape == shape { return x }
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        x.scalars.withUnsafeBufferPointer { src in
            forEach(shape, source: x.shape) { o, i in out[o] = src[i] }
        }
        return Tensor.assembled(shape: shape, scalars: out)
    }

    /// `y = y ∘ x`, `x` broadcast onto `y`'s shape (which must be the broadcast shape).
    static func combine(_ y: inout Tensor, _ x: Tensor, _ op: ElementwiseMerge.Operation) {
        let shape = y.shape
        y.scalars.withUnsafeMutableBufferPointer { out in
            x.scalars.withUnsafeBufferPointer { src in
                forEach(shape, source: x.shape) { o, i in out[o] = ElementwiseMerge.apply(op, out[o], src[i]) }
            }
        }
    }

    /// `g` summed over the axes along which a `shape`-shaped input was broadcast.
    static func reduce(_ g: Tensor, to shape: [Int]) -> Tensor {
        if g.shape == shape { return g }
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        g.scalars.withUnsafeBufferPointer { src in
            forEach(g.shape, source: shape) { o, i in out[i] += src[o] }
        }
        return Tensor.assembled(shape: shape, scalars: out)
    }
}

/// Keras's Concatenate along one axis (default the last, channels).
public final class Concatenate: Layer {
    /// The axis joined; negative counts from the end, as in Keras (default −1, channels).
    public let axis: Int

    /// Keras's Concatenate (keras/src/layers/merging/concatenate.py); the axis is
    /// checked when shapes are known.
    public init(name: String, axis: Int = -1) {
        self.axis = axis
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        Concatenate(name: name, axis: axis)
    }

    public override var inputArity: Int? { nil }

    func resolvedAxis(rank: Int) throws -> Int {
        let a = axis < 0 ? rank + axis : axis
        guard a >= 1, a < rank else {
            throw EngineError.invalidArgument(op: "Concatenate '\(name)'", message: "axis \(axis) is not a non-batch axis of a rank-\(rank) input")
        }
        return a
    }

    /// The inputs' shape with the `axis` sizes summed (unknown if any is unknown).
    /// - Throws: `EngineError.invalidArgument` for an axis that is the batch axis or
    ///   out of range; `EngineError.shapeMismatch` for inputs of other ranks or that
    ///   differ on another axis.
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

    /// The inputs joined along `axis` (each contributes a contiguous run per outer
    /// index, copied in cache-sized blocks); the cache holds the input shapes.
    /// - Throws: `EngineError.invalidArgument` for a batch or out-of-range axis;
    ///   `EngineError.shapeMismatch` for inputs that differ on another axis.
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

    /// dy split back along `axis` into each input's shape.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
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
    /// Multiplies every element by `factor`.
    mutating func scale(_ factor: Float) {
        scalars.withUnsafeMutableBufferPointer { a in for i in 0..<a.count { a[i] *= factor } }
    }

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
