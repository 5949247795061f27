import Foundation
import SegKitEngine

/// Updates trainable parameters from their accumulated gradients. State is
/// kept per parameter in the order of the list given to `step`, so it can be
/// saved in a checkpoint and restored against the same list.
public protocol Optimizer: AnyObject {
    /// η, the step size; `Trainer` sets it each epoch from the schedule.
    var learningRate: Float { get set }
    /// Applies one update to every parameter that has a gradient.
    func step(_ parameters: [Parameter])
    /// Named state arrays (per parameter, in order) for checkpoints.
    var state: [String: [[Float]]] { get set }
    /// Updates applied so far (Adam's t), saved in checkpoints.
    var iterations: Int { get set }
}

/// SGD with momentum and decoupled weight decay, as Keras's `SGD`
/// (`nesterov=False`): v ← μ·v − η·g; θ ← θ + v.
public final class SGD: Optimizer {
    /// η, the step size.
    public var learningRate: Float
    /// μ (0: plain gradient descent).
    public let momentum: Float
    /// Decoupled weight decay λ: θ ← θ − η·λ·θ each step, before the momentum update.
    public let weightDecay: Float
    /// The steps taken.
    public var iterations = 0
    private var velocity: [[Float]] = []

    /// SGD with `learningRate` η, `momentum` μ and decoupled `weightDecay` λ (Keras's defaults: 0, 0).
    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    /// `velocity`: each parameter's v (empty before the first step).
    public var state: [String: [[Float]]] {
        get { ["velocity": velocity] }
        set { velocity = newValue["velocity"] ?? [] }
    }

    /// One update of every parameter that has a gradient: θ ← θ − η·λ·θ, then v ← μ·v − η·g;
    /// θ ← θ + v (μ = 0: θ ← θ − η·g). Velocities start at zero, and restart when the parameter
    /// count changes.
    public func step(_ parameters: [Parameter]) {
        if velocity.count != parameters.count { velocity = parameters.map { [Float](repeating: 0, count: $0.value.count) } }
        iterations += 1
        let (lr, mu, wd) = (learningRate, momentum, weightDecay)
        for (i, p) in parameters.enumerated() {
            guard let g = p.gradient else { continue }
            p.value.scalars.withUnsafeMutableBufferPointer { w in
                g.scalars.withUnsafeBufferPointer { gp in
                    velocity[i].withUnsafeMutableBufferPointer { v in
                        for k in 0..<w.count {
                            if wd > 0 { w[k] -= lr * wd * w[k] }
                            if mu == 0 { w[k] -= lr * gp[k]; continue }
                            v[k] = mu * v[k] - lr * gp[k]
                            w[k] += v[k]
                        }
                    }
                }
            }
        }
    }
}

/// Adam as Keras implements it (ε = 1e-7, bias correction folded into the step):
/// m ← m + (g − m)(1 − β₁); v ← v + (g² − v)(1 − β₂);
/// θ ← θ − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε); weight decay decoupled (AdamW-style).
public final class Adam: Optimizer {
    /// η, the step size.
    public var learningRate: Float
    /// β₁ and β₂, the decay rates of the first and second moment estimates, and ε in the
    /// denominator (Keras's 1e-7; the paper's is 1e-8).
    public let beta1: Float, beta2: Float, epsilon: Float
    /// Decoupled weight decay λ: θ ← θ − η·λ·θ each step (AdamW, Loshchilov and Hutter).
    public let weightDecay: Float
    /// t: the steps taken (bias correction).
    public var iterations = 0
    private var m: [[Float]] = []
    private var v: [[Float]] = []

    /// Keras's defaults: η = 1e-3, β₁ = 0.9, β₂ = 0.999, ε = 1e-7, no weight decay.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// `m` and `v`: each parameter's moment estimates (empty before the first step).
    public var state: [String: [[Float]]] {
        get { ["m": m, "v": v] }
        set { m = newValue["m"] ?? []; v = newValue["v"] ?? [] }
    }

    /// One Adam update (Kingma and Ba, 2015, Algorithm 1, with Keras's ε) of every parameter that
    /// has a gradient; the moments start at zero, and restart when the parameter count changes.
    public func step(_ parameters: [Parameter]) {
        if m.count != parameters.count {
            m = parameters.map { [Float](repeating: 0, count: $0.value.count) }
            v = m
        }
        iterations += 1
        let t = Float(iterations)
        let alpha = learningRate * (1 - Foundation.pow(beta2, t)).squareRoot() / (1 - Foundation.pow(beta1, t))
        for (i, p) in parameters.enumerated() {
            guard let g = p.gradient else { continue }
            AdamUpdate.apply(values: &p.value.scalars, gradient: g.scalars, m: &m[i], v: &v[i], beta1: beta1, beta2: beta2,
                             alpha: alpha, epsilon: epsilon, decay: weightDecay > 0 ? learningRate * weightDecay : 0)
        }
    }
}
