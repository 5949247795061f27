import Foundation
import HDF5
import SegKitEngine

/// One line of the training history.
public struct EpochRecord: Sendable, Equatable {
    public var epoch: Int
    public var loss: Float
    public var valLoss: Float?
    public var valPixelAccuracy: Double?
    public var valMeanIoU: Double?
    public var learningRate: Float
    public var seconds: Double

    /// All fields at full precision, for checkpoints.
    var exactLine: String {
        [String(epoch), "\(loss)", valLoss.map { "\($0)" } ?? "", valPixelAccuracy.map { "\($0)" } ?? "",
         valMeanIoU.map { "\($0)" } ?? "", "\(learningRate)", "\(seconds)"].joined(separator: ",")
    }

    public static let csvHeader = "epoch,loss,val_loss,val_pixel_accuracy,val_mean_iou,learning_rate,seconds"
    public var csvLine: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6f", $0) } ?? "" }
        return "\(epoch),\(String(format: "%.6f", loss)),\(f(valLoss.map(Double.init))),\(f(valPixelAccuracy)),\(f(valMeanIoU)),\(learningRate),\(String(format: "%.2f", seconds))"
    }
}

/// What a training run reports as it goes (the CLI draws a Keras-like bar).
public protocol TrainingObserver: AnyObject {
    func trainingWillStart(epochs: Int, stepsPerEpoch: Int, cached: String?)
    func stepFinished(epoch: Int, step: Int, steps: Int, loss: Float, elapsed: Double)
    func epochFinished(_ record: EpochRecord, improved: Bool)
}

