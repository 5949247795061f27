import Foundation

/// Everything `segkit train` takes, with Keras-like defaults.
public struct TrainingConfig: Sendable {
    public enum Schedule: String, Sendable, CaseIterable { case constant, step, cosine }
    public enum OptimizerKind: String, Sendable, CaseIterable { case sgd, adam }

    public var epochs = 10
    public var batchSize = 16
    public var optimizer: OptimizerKind = .adam
    public var learningRate: Float = 1e-3
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    public var schedule: Schedule = .constant
    public var loss: SegmentationLoss = .ce
    /// Per-class loss weights; `autoClassWeights` computes them from the training masks.
    public var classWeights: [Float]?
    public var autoClassWeights = false
    /// U-Net's border weight map (w0, σ), per training mask.
    public var borderWeight: (w0: Float, sigma: Float)?
    public var augment: Set<Augmentation> = []
    /// `--augment scale:A-B`: each training image rescaled by a factor drawn
    /// uniformly from A…B (bilinear image, nearest-neighbour mask) before the crop.
    public var scaleRange: ClosedRange<Float>?
    /// `--crop H,W`: a random H x W window of each (rescaled) training image,
    /// smaller images padded with ignored pixels. nil: whole images.
    public var crop: (height: Int, width: Int)?
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
    /// In-memory budget of the frozen-encoder feature cache before it spills to disk.
    public var cacheMB = 1024
    public var useCache = true
    public var ignoreLabel: Int32?
    /// The background class of U-Net's border weights (nil: the last class).
    public var backgroundClass: Int?
    public var inputScale: InputScaling = .unit

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
