/// Keras's Dense: kernel `(in, units)`, optional bias, fused activation. On a
/// rank > 2 input it acts on the last axis at every position, as Keras does.
public final class Dense: Layer {
    /// Output features (`kernel.shape[1]`).
    public let units: Int
    /// Applied to x·W + b.
    public let activation: Activation
    /// `[in, units]`.
    public let kernel: Parameter
    /// `[units]`, or nil.
    public let bias: Parameter?

    /// Checks and wraps a Keras Dense layer's weights (keras/src/layers/core/dense.py).
    /// - Throws: `EngineError.shapeMismatch` for a kernel not of rank 2 or a bias not `[units]`.
    public init(name: String, kernel: Tensor, bias: Tensor?, activation: Activation = .linear) throws {
        guard kernel.rank == 2 else {
            throw EngineError.shapeMismatch(op: "Dense '\(name)'", expected: "a rank-2 kernel (in, units)", found: "\(kernel.shape)")
        }
        if let bias, bias.shape != [kernel.shape[1]] {
            throw EngineError.shapeMismatch(op: "Dense '\(name)' bias", expected: "[\(kernel.shape[1])]", found: "\(bias.shape)")
        }
        let k = Parameter(name: "kernel", value: kernel)
        let b = bias.map { Parameter(name: "bias", value: $0) }
        self.units = kernel.shape[1]
        self.activation = activation
        self.kernel = k
        self.bias = b
        super.init(name: name, parameters: [k] + (b.map { [$0] } ?? []))
    }

    override func makeCopy() throws -> Layer {
        try Dense(name: name, kernel: kernel.value, bias: bias?.value, activation: activation)
    }

    var inputUnits: Int { kernel.shape[0] }

    /// The input shape with its last axis replaced by `units`.
    /// - Throws: `EngineError.shapeMismatch` for an input of rank < 2 or whose last axis is not `in`.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        guard s.count >= 2 else {
            throw EngineError.shapeMismatch(op: "Dense '\(name)'", expected: "an input of rank ≥ 2", found: describe(s))
        }
        if let last = s.last!, last != inputUnits {
            throw EngineError.shapeMismatch(op: "Dense '\(name)'", expected: "last axis \(inputUnits)", found: "\(last) (input \(describe(s)))")
        }
        return Array(s.dropLast()) + [units]
    }

    struct Cache {
        var input: Tensor
        var activation: ActivationRecord
    }

    /// activation(x·W + b) over the last axis: `[..., in]` → `[..., units]`, one sgemm.
    /// - Throws: `EngineError.shapeMismatch` for an input of rank < 2 or whose last axis is not `in`.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        guard x.rank >= 2, x.shape.last == inputUnits else {
            throw EngineError.shapeMismatch(op: "Dense '\(name)'", expected: "last axis \(inputUnits)", found: "input \(x.shape)")
        }
        let rows = x.count / inputUnits
        var z = Tensor.uninitialized(shape: Array(x.shape.dropLast()) + [units]) { out in
            x.scalars.withUnsafeBufferPointer { xp in
                kernel.value.scalars.withUnsafeBufferPointer { wp in
                    BLAS.sgemm(transA: false, transB: false, m: rows, n: units, k: inputUnits,
                               a: xp.baseAddress!, lda: inputUnits, b: wp.baseAddress!, ldb: units,
                               beta: 0, c: out.baseAddress!, ldc: units)
                }
            }
        }
        if let bias { addBias(bias.value, to: &z) }
        let (y, record) = ActivationRecord.forward(activation, z, mode: mode)
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, activation: record) : nil)
    }

    /// dz = dy through the activation; dW = xᵀ·dz (and db = Σ dz) where they train; dx = dz·Wᵀ.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let c = try requireCache(cache, as: Cache.self)
        let dz = c.activation.backward(activation, gradOutput, bias: bias)
        let rows = dz.count / units
        if kernel.isTrainable {
            let dw = Tensor.uninitialized(shape: kernel.shape) { dwp in
                c.input.scalars.withUnsafeBufferPointer { xp in
                    dz.scalars.withUnsafeBufferPointer { dzp in
                        BLAS.sgemm(transA: true, transB: false, m: inputUnits, n: units, k: rows,
                                   a: xp.baseAddress!, lda: inputUnits, b: dzp.baseAddress!, ldb: units,
                                   beta: 0, c: dwp.baseAddress!, ldc: units)
                    }
                }
            }
            kernel.accumulateGradient(dw)
        }
        guard needInputGradients[0] else { return [nil] }
        let dx = Tensor.uninitialized(shape: c.input.shape) { dxp in
            dz.scalars.withUnsafeBufferPointer { dzp in
                kernel.value.scalars.withUnsafeBufferPointer { wp in
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: inputUnits, k: units,
                               a: dzp.baseAddress!, lda: units, b: wp.baseAddress!, ldb: units,
                               beta: 0, c: dxp.baseAddress!, ldc: inputUnits)
                }
            }
        }
        return [dx]
    }
}