public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case nonFiniteLoss(epoch: Int, step: Int, loss: Float)
    case nothingToTrain
    case interrupted(epoch: Int, step: Int)
    case badState(String)

    public var description: String {
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
    public let graph: Graph
    public let classes: Int
    public let config: TrainingConfig
    public let optimizer: Optimizer
    public private(set) var history: [EpochRecord] = []
    /// Progress, restored by `restore(from:)`.
    public private(set) var epoch = 0
    public private(set) var step = 0
    private var runningLoss: Double = 0
    /// The best epoch's score: its validation mIoU, or without validation
    /// minus its training loss. −∞ before the first epoch, so that the first
    /// always improves on it (a loss above 1 scores below −1: starting at −1,
    /// a run whose loss stayed above 1 never wrote its best model).
    public private(set) var bestScore: Double = -.infinity
    private var epochsWithoutImprovement = 0
    public var shouldStop: () -> Bool = { false }
    public private(set) var usedCache = false

    /// Runs the graph at any image size (`SizeRule`): batches are padded to the
    /// size it runs at, masks laid out on its output grid.
    public let runner: Segmenter

    /// - Parameter runner: the segmenter's size rule (default: inferred from the graph's strides).
    /// - Throws: `TrainingError.nothingToTrain` when no parameter is trainable.
    public init(graph: Graph, classes: Int, config: TrainingConfig, runner: Segmenter? = nil) throws {
        self.graph = graph
        self.runner = runner ?? Segmenter(inferringFrom: graph)
        self.classes = classes
        self.config = config
        guard !graph.trainableParameters.isEmpty else { throw TrainingError.nothingToTrain }
        switch config.optimizer {
        case "sgd": optimizer = SGD(learningRate: config.learningRate, momentum: config.momentum, weightDecay: config.weightDecay)
        default: optimizer = Adam(learningRate: config.learningRate, weightDecay: config.weightDecay)
        }
    }

    var parameters: [Parameter] { graph.trainableParameters }

    /// A reproducible generator for (epoch, step, purpose).
    func generator(_ epoch: Int, _ step: Int, _ purpose: UInt64) -> SeededGenerator {
        var g = SeededGenerator(seed: config.seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(step) &* 0xC2B2_AE3D_27D4_EB4F) ^ purpose)
        _ = g.next()
        return g
    }

    func order(epoch: Int, count: Int) -> [Int] {
        var g = generator(epoch, 0, 1)
        return Array(0..<count).shuffled(using: &g)
    }

    /// A batch of scaled images (and its masks), augmented when configured.
    func batch(_ data: SegmentationDataset, _ indices: [Int], epoch: Int, step: Int, augment: Bool) throws -> (Tensor, [Int32]) {
        let per = data.pixelsPerImage, labels = data.labelsPerImage
        var pixels = [Float](), masks = [Int32]()
        pixels.reserveCapacity(per * indices.count)
        masks.reserveCapacity(labels * indices.count)
        var g = generator(epoch, step, 2)
        for i in indices {
            var p = Array(data.pixels[(i * per)..<((i + 1) * per)])
            var m = Array(data.masks[(i * labels)..<((i + 1) * labels)])
            if augment && !config.augment.isEmpty {
                Augmentation.apply(config.augment, pixels: &p, mask: &m, height: data.height, width: data.width, channels: data.channels, rng: &g)
            }
            pixels += data.isByteValued ? p.map(config.inputScale.apply) : p
            masks += m
        }
        let placement = try runner.sizeRule.placement(height: data.height, width: data.width)
        let x = try Tensor(shape: [indices.count, data.height, data.width, data.channels], scalars: pixels)
        return (placement.padded(x), placement.outputAligned(masks, count: indices.count, height: data.height, width: data.width, fill: ignoreLabel))
    }

    /// The label of pixels the loss and the metrics skip: `--ignore-label`, or −1
    /// (never a class id) for the padding `SizeRule` adds.
    var ignoreLabel: Int32 { config.ignoreLabel ?? -1 }

    /// Masks of `indices`, on the output grid.
    func alignedMasks(_ data: SegmentationDataset, _ indices: [Int]) throws -> [Int32] {
        let placement = try runner.sizeRule.placement(height: data.height, width: data.width)
        return placement.outputAligned(data.masks(of: indices), count: indices.count, height: data.height, width: data.width, fill: ignoreLabel)
    }

    /// Trains for the configured epochs (continuing a restored run), calling
    /// `checkpoint` after every epoch (and on interruption) and `improved` when
    /// the epoch's score (`bestScore`) beats the best so far.
    public func fit(train: SegmentationDataset, val: SegmentationDataset?, observer: TrainingObserver?,
                    checkpoint: (Trainer) throws -> Void, improved: (Trainer) throws -> Void) throws -> [EpochRecord] {
        let steps = (train.count + config.batchSize - 1) / config.batchSize
        var classWeights = config.classWeights
        if config.autoClassWeights { classWeights = balancedClassWeights(train.masks, classes: classes, ignoreLabel: config.ignoreLabel) }
        let background = Int32(classes - 1)
        let borderMaps: [[Float]]? = config.borderWeight.map { bw in
            (0..<train.count).map { i in
                borderWeightMap(mask: Array(train.masks[(i * train.labelsPerImage)..<((i + 1) * train.labelsPerImage)]),
                                height: train.height, width: train.width, background: background,
                                classWeights: classWeights ?? [Float](repeating: 1, count: classes), w0: bw.w0, sigma: bw.sigma)
            }
        }
        // The frozen-encoder feature cache, when it is exact.
        var cache: FeatureCache?
        if config.useCache, config.augment.isEmpty, let boundary = FeatureCache.boundary(of: graph) {
            cache = try FeatureCache(graph: graph, nodes: boundary, samples: train.count, batches: { b in
                let range = (b * self.config.batchSize)..<min((b + 1) * self.config.batchSize, train.count)
                return (range, try self.batch(train, Array(range), epoch: 0, step: 0, augment: false).0)
            }, batchCount: steps, limitBytes: config.cacheMB << 20)
        }
        usedCache = cache != nil
        observer?.trainingWillStart(epochs: config.epochs, stepsPerEpoch: steps,
                                    cached: cache.map { $0.isSpilled ? "spilled to disk" : "in memory" })
        let dropouts = graph.layers.compactMap { $0 as? Dropout }
        while epoch < config.epochs {
            let started = Date()
            optimizer.learningRate = config.learningRate(epoch: epoch)
            let order = order(epoch: epoch, count: train.count)
            while step < steps {
                if shouldStop() {
                    try checkpoint(self)
                    throw TrainingError.interrupted(epoch: epoch + 1, step: step)
                }
                let indices = Array(order[(step * config.batchSize)..<min((step + 1) * config.batchSize, train.count)])
                for (k, d) in dropouts.enumerated() { d.reseed(config.seed ^ UInt64(epoch * 1_000_003 + step * 101 + k)) }
                let labels: [Int32]
                let pass: ForwardPass
                if let cache {
                    labels = try alignedMasks(train, indices)
                    pass = try graph.forward([], mode: .training, given: try cache.values(for: indices))
                } else {
                    let (x, m) = try batch(train, indices, epoch: epoch, step: step, augment: true)
                    labels = m
                    pass = try graph.forward([x], mode: .training)
                }
                let logits = pass.outputs(of: graph)[0]
                let weights = try borderMaps.map { maps in
                    try runner.sizeRule.placement(height: train.height, width: train.width)
                        .outputAligned(indices.flatMap { maps[$0] }, count: indices.count, height: train.height, width: train.width, fill: 0)
                }
                let (loss, grad) = try config.loss.evaluate(logits: logits, labels: labels, classWeights: classWeights,
                                                            pixelWeights: weights, ignoreLabel: ignoreLabel)
                guard loss.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch + 1, step: step + 1, loss: loss) }
                graph.zeroGradients()
                _ = try graph.backward(pass, outputGradients: [grad])
                optimizer.step(parameters)
                runningLoss += Double(loss)
                step += 1
                observer?.stepFinished(epoch: epoch + 1, step: step, steps: steps, loss: Float(runningLoss / Double(step)),
                                       elapsed: Date().timeIntervalSince(started))
            }
            var record = EpochRecord(epoch: epoch + 1, loss: Float(runningLoss / Double(max(steps, 1))), learningRate: optimizer.learningRate,
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
            let score = record.valMeanIoU ?? -Double(record.loss)
            let better = score > bestScore
            if better { bestScore = score; epochsWithoutImprovement = 0; try improved(self) } else { epochsWithoutImprovement += 1 }
            try checkpoint(self)
            observer?.epochFinished(record, improved: better)
            if let patience = config.patience, epochsWithoutImprovement >= patience { break }
        }
        return history
    }

    /// Confusion matrix and mean cross-entropy on `data` (inference mode, any size).
    public func evaluate(_ data: SegmentationDataset) throws -> (ConfusionMatrix, Float) {
        var matrix = ConfusionMatrix(classes: classes, ignoreLabel: ignoreLabel)
        var loss: Double = 0, batches = 0
        for start in stride(from: 0, to: data.count, by: config.batchSize) {
            let indices = Array(start..<min(start + config.batchSize, data.count))
            let (x, m) = try batch(data, indices, epoch: 0, step: 0, augment: false)
            let y = try graph.forward([x]).outputs(of: graph)[0]
            matrix.add(scores: y.scalars, labels: m)
            loss += Double(try SoftmaxCrossEntropy(ignoreLabel: ignoreLabel)(logits: y, labels: m).loss)
            batches += 1
        }
        return (matrix, Float(loss / Double(max(batches, 1))))
    }

    // MARK: state for checkpoints

    /// Writes optimizer state and progress to an HDF5 file (an entry of the checkpoint archive).
    public func saveState(to path: String) throws {
        let root = try HDF5File(creating: path).root
        let names = parameters.map(\.name)
        try root.writeStringsAttribute("parameters", names)
        try root.writeDataset("progress", shape: [4], int64s: [Int64(epoch), Int64(step), Int64(optimizer.iterations), Int64(epochsWithoutImprovement)])
        try root.writeDataset("scalars", shape: [2], floats: [Float(runningLoss), Float(bestScore)])
        // Exact values (Swift's round-trip formatting), so a resumed history equals an uninterrupted one.
        try root.writeStringAttribute("history", history.map(\.exactLine).joined(separator: "\n"))
        try root.writeStringAttribute("optimizer", config.optimizer)
        let g = try root.createGroup("optimizer")
        for (key, arrays) in optimizer.state {
            let k = try g.createGroup(key)
            for (i, a) in arrays.enumerated() { try k.writeDataset(String(i), shape: [a.count], floats: a) }
        }
    }

    /// Continues from a checkpoint's state: epoch, step, optimizer, best score, history.
    public func restore(from file: HDF5File) throws {
        let root = try file.root
        guard try root.stringAttribute("optimizer") == config.optimizer else {
            throw TrainingError.badState("the checkpoint was trained with \(try root.stringAttribute("optimizer")), not \(config.optimizer)")
        }
        guard try root.stringsAttribute("parameters").count == parameters.count else {
            throw TrainingError.badState("the checkpoint has \(try root.stringsAttribute("parameters").count) trainable parameters, this segmenter \(parameters.count)")
        }
        let progress = try root.dataset("progress").readInt64s()
        let scalars = try root.dataset("scalars").readFloats()
        guard progress.count == 4, scalars.count == 2 else {
            throw TrainingError.badState("the checkpoint's progress holds \(progress.count) values and its scalars \(scalars.count), expected 4 and 2")
        }
        (epoch, step, optimizer.iterations, epochsWithoutImprovement) = (Int(progress[0]), Int(progress[1]), Int(progress[2]), Int(progress[3]))
        runningLoss = Double(scalars[0])
        bestScore = Double(scalars[1])
        var state: [String: [[Float]]] = [:]
        let g = try root.group("optimizer")
        for key in try g.childNames() {
            let k = try g.group(key)
            let arrays = try (0..<(try k.childNames().count)).map { try k.dataset(String($0)).readFloats() }
            guard arrays.count == parameters.count else {
                throw TrainingError.badState("the checkpoint's optimizer state '\(key)' has \(arrays.count) arrays, expected \(parameters.count)")
            }
            for (a, p) in zip(arrays, parameters) where a.count != p.value.count {
                throw TrainingError.badState("the checkpoint's optimizer state '\(key)' has \(a.count) values for \(p.name), expected \(p.value.count)")
            }
            state[key] = arrays
        }
        optimizer.state = state
        history = try root.stringAttribute("history").split(separator: "\n").map { line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return EpochRecord(epoch: Int(f[0]) ?? 0, loss: Float(f[1]) ?? 0, valLoss: Float(f[2]), valPixelAccuracy: Double(f[3]),
                               valMeanIoU: Double(f[4]), learningRate: Float(f[5]) ?? 0, seconds: Double(f[6]) ?? 0)
        }
    }
}
