import CKernels
import Foundation

/// Keras's activation functions (keras/src/activations/activations.py), each
/// with its derivative beside it; element-wise except softmax.
public enum Activation: Equatable, Sendable {
    /// f(x) = x: no activation.
    case linear
    /// Keras's general relu: `max_value` if x ≥ max_value, x if threshold ≤ x,
    /// else negative_slope·(x − threshold). relu6 is `maxValue: 6`.
    case relu(maxValue: Float? = nil, negativeSlope: Float = 0, threshold: Float = 0)
    /// x for x > 0, else alpha·(eˣ − 1) (Clevert et al. 2015).
    case elu(alpha: Float = 1)
    /// x·sigmoid(x), which Keras also calls silu.
    case swish
    /// 1 / (1 + e⁻ˣ).
    case sigmoid
    /// clip(slope·x + 0.5, 0, 1): slope 1/6 in Keras 3, 0.2 in Keras 2.
    case hardSigmoid(slope: Float = 1.0 / 6.0)
    /// x·relu6(x + 3)/6.
    case hardSwish
    /// The hyperbolic tangent.
    case tanh
    /// Exact (erf) or the tanh approximation.
    case gelu(approximate: Bool = false)
    /// log(1 + eˣ).
    case softplus
    /// Softmax over the last (channel) axis.
    case softmax

    /// min(max(x, 0), 6) (MobileNet's).
    public static let relu6 = Activation.relu(maxValue: 6)
    /// Keras's LeakyReLU: x for x ≥ 0, else alpha·x.
    public static func leakyRelu(alpha: Float) -> Activation { .relu(negativeSlope: alpha) }

    /// Whether the backward pass needs the output y (otherwise only z). Plain
    /// ReLU reads y > 0 (TensorFlow's ReluGrad), so training keeps no copy of z.
    var backwardUsesOutput: Bool {
        switch self {
        case .sigmoid, .tanh, .softmax, .relu(nil, 0, 0): return true
        default: return false
        }
    }

    /// y = f(z) in place, split across the engine's workers. `lastAxis` is the
    /// channel count (softmax's axis length).
    func apply(_ v: UnsafeMutableBufferPointer<Float>, lastAxis: Int) {
        if self == .linear { return }
        let buffer = UncheckedSendable(v)
        if self == .softmax {
            let rows = v.count / max(lastAxis, 1)
            Parallel.forEachRange(rows, minimumPerWorker: 1024) { r in
                softmaxRows(UnsafeMutableBufferPointer(rebasing: buffer.value[(r.lowerBound * lastAxis)..<(r.upperBound * lastAxis)]), width: lastAxis)
            }
            return
        }
        Parallel.forEachRange(v.count, minimumPerWorker: 1 << 14) { r in self.applyRange(buffer.value, r) }
    }

    /// f in place on the calling thread (for callers already inside a worker).
    func applySerially(_ v: UnsafeMutableBufferPointer<Float>, lastAxis: Int) {
        switch self {
        case .linear: return
        case .softmax: softmaxRows(v, width: lastAxis)
        default: applyRange(v, 0..<v.count)
        }
    }

    /// The vectorised activations (the common ones); the rest element by element.
    private func applyRange(_ v: UnsafeMutableBufferPointer<Float>, _ r: Range<Int>) {
        switch self {
        case .swish: segkit_swish(v.baseAddress! + r.lowerBound, r.count)
        case .sigmoid: segkit_sigmoid(v.baseAddress! + r.lowerBound, r.count)
        case .relu(nil, 0, 0): segkit_relu(v.baseAddress! + r.lowerBound, r.count)
        case .relu(let m?, 0, 0): segkit_clamp(v.baseAddress! + r.lowerBound, r.count, 0, m)
        default: for i in r { v[i] = value(v[i]) }
        }
    }

