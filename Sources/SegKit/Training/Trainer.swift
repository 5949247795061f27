import SegKitSupport
import Foundation
import HDF5
import SegKitEngine

/// One line of the training history.
public struct EpochRecord: Sendable, Equatable {
    /// The 1-based epoch this record is of.
    public var epoch: Int
    /// The epoch's mean training loss over its steps.
    public var loss: Float
    /// Mean cross-entropy on the validation set; nil without one.
    public var valLoss: Float?
    /// Fraction of counted validation pixels classified right, in [0, 1]; nil without validation.
    public var valPixelAccuracy: Double?
    /// Mean over classes of intersection over union on the validation set, in [0, 1]; nil without validation.
    public var valMeanIoU: Double?
    /// The learning rate the epoch ran at (after the schedule).
    public var learningRate: Float
    /// Wall-clock seconds of the epoch's training steps (validation, run after, not included).
    public var seconds: Double

    /// All fields at full precision, for checkpoints.
    var exactLine: String {
        [String(epoch), "\(loss)", valLoss.map { "\($0)" } ?? "", valPixelAccuracy.map { "\($0)" } ?? "",
         valMeanIoU.map { "\($0)" } ?? "", "\(learningRate)", "\(seconds)"].joined(separator: ",")
    }

    /// The header of `history.csv` (Keras's CSVLogger's column names for these fields).
    public static let csvHeader = "epoch,loss,val_loss,val_pixel_accuracy,val_mean_iou,learning_rate,seconds"
    /// The record as a `history.csv` line: six decimals, seconds to two; empty fields for missing values.
    public var csvLine: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6f", $0) } ?? "" }
        return "\(epoch),\(String(format: "%.6f", loss)),\(f(valLoss.map(Double.init))),\(f(valPixelAccuracy)),\(f(valMeanIoU)),\(learningRate),\(String(format: "%.2f", seconds))"
    }
}

/// What a training run reports as it goes (the CLI draws a Keras-like bar).
public protocol TrainingObserver: AnyObject {
    /// `cached` says what happens to the frozen encoder's features ("cached (in memory)", "not cached: why"), nil when there is nothing to say.
    func trainingWillStart(epochs: Int, stepsPerEpoch: Int, cached: String?)
    func stepFinished(epoch: Int, step: Int, steps: Int, loss: Float, elapsed: Double)
    func epochFinished(_ record: EpochRecord, improved: Bool)
}

/// Why a training run stopped without finishing.
public enum TrainingError: SegKitError, Equatable {
    /// The loss became NaN or infinite at this 1-based epoch and step.
    case nonFiniteLoss(epoch: Int, step: Int, loss: Float)
    /// The segmenter has no trainable parameter.
    case nothingToTrain
    /// `shouldStop` asked to stop; the checkpoint was written first.
    case interrupted(epoch: Int, step: Int)
    /// A checkpoint's state that is damaged or does not fit this run (what, in the message).
    case badState(String)

    /// The message printed to the user, with what to do next.
    public var errorDescription: String? {
        switch self {
        case let .nonFiniteLoss(epoch, step, loss):
            return "the loss became \(loss) at epoch \(epoch), step \(step); stopped, the last good checkpoint is kept (try a lower --lr)"
        case .nothingToTrain: return "this segmenter has no trainable parameters (a heatmap needs no training; evaluate it directly)"
        case let .interrupted(epoch, step): return "interrupted at epoch \(epoch), step \(step); the checkpoint was saved"
        case let .badState(m): return "cannot resume: \(m)"
        }
    }
}

