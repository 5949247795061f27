import Foundation

/// Keras's activation functions, each with its derivative beside it.
public enum Activation: Equatable, Sendable {
    case linear
    /// Keras's general relu: `max_value` if x ≥ max_value, x if threshold ≤ x,
    /// else negative_slope·(x − threshold). relu6 is `maxValue: 6`.
    case relu(maxValue: Float? = nil, negativeSlope: Float = 0, threshold: Float = 0)
    case elu(alpha: Float = 1)
    /// x·sigmoid(x), which Keras also calls silu.
    case swish
    case sigmoid
    /// clip(slope·x + 0.5, 0, 1): slope 1/6 in Keras 3, 0.2 in Keras 2.
    case hardSigmoid(slope: Float = 1.0 / 6.0)
    /// x·relu6(x + 3)/6.
    case hardSwish
    case tanh
    /// Exact (erf) or the tanh approximation.
    case gelu(approximate: Bool = false)
    case softplus
    /// Softmax over the last (channel) axis.
    case softmax

    public static let relu6 = Activation.relu(maxValue: 6)
    public static func leakyRelu(alpha: Float) -> Activation { .relu(negativeSlope: alpha) }

    /// Whether the backward pass needs the output y (otherwise only z).
    var backwardUsesOutput: Bool {
        switch self {
        case .sigmoid, .tanh, .softmax: return true
        default: return false
        }
    }

    /// y = f(z) in place. `lastAxis` is the channel count (softmax's axis length).
    func apply(_ v: UnsafeMutableBufferPointer<Float>, lastAxis: Int) {
        switch self {
        case .linear:
            return
        case .softmax:
            softmaxRows(v, width: lastAxis)
        default:
            for i in 0..<v.count { v[i] = value(v[i]) }
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
        switch self {
        case .linear:
            return
        case .softmax:
            var row = 0
            while row < dy.count {
                var dot: Float = 0
                for c in 0..<lastAxis { dot += dy[row + c] * y[row + c] }
                for c in 0..<lastAxis { dy[row + c] = y[row + c] * (dy[row + c] - dot) }
                row += lastAxis
            }
        case .sigmoid:
            for i in 0..<dy.count { dy[i] *= y[i] * (1 - y[i]) }
        case .tanh:
            for i in 0..<dy.count { dy[i] *= 1 - y[i] * y[i] }
        default:
            for i in 0..<dy.count { dy[i] *= derivative(z[i]) }
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

/// Softmax over consecutive rows of `width`, stabilised by the row maximum.
func softmaxRows(_ v: UnsafeMutableBufferPointer<Float>, width: Int) {
    var row = 0
    while row < v.count {
        var m = -Float.infinity
        for c in 0..<width { m = max(m, v[row + c]) }
        var sum: Float = 0
        for c in 0..<width {
            let e = Foundation.exp(v[row + c] - m)
            v[row + c] = e
            sum += e
        }
        let inv = 1 / sum
        for c in 0..<width { v[row + c] *= inv }
        row += width
    }
}

extension Double {
    var float: Float { Float(self) }
}

/// Applies an activation to a pre-activation tensor and keeps what backward needs.
struct ActivationRecord {
    var z: Tensor?   // pre-activation, when the derivative needs it
    var y: Tensor?   // output, when the derivative needs it

    /// Returns f(z); in training mode records z and/or y for the backward pass.
    static func forward(_ activation: Activation, _ z: Tensor, mode: ExecutionMode) -> (Tensor, ActivationRecord) {
        if activation == .linear { return (z, ActivationRecord()) }
        var y = z
        let width = z.shape.last ?? 1
        y.scalars.withUnsafeMutableBufferPointer { activation.apply($0, lastAxis: width) }
        guard mode == .training else { return (y, ActivationRecord()) }
        return activation.backwardUsesOutput ? (y, ActivationRecord(y: y)) : (y, ActivationRecord(z: z))
    }

    /// dL/dz from dL/dy.
    func backward(_ activation: Activation, _ dy: Tensor) -> Tensor {
        if activation == .linear { return dy }
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
    public let activation: Activation
    private let kerasKind: String

    public init(name: String, _ activation: Activation, kerasKind: String = "Activation") {
        self.activation = activation
        self.kerasKind = kerasKind
        super.init(name: name)
    }

    public override var kind: String { kerasKind }

    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape { inputShapes[0] }

    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let (y, record) = ActivationRecord.forward(activation, inputs[0], mode: mode)
        return LayerOutput(y, cache: record)
    }

    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        let record = try requireCache(cache, as: ActivationRecord.self)
        return [record.backward(activation, gradOutput)]
    }
}
