import Foundation

/// Everything `segkit train` takes, with Keras-like defaults.
public struct TrainingConfig: Sendable {
    /// How the learning rate changes over the epochs (`learningRate(epoch:)`, `--schedule`).
    public enum Schedule: String, Sendable, CaseIterable { case constant, step, cosine }
    /// `--optimizer`: `sgd` (`SGD` with `momentum`) or `adam` (`Adam`).
    public enum OptimizerKind: String, Sendable, CaseIterable { case sgd, adam }

    /// Epochs to train; with `patience` or `budgetSeconds`, the most.
    public var epochs = 10
    /// Samples per step (rescaled whole images go one per step), and images per evaluation batch.
    public var batchSize = 16
    /// The optimizer.
    public var optimizer: OptimizerKind = .adam
    /// η before the schedule (`--lr`).
    public var learningRate: Float = 1e-3
    /// SGD's μ; Adam ignores it.
    public var momentum: Float = 0.9
    /// Decoupled weight decay λ, for either optimizer.
    public var weightDecay: Float = 0
    /// The learning-rate schedule.
    public var schedule: Schedule = .constant
    /// The loss (`--loss`).
    public var loss: SegmentationLoss = .ce
    /// Per-class loss weights; `autoClassWeights` computes them from the training masks.
    public var classWeights: [Float]?
    /// `--class-weights auto`: `balancedClassWeights` of the training masks, replacing `classWeights`.
    public var autoClassWeights = false
    /// U-Net's border weight map (w0, σ), per training mask.
    public var borderWeight: (w0: Float, sigma: Float)?
    /// `--augment flip,shift,elastic`: the geometric transforms of every training sample.
    public var augment: Set<Augmentation> = []
    /// `--augment scale:A-B`: each training image rescaled by a factor drawn
    /// uniformly from A…B (bilinear image, nearest-neighbour mask) before the crop.
    public var scaleRange: ClosedRange<Float>?
    /// `--crop H,W`: a random H x W window of each (rescaled) training image,
    /// smaller images padded with ignored pixels. nil: whole images.
    public var crop: (height: Int, width: Int)?
    /// Seed of the data order, the augmentation, the crops and dropout.
    public var seed: UInt64 = 0
    /// Stop after this many epochs without a better validation mIoU (without
    /// validation: a lower training loss); `epochs` is then the maximum.
    public var patience: Int?
    /// Put the best epoch's weights back when training ends (Keras's
    /// `EarlyStopping(restore_best_weights=True)`): what `compare` scores.
    public var restoreBest = false
    /// Wall-clock budget of one run in seconds, building the feature cache
    /// included: once it is spent the epoch under way ends at the next step,
    /// is validated and training stops (`compare --budget-seconds`).
    public var budgetSeconds: Double?
    /// In-memory budget of the frozen-encoder feature cache, in MiB, before it spills to disk.
    public var cacheMB = 1024
    /// Whether the frozen-encoder feature cache may be used (it is only where it is exact).
    public var useCache = true
    /// The label of pixels left out of the loss and the metrics (`--ignore-label`).
    public var ignoreLabel: Int32?
    /// The background class of U-Net's border weights (nil: the last class).
    public var backgroundClass: Int?
    /// How raw pixels become network inputs (`--input-scale`).
    public var inputScale: InputScaling = .unit

    /// The defaults: 10 epochs, batch 16, Adam at η = 1e-3, constant schedule, cross-entropy,
    /// no augmentation, seed 0, feature cache on with 1,024 MiB in memory.
    public init() {}

    /// The learning rate of `epoch` (0-based): constant; step (×0.1 at 50% and
    /// 75% of the epochs); cosine (½(1 + cos(π·epoch/epochs))).
    public func learningRate(epoch: Int) -> Float {
        switch schedule {
        case .constant: return learningRate
        case .step:
            let e = Float(epoch) / Float(max(epochs, 1))
            return learningRate * (e >= 0.75 ? 0.01 : e >= 0.5 ? 0.1 : 1)
        case .cosine:
            return learningRate * 0.5 * (1 + Float(Foundation.cos(Double.pi * Double(epoch) / Double(max(epochs, 1)))))
        }
    }
}
