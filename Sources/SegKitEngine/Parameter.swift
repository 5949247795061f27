/// A named weight of a layer, with its gradient and whether training may change it.
///
/// A reference type so that the optimizer can key its state by identity and a
/// layer shared between graph nodes accumulates one gradient.
public final class Parameter: @unchecked Sendable {
    /// Keras's weight name within its layer, e.g. "kernel", "moving_mean".
    public let name: String
    /// The weight. Every change bumps `version` (a `didSet` that never reads
    /// the old value, so in-place updates stay in place: SE-0268).
    public var value: Tensor { didSet { version &+= 1 } }
    /// How many times `value` has changed: what values derived from it (the
    /// execution plan's BatchNormalization-folded kernels) check to stay current.
    public private(set) var version: UInt64 = 0
    /// Accumulated by backward passes; nil until a backward pass reaches it.
    public var gradient: Tensor?
    /// Whether the optimizer may change it. Parameters that can never be trained
    /// (BatchNormalization's moving statistics) ignore attempts to set it.
    public var isTrainable: Bool {
        get { canTrain && wantsTraining }
        set { wantsTraining = newValue }
    }
    /// False for statistics that are updated by the forward pass, never by gradients.
    public let canTrain: Bool
    private var wantsTraining: Bool

    /// A weight named `name` (Keras's name within its layer) holding `value`;
    /// `canTrain: false` makes it never trainable (moving statistics).
    public init(name: String, value: Tensor, trainable: Bool = true, canTrain: Bool = true) {
        self.name = name
        self.value = value
        self.canTrain = canTrain
        self.wantsTraining = trainable
    }

    var shape: [Int] { value.shape }

    /// Adds `delta` to the gradient, creating it on first use.
    func accumulateGradient(_ delta: Tensor) {
        if gradient == nil { gradient = delta } else { gradient!.add(delta) }
    }

    /// Drops the accumulated gradient (the next backward pass starts from zero).
    public func zeroGradient() { gradient = nil }
}
