import ArgumentParser
import Foundation
import SegKit

/// The options of one training run, shared by `segkit train` (which runs it)
/// and `segkit export-training` (which writes it out for Keras).
struct TrainOptions: ParsableArguments {
    @Option(help: "Validation data (same forms as --data).") var valData: String?
    @Option(parsing: .unconditional, help: "Fraction of --data held out for validation when no --val-data.") var valFraction: Double = 0.1
    @Option(parsing: .unconditional) var epochs: Int = 10
    @Option(parsing: .unconditional) var batch: Int = 16
    @Option var optimizer: TrainingConfig.OptimizerKind = .adam
    @Option(parsing: .unconditional) var lr: Float = 1e-3
    @Option(parsing: .unconditional) var momentum: Float = 0.9
    @Option(parsing: .unconditional) var weightDecay: Float = 0
    @Option var schedule: TrainingConfig.Schedule = .constant
    @Option var loss: SegmentationLoss = .ce
    @Option(parsing: .unconditional, help: "auto, or one weight per class (comma-separated).") var classWeights: String?
    @Option(parsing: .unconditional, help: "U-Net border weights W0,SIGMA (e.g. 10,5).") var borderWeight: String?
    @Option(help: "Comma-separated: flip, shift, elastic, scale:A-B (random rescale by A…B before the crop, e.g. scale:0.5-2.0).")
    var augment: String?
    @Option(parsing: .unconditional, help: "Train on random H,W crops (smaller images padded with ignored pixels); without it, whole images in size buckets.")
    var crop: String?
    @Option(parsing: .unconditional) var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Stop after this many epochs without a better val mIoU.") var patience: Int?
    @Option(parsing: .unconditional, help: "Memory for the frozen-encoder feature cache before it spills to disk.") var cacheMb: Int = 1024
    @Flag(help: "Do not cache frozen-encoder features.") var noCache = false
    @Option(parsing: .unconditional, help: "A class id that does not count in the loss or the metrics.") var ignoreLabel: Int32?

    func validate() throws {
        try require(epochs, in: 1...1_000_000, "--epochs")
        try require(batch, in: 1...65_536, "--batch")
        try require(lr, in: 1e-12...100, "--lr")
        try require(momentum, in: 0...0.9999, "--momentum")
        try require(weightDecay, in: 0...10, "--weight-decay")
        try require(valFraction, in: 0...0.99, "--val-fraction")
        if let patience { try require(patience, in: 1...1_000_000, "--patience") }
        try require(cacheMb, in: 0...(1 << 30), "--cache-mb")
        try checkSpec {
            if let classWeights, classWeights != "auto" { _ = try TrainingConfig.parseClassWeights(classWeights, classes: classWeights.split(separator: ",").count) }
            if let borderWeight { _ = try TrainingConfig.parseBorderWeight(borderWeight) }
            if let augment { _ = try TrainingConfig.parseAugment(augment) }
            if let crop { _ = try TrainingConfig.parseCrop(crop) }
        }
    }

    /// The run's settings for a segmenter of `classes` classes whose file is
    /// `file`, and notes to print about choices made for the user (class
    /// weights switching the loss to weighted cross-entropy).
    ///
    /// - Throws: `SpecError` for a class-weight list of the wrong length, `ValidationError` for a bad --input-scale.
    func config(classes: Int, file: SegmenterFile, data: DataOptions) throws -> (TrainingConfig, notes: [String]) {
        var config = TrainingConfig()
        var notes: [String] = []
        config.epochs = epochs
        config.batchSize = batch
        config.optimizer = optimizer
        config.learningRate = lr
        config.momentum = momentum
        config.weightDecay = weightDecay
        config.schedule = schedule
        config.loss = loss
        if let classWeights {
            let weights = try TrainingConfig.parseClassWeights(classWeights, classes: classes)
            config.classWeights = weights
            config.autoClassWeights = weights == nil
        }
        // Class weights act through the weighted losses: given with plain cross-entropy
        // they switch to weighted-ce; weighted-ce without weights uses auto.
        if classWeights != nil && loss == .ce {
            config.loss = .weightedCE
            notes.append("--class-weights: training with weighted cross-entropy (--loss weighted-ce)")
        }
        if loss == .weightedCE && classWeights == nil {
            config.autoClassWeights = true
            notes.append("--loss weighted-ce without --class-weights: weights from the training masks' class frequencies (auto)")
        }
        if let borderWeight { config.borderWeight = try TrainingConfig.parseBorderWeight(borderWeight) }
        if let augment { (config.augment, config.scaleRange) = try TrainingConfig.parseAugment(augment) }
        if let crop { config.crop = try TrainingConfig.parseCrop(crop) }
        config.seed = seed
        config.patience = patience
        config.cacheMB = cacheMb
        config.useCache = !noCache
        config.ignoreLabel = ignoreLabel
        config.inputScale = try file.inputScaling(override: data.inputScale)
        return (config, notes)
    }

    /// A run made ready: its settings (printing the notes `config` gives), the
    /// opened `--data` with the data layout's ignore label and background
    /// class, and the training/validation split: `--val-data`, or the last
    /// `--val-fraction` of `--data` held out (at least one sample).
    /// `trainPositions` are the training samples' positions in `loaded.samples`
    /// (what `export-training` names).
    ///
    /// - Throws: `DataError` for unreadable data, `ValidationError` when the hold-out leaves nothing to train on,
    ///   the errors of `config`.
    func prepare(file: SegmenterFile, data: DataOptions) throws
        -> (config: TrainingConfig, loaded: LoadedData, train: any LabelledImages, val: (any LabelledImages)?, trainPositions: [Int]) {
        let classes = file.classes
        var (config, notes) = try self.config(classes: classes, file: file, data: data)
        for note in notes { print(note) }
        let channels = inputChannels(of: file.model.graph)
        let loaded = try data.open(classes: classes, channels: channels, ignoreLabel: ignoreLabel)
        config.ignoreLabel = loaded.ignoreLabel
        config.backgroundClass = loaded.classes?.background ?? file.stored.background
        let all = loaded.samples
        if let valData {
            let val = try data.open(valData, classes: classes, channels: channels, ignoreLabel: loaded.ignoreLabel).samples
            return (config, loaded, all, val, Array(0..<all.count))
        }
        guard valFraction > 0 else { return (config, loaded, all, nil, Array(0..<all.count)) }
        let held = max(1, Int(Double(all.count) * valFraction))
        guard held < all.count else { throw ValidationError("--val-fraction \(valFraction) leaves no training samples of the \(all.count)") }
        return (config, loaded, all.first(all.count - held), all.selecting(Array((all.count - held)..<all.count)), Array(0..<(all.count - held)))
    }
}
