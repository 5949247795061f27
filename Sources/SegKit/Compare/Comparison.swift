import Foundation
import SegKitEngine
import SegKitKeras

/// One trained-and-evaluated contender at one labelled-set size and one seed.
public struct ContenderResult: Sendable {
    /// The recipe's name (or an added run's).
    public var contender: String
    /// N: the labelled training images it had (the first N of the training set).
    public var labels: Int
    /// The seed of the run: data order, augmentation, dropout and the recipe's new weights.
    public var seed: UInt64
    /// Scalars in the built segmenter's parameters.
    public var totalParameters: Int
    /// Of them, the scalars training updates (0 for a weightless heatmap).
    public var trainableParameters: Int
    /// Wall-clock training time in seconds, building the feature cache included (0 when nothing was trained).
    public var trainingSeconds: Double
    /// Training images processed per second (0 when nothing was trained).
    public var imagesPerSecond: Double
    /// The 1-based epoch whose weights were scored (the best validation mIoU), nil when nothing was trained.
    public var bestEpoch: Int?
    /// Why training ended: `epochs` (it ran all it was allowed), `patience` or `budget`; nil when nothing was trained.
    public var stopReason: Trainer.StopReason?
    /// Test pixel accuracy, 0…1 (`ConfusionMatrix.pixelAccuracy`).
    public var pixelAccuracy: Double
    /// Test mean IoU over the classes present, 0…1 (Long et al., FCN, §5).
    public var meanIoU: Double
    /// Test mean IoU leaving out the background class.
    public var meanIoUNoBackground: Double
    /// Test IoU per class id; nil where the class is in neither the truth nor the prediction.
    public var perClassIoU: [Double?]
    /// One record per epoch run: training loss, validation figures, learning rate, seconds.
    public var history: [EpochRecord]

    /// Epochs run (the last possibly cut short by the time budget).
    public var epochsRun: Int { history.count }
}

extension ContenderResult {
    /// A run trained elsewhere (Keras's `train.py` from `segkit export-training`,
    /// or an earlier `segkit train`), scored on a comparison's test set: its
    /// history is `history.csv`'s epochs (SegKit's columns), its training time
    /// their sum, its best epoch `Trainer.bestEpoch(in:)`'s.
    ///
    /// - Throws: `DataError` for an unreadable test sample, `EngineError` from the graph.
    public static func external(name: String, labels: Int, segmenter: Segmenter, history: [EpochRecord], classes: Int, test: any LabelledImages,
                                inputScale: InputScaling, batch: Int, ignoreLabel: Int32?, background: Int) throws -> ContenderResult {
        let matrix = try Evaluator(runner: segmenter, classes: classes, inputScale: inputScale, batchSize: batch, ignoreLabel: ignoreLabel)
            .evaluate(test).matrix
        let graph = segmenter.graph
        let seconds = history.reduce(0) { $0 + $1.seconds }
        return ContenderResult(contender: name, labels: labels, seed: 0, totalParameters: graph.parameters.reduce(0) { $0 + $1.value.count },
                               trainableParameters: graph.trainableParameters.reduce(0) { $0 + $1.value.count }, trainingSeconds: seconds,
                               imagesPerSecond: seconds > 0 ? Double(labels * history.count) / seconds : 0,
                               bestEpoch: Trainer.bestEpoch(in: history), stopReason: nil,
                               pixelAccuracy: matrix.pixelAccuracy, meanIoU: matrix.meanIoU, meanIoUNoBackground: matrix.meanIoU(excluding: background),
                               perClassIoU: matrix.perClassIoU, history: history)
    }
}