    @inline(__always) func value(_ x: Float) -> Float {
        switch self {
        case .linear: return x
        case let .relu(maxValue, slope, threshold):
            if let maxValue, x >= maxValue { return maxValue }
            if x >= threshold { return x }
            return slope * (x - threshold)
        case let .elu(alpha): return x > 0 ? x : alpha * (Foundation.exp(x) - 1)
        case .swish: return x / (1 + Foundation.exp(-x))
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case let .hardSigmoid(slope): return min(max(slope * x + 0.5, 0), 1)
        case .hardSwish: return x * min(max(x + 3, 0), 6) / 6
        case .tanh: return Foundation.tanh(x)
        case let .gelu(approximate):
            if approximate {
                let inner = Activation.geluC * (x + 0.044715 * x * x * x)
                return 0.5 * x * (1 + Foundation.tanh(inner))
            }
            return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot().float))
        case .softplus: return stableSoftplus(x)
        case .softmax: return x  // handled row-wise in apply
        }
    }

    static let geluC = Float((2.0 / Double.pi).squareRoot())

    /// dz = f'(z)·dy in place over `dy`, given the forward input z and output y.
    func backward(
        dy: UnsafeMutableBufferPointer<Float>, z: UnsafeBufferPointer<Float>,
        y: UnsafeBufferPointer<Float>, lastAxis: Int
    ) {
        if self == .linear { return }
        let (d, zz, yy) = (UncheckedSendable(dy), UncheckedSendable(z), UncheckedSendable(y))
        let width = max(lastAxis, 1)
        // Whole rows per worker, so softmax rows are never split.
        Parallel.forEachRange(dy.count / width, minimumPerWorker: 1024) { rows in
            let r = (rows.lowerBound * width)..<(rows.upperBound * width)
            self.backwardRange(d.value, zz.value, yy.value, r, lastAxis: lastAxis)
        }
    }

    private func backwardRange(
        _ dy: UnsafeMutableBufferPointer<Float>, _ z: UnsafeBufferPointer<Float>,
        _ y: UnsafeBufferPointer<Float>, _ range: Range<Int>, lastAxis: Int
    ) {
        switch self {
        case .linear:
            return
        case .swish:
            segkit_swish_backward(dy.baseAddress! + range.lowerBound, z.baseAddress! + range.lowerBound,
                                  dy.baseAddress! + range.lowerBound, range.count)
        case .relu(nil, 0, 0):
            segkit_relu_backward(dy.baseAddress! + range.lowerBound, y.baseAddress! + range.lowerBound,
                                 dy.baseAddress! + range.lowerBound, range.count)
        case .softmax:
            var row = range.lowerBound
            while row < range.upperBound {
                var dot: Float = 0
                for c in 0..<lastAxis { dot += dy[row + c] * y[row + c] }
                for c in 0..<lastAxis { dy[row + c] = y[row + c] * (dy[row + c] - dot) }
                row += lastAxis
            }
        case .sigmoid:
            for i in range { dy[i] *= y[i] * (1 - y[i]) }
        case .tanh:
            for i in range { dy[i] *= 1 - y[i] * y[i] }
        default:
            for i in range { dy[i] *= derivative(z[i]) }
        }
    }

    @inline(__always) func derivative(_ x: Float) -> Float {
        switch self {
        case .linear: return 1
        case let .relu(maxValue, slope, threshold):
            if let maxValue, x >= maxValue { return 0 }
            return x >= threshold ? 1 : slope
        case let .elu(alpha): return x > 0 ? 1 : alpha * Foundation.exp(x)
        case .swish:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        case .sigmoid:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 - s)
        case let .hardSigmoid(slope):
            let u = slope * x + 0.5
            return u > 0 && u < 1 ? slope : 0
        case .hardSwish:
            if x <= -3 { return 0 }
            if x >= 3 { return 1 }
            return (2 * x + 3) / 6
        case .tanh:
            let t = Foundation.tanh(x)
            return 1 - t * t
        case let .gelu(approximate):
            if approximate {
                let inner = Activation.geluC * (x + 0.044715 * x * x * x)
                let t = Foundation.tanh(inner)
                let dInner = Activation.geluC * (1 + 3 * 0.044715 * x * x)
                return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner
            }
            let cdf = 0.5 * (1 + Foundation.erf(x / 2.0.squareRoot().float))
            let pdf = Foundation.exp(-0.5 * x * x) / (2 * Float.pi).squareRoot()
            return cdf + x * pdf
        case .softplus: return 1 / (1 + Foundation.exp(-x))
        case .softmax: return 1
        }
    }
}

/// log(1 + eˣ) without overflow for large x.
@inline(__always) func stableSoftplus(_ x: Float) -> Float {
    x > 0 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x))
}

/// Softmax over consecutive rows of `width`, stabilised by the row maximum
/// (CKernels: row maxima, one vectorised exp over the block, normalisation).
func softmaxRows(_ v: UnsafeMutableBufferPointer<Float>, width: Int) {
    guard let base = v.baseAddress, width > 0 else { return }
    segkit_softmax_rows(base, v.count / width, Int32(width))
}

