import Testing
@testable import SegKitEngine

/// Central finite differences against a layer's analytic backward pass.
///
/// The scalar checked is L = Σ yᵢ·Rᵢ for a fixed random R, accumulated in
/// Double, so dL/dy = R and every output position matters. Each sampled input
/// or parameter element x gets  (L(x+h) − L(x−h)) / 2h  with h = 1e-2, compared
/// with the analytic value by |num − ana| ≤ 2e-2 + 2e-2·max(|num|, |ana|).
///
/// Why these numbers: float32 forward passes make L noisy by about 1e-4 on the
/// tensors used here, i.e. about 5e-3 in the quotient; the truncation error of
/// the central difference is O(h²) ≈ 1e-4·f'''. Gradients here are O(1), so a
/// wrong sign (error 2|g|), a dropped term, or a gradient sent to the
/// neighbouring index (error ≈ |g|) all exceed the tolerance by a wide margin,
/// while rounding never does. The tests keep inputs 3h away from kinks (relu,
/// pooling ties) so that the function is smooth within ±h.
struct GradientCheck {
    var step: Float = 1e-2
    var absoluteTolerance: Float = 2e-2
    var relativeTolerance: Float = 2e-2
    /// At most this many elements per tensor are perturbed (all of a small tensor).
    var samples = 40
    /// Called before every forward pass (Dropout uses it to replay one mask).
    var beforeForward: () -> Void = {}

    /// Checks dL/d(input) for every input and dL/dθ for every trainable parameter.
    func check(_ layer: Layer, _ inputs: [Tensor], seed: UInt64 = 1,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        var rng = SeededGenerator(seed: seed)
        beforeForward()
        let out = try layer.forward(inputs, mode: .training)
        let projection = Tensor.randomNormal(shape: out.output.shape, using: &rng)
        for p in layer.parameters { p.zeroGradient() }
        let analytic = try layer.backward(projection, cache: out.cache,
                                          needInputGradients: inputs.map { _ in true })

        func loss(_ xs: [Tensor]) throws -> Double {
            beforeForward()
            let y = try layer.forward(xs, mode: .training).output
            var total: Double = 0
            for i in 0..<y.count { total += Double(y.scalars[i]) * Double(projection.scalars[i]) }
            return total
        }

        for (k, x) in inputs.enumerated() {
            let grad = try #require(analytic[k], "no gradient for input \(k)", sourceLocation: sourceLocation)
            #expect(grad.shape == x.shape, "input \(k) gradient shape", sourceLocation: sourceLocation)
            for i in sampleIndices(x.count, &rng) {
                var plus = inputs, minus = inputs
                plus[k].scalars[i] += step
                minus[k].scalars[i] -= step
                let numeric = Float((try loss(plus) - loss(minus)) / Double(2 * step))
                expectClose(numeric, grad.scalars[i], "\(layer.kind) input \(k)[\(i)] of \(x.shape)", sourceLocation)
            }
        }
        for p in layer.parameters where p.isTrainable {
            let grad = try #require(p.gradient, "no gradient for \(p.name)", sourceLocation: sourceLocation)
            let original = p.value
            for i in sampleIndices(original.count, &rng) {
                p.value.scalars[i] = original.scalars[i] + step
                let lp = try loss(inputs)
                p.value.scalars[i] = original.scalars[i] - step
                let lm = try loss(inputs)
                p.value = original
                let numeric = Float((lp - lm) / Double(2 * step))
                expectClose(numeric, grad.scalars[i], "\(layer.kind) \(p.name)[\(i)] of \(original.shape)", sourceLocation)
            }
        }
    }

    private func sampleIndices(_ count: Int, _ rng: inout SeededGenerator) -> [Int] {
        if count <= samples { return Array(0..<count) }
        return (0..<samples).map { _ in Int(rng.next() % UInt64(count)) }
    }

    private func expectClose(_ numeric: Float, _ analytic: Float, _ what: String, _ location: SourceLocation) {
        let bound = absoluteTolerance + relativeTolerance * max(abs(numeric), abs(analytic))
        #expect(abs(numeric - analytic) <= bound,
                "\(what): finite difference \(numeric) vs backward \(analytic)", sourceLocation: location)
    }
}

/// Random test data.
struct TestData {
    var rng: SeededGenerator

    init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func bool() -> Bool { rng.next() & 1 == 1 }
    mutating func normal(_ shape: [Int], scale: Float = 1) -> Tensor {
        Tensor.randomNormal(shape: shape, stddev: scale, using: &rng)
    }

    /// Values at least `gap` apart (a shuffled ramp): no ties for max pooling
    /// within a finite-difference step.
    mutating func distinct(_ shape: [Int], gap: Float = 0.07) -> Tensor {
        let n = Tensor.elementCount(shape)
        var values = (0..<n).map { Float($0) * gap - Float(n) * gap / 2 }
        values.shuffle(using: &rng)
        return try! Tensor(shape: shape, scalars: values)
    }

    /// Normal values kept at least `margin` away from every point in `kinks`.
    mutating func awayFrom(_ kinks: [Float], _ shape: [Int], margin: Float = 0.05, scale: Float = 2) -> Tensor {
        var t = normal(shape, scale: scale)
        for i in 0..<t.count {
            for kink in kinks where abs(t.scalars[i] - kink) < margin {
                t.scalars[i] = kink + (t.scalars[i] >= kink ? margin : -margin) * 2
            }
        }
        return t
    }
}

/// Max |a − b| over two tensors of one shape.
func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

func tensor(_ shape: [Int], _ values: [Float]) -> Tensor { try! Tensor(shape: shape, scalars: values) }