/// Trains a segmenter's unfrozen parameters on a labelled set: only they are
/// updated, frozen BatchNormalization stays in inference mode, and no backward
/// work reaches the frozen encoder. Deterministic for a seed: the data order,
/// augmentation and dropout masks of every step are derived from (seed, epoch, step).
public final class Trainer {
    /// The segmenter trained: NHWC images in, logits `[N, H, W, classes]` out.
    public let graph: Graph
    /// Number of classes (the logits' channels).
    public let classes: Int
    /// The run's settings.
    public let config: TrainingConfig
    /// SGD or Adam, made from `config`; its state is checkpointed by `saveState(to:)`.
    public let optimizer: Optimizer
    /// One record per finished epoch (restored ones included).
    public private(set) var history: [EpochRecord] = []
    /// Progress, restored by `restore(from:)`.
    public private(set) var epoch = 0
    /// Steps done in the current epoch (0 between epochs).
    public private(set) var step = 0
    private var runningLoss: Double = 0
    /// The best epoch's score: its validation mIoU, or without validation
    /// minus its training loss. −∞ before the first epoch, so that the first
    /// always improves on it (a loss above 1 scores below −1: starting at −1,
    /// a run whose loss stayed above 1 never wrote its best model).
    public private(set) var bestScore: Double = -.infinity
    private var epochsWithoutImprovement = 0
    /// Why the last `fit` ended.
    public enum StopReason: String, Sendable {
        /// It ran every epoch it was given.
        case epochs
        /// `patience` epochs passed without a better score.
        case patience
        /// `budgetSeconds` were spent.
        case budget
    }
    /// Why the last `fit` ended.
    public private(set) var stopReason: StopReason = .epochs
    /// The best epoch's weights (every parameter of a trainable layer, BatchNormalization's
    /// moving statistics included), kept when `config.restoreBest`.
    private var bestWeights: [Tensor]?
    /// Polled before every step: true makes `fit` checkpoint and throw `TrainingError.interrupted` (the CLI's Ctrl-C).
    public var shouldStop: () -> Bool = { false }
    /// Whether the last `fit` trained from the frozen encoder's cached features.
    public private(set) var usedCache = false
    /// Why the feature cache was not used though asked for (nil: it was, or was not asked for).
    public private(set) var cacheNote: String?

    /// Runs the graph at any image size (`SizeRule`): batches are padded to the
    /// size it runs at, masks laid out on its output grid.
    public let runner: Segmenter

    /// A trainer for `graph`'s trainable parameters with the optimizer `config` names.
    /// - Parameter runner: the segmenter's size rule (default: inferred from the graph's strides).
    /// - Throws: `TrainingError.nothingToTrain` when no parameter is trainable.
    public init(graph: Graph, classes: Int, config: TrainingConfig, runner: Segmenter? = nil) throws {
        self.graph = graph
        self.runner = runner ?? Segmenter(inferringFrom: graph)
        self.classes = classes
        self.config = config
        guard !graph.trainableParameters.isEmpty else { throw TrainingError.nothingToTrain }
        switch config.optimizer {
        case .sgd: optimizer = SGD(learningRate: config.learningRate, momentum: config.momentum, weightDecay: config.weightDecay)
        case .adam: optimizer = Adam(learningRate: config.learningRate, weightDecay: config.weightDecay)
        }
    }

    var parameters: [Parameter] { graph.trainableParameters }

    /// What training changes: the parameters of trainable layers, statistics included.
    private var changingParameters: [Parameter] { graph.layers.filter(\.isTrainable).flatMap(\.parameters) }

    /// The 1-based epoch with the best score in `history` (the first of equals), nil before any epoch.
    public var bestEpoch: Int? { Self.bestEpoch(in: history) }

    /// The class weights a run uses: `config.classWeights`, or with `autoClassWeights`
    /// the balanced weights of `train`'s masks (`balancedClassWeights`).
    ///
    /// - Throws: `DataError` for a mask that cannot be read.
    public static func classWeights(_ config: TrainingConfig, train: any LabelledImages, classes: Int) throws -> [Float]? {
        guard config.autoClassWeights else { return config.classWeights }
        var counts = [Int](repeating: 0, count: classes)
        for i in 0..<train.count { countClasses(try train.mask(i), into: &counts, ignoreLabel: config.ignoreLabel) }
        return balancedClassWeights(counts: counts)
    }

    /// The 1-based epoch of the best score (`score`) in `history`, the first of equals; nil for no epochs.
    public static func bestEpoch(in history: [EpochRecord]) -> Int? {
        var best: (epoch: Int, score: Double)?
        for r in history {
            let score = Self.score(r)
            if best == nil || score > best!.score { best = (r.epoch, score) }
        }
        return best?.epoch
    }

    /// An epoch's score: its validation mIoU, or without validation minus its training loss.
    static func score(_ record: EpochRecord) -> Double { record.valMeanIoU ?? -Double(record.loss) }

    /// The label of pixels the loss and the metrics skip: `--ignore-label`, or −1
    /// (never a class id) for the padding `SizeRule` and `--crop` add.
    var ignoreLabel: Int32 { config.ignoreLabel ?? -1 }

    /// A batch's images as the graph takes them: padded to the size it runs at
    /// (its masks go through `alignedLabels`).
    func paddedImages(_ batch: SampleBatch) throws -> Tensor {
        let placement = try runner.sizeRule.placement(height: batch.height, width: batch.width)
        return placement.padded(try Tensor(shape: [batch.count, batch.height, batch.width, batch.channels], scalars: batch.pixels))
    }