extension Double {
    var float: Float { Float(self) }
}

/// Applies an activation to a pre-activation tensor and keeps what backward needs.
struct ActivationRecord {
    var z: Tensor?   // pre-activation, when the derivative needs it
    var y: Tensor?   // output, when the derivative needs it

    /// Returns f(z); in training mode records z and/or y for the backward pass.
    static func forward(_ activation: Activation, _ z: consuming Tensor, mode: ExecutionMode) -> (Tensor, ActivationRecord) {
        if activation == .linear { return (z, ActivationRecord()) }
        // Training keeps z for the backward pass; inference applies f in place.
        let keepZ = mode == .training && !activation.backwardUsesOutput
        var y = z
        let zSaved: Tensor? = keepZ ? y : nil
        let width = y.shape.last ?? 1
        y.scalars.withUnsafeMutableBufferPointer { activation.apply($0, lastAxis: width) }
        guard mode == .training else { return (y, ActivationRecord()) }
        return activation.backwardUsesOutput ? (y, ActivationRecord(y: y)) : (y, ActivationRecord(z: zSaved))
    }

    /// dL/dz from dL/dy, with Σ dL/dz per channel added to `bias`'s gradient
    /// when it trains: what every layer with a bias and an activation does, in
    /// one pass over dy for ReLU.
    func backward(_ activation: Activation, _ dy: Tensor, bias: Parameter?) -> Tensor {
        guard let bias, bias.isTrainable else { return backward(activation, dy) }
        if activation == .relu(), let y {
            let (dz, db) = reluBackwardSummingRows(dy, output: y)
            bias.accumulateGradient(db)
            return dz
        }
        let dz = backward(activation, dy)
        bias.accumulateGradient(sumRows(dz))
        return dz
    }

    /// dL/dz from dL/dy.
    func backward(_ activation: Activation, _ dy: Tensor) -> Tensor {
        if activation == .linear { return dy }
        if activation == .relu(), let y {
            // Written into a fresh tensor: dy is usually shared, and mutating it
            // in place would copy it first.
            return Tensor.uninitialized(shape: dy.shape) { out in
                let o = UncheckedSendable(out.baseAddress!)
                dy.scalars.withUnsafeBufferPointer { d in
                    y.scalars.withUnsafeBufferPointer { yp in
                        let (dd, yy) = (UncheckedSendable(d.baseAddress!), UncheckedSendable(yp.baseAddress!))
                        Parallel.forEachRange(out.count, minimumPerWorker: 1 << 14) { r in
                            segkit_relu_backward(dd.value + r.lowerBound, yy.value + r.lowerBound, o.value + r.lowerBound, r.count)
                        }
                    }
                }
            }
        }
        var dz = dy
        let width = dy.shape.last ?? 1
        let empty: [Float] = []
        let zs = z?.scalars ?? empty, ys = y?.scalars ?? empty
        zs.withUnsafeBufferPointer { zp in
            ys.withUnsafeBufferPointer { yp in
                dz.scalars.withUnsafeMutableBufferPointer { activation.backward(dy: $0, z: zp, y: yp, lastAxis: width) }
            }
        }
        return dz
    }
}

/// A standalone activation layer (Keras's Activation, ReLU, LeakyReLU, ELU, Softmax).
public final class ActivationLayer: Layer {
    /// The function applied.
    public let activation: Activation
    private let kerasKind: String

    /// `kerasKind` is the Keras class to write back ("ReLU", "LeakyReLU", "Softmax"...).
    public init(name: String, _ activation: Activation, kerasKind: String = "Activation") {
        self.activation = activation
        self.kerasKind = kerasKind
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        ActivationLayer(name: name, activation, kerasKind: kerasKind)
    }

    public override var kind: String { kerasKind }

    /// The input's shape (any rank).
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape { inputShapes[0] }

    /// f(x) element-wise (softmax over the last axis), any shape; the cache is
    /// what f′ needs (x or y).
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let (y, record) = ActivationRecord.forward(activation, inputs[0], mode: mode)
        return LayerOutput(y, cache: record)
    }

    /// dx = dy·f′, from the cached input or output (softmax: y·(dy − Σ dy·y) per row).
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        let record = try requireCache(cache, as: ActivationRecord.self)
        return [record.backward(activation, gradOutput)]
    }
}