extension EpochRecord {
    /// The records of a history CSV with `csvHeader`'s columns (SegKit's `NAME.history.csv`, `train.py`'s `history.csv`).
    ///
    /// - Throws: `DataError.badFile` naming the line that is not a record.
    public static func parseCSV(_ text: String, file: String) throws -> [EpochRecord] {
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard lines.first?.trimmingCharacters(in: .whitespaces) == csvHeader else {
            throw DataError.badFile(file, "the first line is not '\(csvHeader)'")
        }
        lines.removeFirst()
        return try lines.enumerated().map { n, line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 7, let epoch = Int(f[0]), let loss = Float(f[1]), let lr = Float(f[5]), let seconds = Double(f[6]) else {
                throw DataError.badFile(file, "line \(n + 2): '\(line)' is not epoch,loss,val_loss,val_pixel_accuracy,val_mean_iou,learning_rate,seconds")
            }
            var r = EpochRecord(epoch: epoch, loss: loss, learningRate: lr, seconds: seconds)
            (r.valLoss, r.valPixelAccuracy, r.valMeanIoU) = (Float(f[2]), Double(f[3]), Double(f[4]))
            return r
        }
    }
}

/// The question SegKit exists to answer: with this classifier and these few
/// labelled images, how do frozen-encoder segmenters compare with a U-Net
/// trained from scratch, and from how many labels on does that change?
///
/// Every trained contender runs with `training`'s stopping rule (patience up to
/// `training.epochs`, or `training.budgetSeconds` of wall-clock time) and is
/// scored with its best validation epoch's weights; each (contender, N) is
/// trained once per seed `training.seed`, `training.seed + 1`, … (`seeds` runs).
public struct Comparison {
    /// The recipes tried on the classifier: built-in names or .yaml paths.
    public var recipes: [String]
    /// The from-scratch contender (a recipe without a classifier, e.g. unet-scratch); nil: none.
    public var baseline: String?
    /// The labelled-set sizes N; each run trains on the first N training samples.
    public var labelCounts: [Int]
    /// The settings of every run: optimizer, stopping rule, batch, input scaling, first seed.
    public var training: TrainingConfig
    /// The folder of the built-in recipes (`Recipes/`).
    public var recipeFolder: String
    /// `--set KEY=VALUE` overrides, applied to every contender's recipe.
    public var overrides: [String] = []
    /// Runs per (contender, N), each with its own seed. A contender with nothing
    /// to train (a heatmap) gives the same result for every seed and runs once.
    public var seeds = 1
    /// Loads the classifier; called once, at the first contender that needs it.
    /// Every contender is built on its own copy of that one import
    /// (`SegmenterBuilder` copies), so none shares weights or frozen flags.
    public var classifier: () throws -> KerasModel
    private let imported = ImportedClassifier()

    /// A comparison with one seed and no overrides.
    public init(recipes: [String], baseline: String?, labelCounts: [Int], training: TrainingConfig, recipeFolder: String,
                classifier: @escaping () throws -> KerasModel) {
        self.recipes = recipes
        self.baseline = baseline
        self.labelCounts = labelCounts
        self.training = training
        self.recipeFolder = recipeFolder
        self.classifier = classifier
    }

    /// The recipes, then the baseline: the order of the runs and of the table.
    public var contenders: [String] { recipes + (baseline.map { [$0] } ?? []) }

    /// The seeds of the runs: `training.seed` and the `seeds − 1` after it.
    public var runSeeds: [UInt64] { (0..<UInt64(max(seeds, 1))).map { training.seed &+ $0 } }

    /// Builds one contender: a recipe on the classifier, or the baseline from scratch;
    /// `seed` initialises the recipe's new weights.
    ///
    /// - Throws: `RecipeError` for a recipe that cannot be read or applied, `SpecError` for a malformed
    ///   `overrides` entry, `SurgeryError` for a classifier with several outputs and none chosen,
    ///   `EngineError` from assembling the graph, and what `classifier` throws (`KerasImportError`
    ///   or `HDF5Error` from `KerasModel.load`).
    public func build(_ name: String, classes: Int, channels: Int, seed: UInt64? = nil) throws -> BuiltSegmenter {
        var sets = overrides + (seed.map { ["seed=\($0)"] } ?? [])
        if name == baseline { sets += ["classes=\(classes)", "input_channels=\(channels)"] }
        let recipe = try Recipe.load(name, overrides: sets, recipeFolder: recipeFolder)
        return try SegmenterBuilder(recipe: recipe).build(classifier: name == baseline ? nil : try imported.graph(loading: classifier))
    }