    /// Trains for the configured epochs (continuing a restored run), calling
    /// `checkpoint` after every epoch (and on interruption) and `improved` when
    /// the epoch's score (`bestScore`) beats the best so far. Stops early after
    /// `config.patience` epochs without a better score or once
    /// `config.budgetSeconds` are spent (`stopReason` says which); with
    /// `config.restoreBest` the best epoch's weights are put back at the end
    /// (those of this call's epochs: a resumed run's earlier best is not kept in
    /// memory). Samples of any sizes: see `TrainingBatches` for cropping and size buckets.
    /// Returns `history`.
    ///
    /// - Throws: `TrainingError.nonFiniteLoss`, `.interrupted`, or `.badState` when a
    ///   restored step does not fit this data's epoch; `DataError` for a sample that
    ///   cannot be read; `EngineError` from the graph, the loss or the feature
    ///   cache; `HDF5Error` or `FileError` from a spilled feature cache's scratch
    ///   file; whatever `checkpoint` and `improved` throw (`HDF5Error`,
    ///   `FileError` writing the files).
    public func fit(train: any LabelledImages, val: (any LabelledImages)?, observer: TrainingObserver?,
                    checkpoint: (Trainer) throws -> Void, improved: (Trainer) throws -> Void) throws -> [EpochRecord] {
        let fitStarted = Date()
        let pipeline = TrainingBatches(data: train, config: config, ignoreLabel: ignoreLabel)
        let steps = pipeline.plan(epoch: 0).count
        guard step < steps else {
            throw TrainingError.badState("the checkpoint stopped at step \(step) of an epoch, and an epoch of this data has \(steps) steps (resume with the data it was trained on)")
        }
        let classWeights = try Self.classWeights(config, train: train, classes: classes)
        let background = Int32(config.backgroundClass ?? classes - 1)
        let trainingStep = TrainingStep(graph: graph, optimizer: optimizer, parameters: parameters, lossName: "loss (\(config.loss.rawValue))")
        // The frozen-encoder feature cache, when it is exact (every step sees each
        // sample as it is: no augmentation, crop or rescale), or crops alone
        // (`CachedCrops`: windows of the whole images' cached maps).
        var cache: FeatureCache?
        var crops: CachedCrops?
        let deterministic = config.augment.isEmpty && config.crop == nil && config.scaleRange == nil
        let onlyCrops = config.augment.isEmpty && config.scaleRange == nil && config.crop != nil
        cacheNote = nil
        if config.useCache, deterministic || onlyCrops, let boundary = FeatureCache.boundary(of: graph) {
            if let crop = config.crop {
                do { crops = try CachedCrops(graph: graph, runner: runner, nodes: boundary, data: train, crop: crop) } catch {
                    cacheNote = "not cached: \(error)"
                }
            }
            if deterministic || crops != nil {
                var g = SeededGenerator(seed: 0)
                let groups = TrainingBatches.buckets(train, batch: config.batchSize, shuffle: &g)
                let pixels = (0..<train.count).reduce(0) { let s = train.size(of: $1); return $0 + s.height * s.width }
                let prefetch = Prefetcher(count: groups.count) { b in try pipeline.assemble(groups[b], epoch: 0, step: 0, augment: false) }
                defer { prefetch.cancel() }
                cache = try FeatureCache(graph: graph, nodes: boundary, batches: groups, totalInputPixels: pixels,
                                         input: { b in try self.paddedImages(try prefetch.take(b)) }, limitBytes: config.cacheMB << 20)
            }
        }
        usedCache = cache != nil
        observer?.trainingWillStart(epochs: config.epochs, stepsPerEpoch: steps,
                                    cached: cache.map { ($0.isSpilled ? "cached (spilled to disk)" : "cached (in memory)")
                                        + (crops != nil ? ", crops taken as windows of the whole images' maps" : "") } ?? cacheNote)
        let dropouts = graph.layers.compactMap { $0 as? Dropout }
        stopReason = .epochs
        var outOfTime = false
        while epoch < config.epochs {
            let started = Date()
            optimizer.learningRate = config.learningRate(epoch: epoch)
            let plan = pipeline.plan(epoch: epoch)
            let first = step, currentEpoch = epoch
            // Batches decoded and transformed ahead of the compute (not needed from the cache).
            let prefetch = cache == nil
                ? Prefetcher(count: steps - first) { k in try pipeline.assemble(plan[first + k], epoch: currentEpoch, step: first + k, augment: true) }
                : nil
            defer { prefetch?.cancel() }
            while step < steps {
                if shouldStop() {
                    try checkpoint(self)
                    throw TrainingError.interrupted(epoch: epoch + 1, step: step)
                }
                for (k, d) in dropouts.enumerated() { d.reseed(config.seed ^ UInt64(epoch * 1_000_003 + step * 101 + k)) }
                let labels: [Int32], weights: [Float]?
                let pass: ForwardPass
                if let cache {
                    let indices = plan[step]
                    var masks: [Int32] = [], windows: [[Int: (Int, Int)]] = []
                    for (k, i) in indices.enumerated() {
                        let size = train.size(of: i), mask = try train.mask(i)
                        guard let crops else { masks += mask; continue }
                        var g = pipeline.generator(epoch: epoch, step: step, position: k, purpose: 3)
                        let (row, col, at) = crops.choose(size: size, rng: &g)
                        windows.append(at)
                        // The crop's mask; pixels outside the image (an origin in the padding) are ignored.
                        for r in row..<(row + crops.crop.height) {
                            for c in col..<(col + crops.crop.width) {
                                masks.append(r >= 0 && r < size.height && c >= 0 && c < size.width ? mask[r * size.width + c] : ignoreLabel)
                            }
                        }
                    }
                    let size = crops?.crop ?? train.size(of: indices[0])
                    let batch = SampleBatch(count: indices.count, height: size.height, width: size.width, channels: train.channels,
                                            pixels: [], masks: masks)
                    let aligned = try alignedLabels(batch, background: background, classWeights: classWeights)
                    (labels, weights) = (aligned.labels, aligned.weights)
                    let given = try crops.map { try cache.windows(for: indices, at: windows, size: $0.windowSize) } ?? cache.values(for: indices)
                    pass = try graph.forward([], mode: .training, given: given)
                } else {
                    let batch = try prefetch!.take(step - first)
                    let aligned = try alignedLabels(batch, background: background, classWeights: classWeights)
                    (labels, weights) = (aligned.labels, aligned.weights)
                    pass = try graph.forward([try paddedImages(batch)], mode: .training)
                }
                let loss = try trainingStep(pass, loss: { logits in
                    try config.loss.evaluate(logits: logits, labels: labels, classWeights: lossClassWeights(classWeights),
                                             pixelWeights: weights, ignoreLabel: ignoreLabel)
                }, accept: { loss in
                    guard loss.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch + 1, step: step + 1, loss: loss) }
                })
                runningLoss += Double(loss)
                step += 1
                observer?.stepFinished(epoch: epoch + 1, step: step, steps: steps, loss: Float(runningLoss / Double(step)),
                                       elapsed: Date().timeIntervalSince(started))
                if let budget = config.budgetSeconds, Date().timeIntervalSince(fitStarted) >= budget {
                    outOfTime = true
                    break
                }
            }
            // The mean over the steps run (all of them, unless the budget ended the epoch early).
            var record = EpochRecord(epoch: epoch + 1, loss: Float(runningLoss / Double(max(step, 1))), learningRate: optimizer.learningRate,
                                     seconds: Date().timeIntervalSince(started))
            if let val {
                let (m, l) = try evaluate(val)
                record.valLoss = l
                record.valPixelAccuracy = m.pixelAccuracy
                record.valMeanIoU = m.meanIoU
            }
            history.append(record)
            epoch += 1
            step = 0
            runningLoss = 0
            let score = Self.score(record)
            let better = score > bestScore
            if better {
                bestScore = score
                epochsWithoutImprovement = 0
                if config.restoreBest { bestWeights = changingParameters.map(\.value) }
                try improved(self)
            } else {
                epochsWithoutImprovement += 1
            }
            try checkpoint(self)
            observer?.epochFinished(record, improved: better)
            if outOfTime { stopReason = .budget; break }
            if let patience = config.patience, epochsWithoutImprovement >= patience { stopReason = .patience; break }
        }
        if config.restoreBest, let bestWeights {
            for (p, w) in zip(changingParameters, bestWeights) { p.value = w }
        }
        return history
    }

    /// A batch's masks on the output grid, with U-Net's border weights (computed
    /// on the masks as the batch has them, after cropping and flips) when configured.
    private func alignedLabels(_ batch: SampleBatch, background: Int32, classWeights: [Float]?) throws -> (labels: [Int32], weights: [Float]?) {
        let weights: [Float]? = config.borderWeight.map { bw in
            let per = batch.height * batch.width
            return (0..<batch.count).flatMap { i in
                borderWeightMap(mask: Array(batch.masks[(i * per)..<((i + 1) * per)]), height: batch.height, width: batch.width, background: background,
                                classWeights: classWeights ?? [Float](repeating: 1, count: classes), w0: bw.w0, sigma: bw.sigma,
                                ignoreLabel: ignoreLabel)
            }
        }
        let placement = try runner.sizeRule.placement(height: batch.height, width: batch.width)
        return (placement.outputAligned(batch.masks, count: batch.count, height: batch.height, width: batch.width, fill: ignoreLabel),
                weights.map { placement.outputAligned($0, count: batch.count, height: batch.height, width: batch.width, fill: 0) })
    }

    /// The training loss of samples `indices` of `data` as one batch with the
    /// current weights, in inference mode (no dropout, BatchNormalization on its
    /// moving statistics), whole images without augmentation or cropping: the
    /// figure `segkit export-training` stores for the Keras script to check
    /// its own loss against. Uses `config.classWeights` as given (resolve
    /// `autoClassWeights` first) and the border weights when configured.
    ///
    /// - Throws: `DataError` when the samples differ in size or cannot be read, `EngineError` from the graph.
    public func inferenceLoss(_ indices: [Int], of data: any LabelledImages) throws -> Float {
        let batch = try TrainingBatches(data: data, config: config, ignoreLabel: ignoreLabel).assemble(indices, epoch: 0, step: 0, augment: false)
        let aligned = try alignedLabels(batch, background: Int32(config.backgroundClass ?? classes - 1), classWeights: config.classWeights)
        let pass = try graph.forward([try paddedImages(batch)], mode: .inference)
        return try config.loss.evaluate(logits: pass.outputs(of: graph)[0], labels: aligned.labels, classWeights: lossClassWeights(config.classWeights),
                                        pixelWeights: aligned.weights, ignoreLabel: ignoreLabel).loss
    }

    /// The class weights the loss applies: none when U-Net's border map is on,
    /// because that map already holds them (w(x) = w_c(x) + border term, eq. 2).
    private func lossClassWeights(_ weights: [Float]?) -> [Float]? { config.borderWeight == nil ? weights : nil }

    /// Confusion matrix and mean cross-entropy on `data` (inference mode, each image at its own size).
    ///
    /// - Throws: `DataError` for an unreadable sample, `EngineError` from the graph.
    public func evaluate(_ data: any LabelledImages) throws -> (ConfusionMatrix, Float) {
        let result = try Evaluator(runner: runner, classes: classes, inputScale: config.inputScale, batchSize: config.batchSize,
                                   ignoreLabel: ignoreLabel).evaluate(data)
        return (result.matrix, result.loss)
    }

    // MARK: state for checkpoints

    /// Writes optimizer state and progress to an HDF5 file (an entry of the checkpoint archive).
    ///
    /// - Throws: `HDF5Error` when the file cannot be written.
    public func saveState(to path: String) throws {
        try TrainingState(parameterNames: parameters.map(\.name), optimizer: config.optimizer.rawValue,
                          progress: [Int64(epoch), Int64(step), Int64(optimizer.iterations), Int64(epochsWithoutImprovement)],
                          runningLoss: Float(runningLoss), bestScore: Float(bestScore), history: history, optimizerState: optimizer.state)
            .write(to: path)
    }

    /// Continues from a checkpoint's state: epoch, step, optimizer, best score, history.
    ///
    /// - Throws: `TrainingError.badState` naming what does not fit this run
    ///   (another optimizer, another segmenter) or what is damaged; `HDF5Error`
    ///   from reading the file.
    public func restore(from file: HDF5File) throws {
        let state = try TrainingState.read(from: file)
        guard state.optimizer == config.optimizer.rawValue else {
            throw TrainingError.badState("the checkpoint was trained with \(state.optimizer), not \(config.optimizer)")
        }
        guard state.parameterNames.count == parameters.count else {
            throw TrainingError.badState("the checkpoint has \(state.parameterNames.count) trainable parameters, this segmenter \(parameters.count)")
        }
        for (key, arrays) in state.optimizerState {
            guard arrays.count == parameters.count else {
                throw TrainingError.badState("the checkpoint's optimizer state '\(key)' has \(arrays.count) arrays, expected \(parameters.count)")
            }
            for (a, p) in zip(arrays, parameters) where a.count != p.value.count {
                throw TrainingError.badState("the checkpoint's optimizer state '\(key)' has \(a.count) values for \(p.name), expected \(p.value.count)")
            }
        }
        let p = state.progress
        (epoch, step, optimizer.iterations, epochsWithoutImprovement) = (Int(p[0]), Int(p[1]), Int(p[2]), Int(p[3]))
        runningLoss = Double(state.runningLoss)
        bestScore = Double(state.bestScore)
        optimizer.state = state.optimizerState
        history = state.history
    }
}