    /// Trains every contender on the first N samples of `train` for every N and
    /// seed, validates on `validation` each epoch (the stopping rule and the
    /// weights kept) and scores on `test`. `progress` hears a line per run;
    /// `observer` sees the training itself; `keep` gets each built segmenter
    /// (after training, with its best weights).
    ///
    /// - Throws: what `build(_:classes:channels:seed:)` throws (`RecipeError`, `SpecError`,
    ///   `SurgeryError`, `EngineError`, `KerasImportError`, `HDF5Error`); `TrainingError`,
    ///   `DataError` or `EngineError` from a run.
    public func run(train: any LabelledImages, validation: any LabelledImages, test: any LabelledImages, classes: Int,
                    background: Int, progress: (String) -> Void, observer: TrainingObserver?,
                    keep: ((String, Int, UInt64, BuiltSegmenter) -> Void)? = nil) throws -> [ContenderResult] {
        var results: [ContenderResult] = []
        for n in labelCounts {
            let subset = train.first(n)
            for name in contenders {
                for seed in runSeeds {
                    let seg = try build(name, classes: classes, channels: train.channels, seed: seed)
                    let total = seg.graph.parameters.reduce(0) { $0 + $1.value.count }
                    let trainable = seg.graph.trainableParameters.reduce(0) { $0 + $1.value.count }
                    let seedNote = runSeeds.count > 1 && trainable > 0 ? ", seed \(seed)" : ""
                    progress("\(name) with \(n) labelled image(s)\(seedNote): \(trainable) of \(total) parameters to train")
                    var result = ContenderResult(contender: name, labels: n, seed: seed, totalParameters: total, trainableParameters: trainable,
                                                 trainingSeconds: 0, imagesPerSecond: 0, pixelAccuracy: 0, meanIoU: 0, meanIoUNoBackground: 0,
                                                 perClassIoU: [], history: [])
                    if trainable > 0 {
                        var config = training
                        config.seed = seed
                        config.restoreBest = true
                        let trainer = try Trainer(graph: seg.graph, classes: classes, config: config, runner: seg.runner)
                        let started = Date()
                        result.history = try trainer.fit(train: subset, val: validation, observer: observer, checkpoint: { _ in }, improved: { _ in })
                        result.trainingSeconds = Date().timeIntervalSince(started)
                        let seen = result.history.count * subset.count
                        result.imagesPerSecond = result.trainingSeconds > 0 ? Double(seen) / result.trainingSeconds : 0
                        result.bestEpoch = trainer.bestEpoch
                        result.stopReason = trainer.stopReason
                    }
                    let matrix = try Self.evaluate(seg, test, classes: classes, scale: training.inputScale, batch: training.batchSize,
                                                   ignoreLabel: training.ignoreLabel)
                    result.pixelAccuracy = matrix.pixelAccuracy
                    result.meanIoU = matrix.meanIoU
                    result.meanIoUNoBackground = matrix.meanIoU(excluding: background)
                    result.perClassIoU = matrix.perClassIoU
                    results.append(result)
                    keep?(name, n, seed, seg)
                    if trainable == 0 { break }   // nothing trained: every seed gives this result
                }
            }
        }
        return results
    }

    /// Test-set confusion matrix (each image at its own size).
    ///
    /// - Throws: `DataError` for an unreadable sample, `EngineError` from the graph.
    public static func evaluate(_ seg: BuiltSegmenter, _ data: any LabelledImages, classes: Int, scale: InputScaling, batch: Int,
                                ignoreLabel: Int32? = nil) throws -> ConfusionMatrix {
        try Evaluator(runner: seg.runner, classes: classes, inputScale: scale, batchSize: batch, ignoreLabel: ignoreLabel).evaluate(data).matrix
    }
}

/// The comparison's one import of the classifier, read when first needed.
private final class ImportedClassifier {
    private var graph: Graph?

    /// The graph `load` gives, loading it on the first call only.
    /// - Throws: what `load` throws (`KerasImportError`, `HDF5Error`).
    func graph(loading load: () throws -> KerasModel) throws -> Graph {
        if let graph { return graph }
        let g = try load().graph
        graph = g
        return g
    }
}
