import Foundation
import SegKitEngine
import SegKitKeras

/// One trained-and-evaluated contender at one labelled-set size.
public struct ContenderResult: Sendable {
    public var contender: String
    public var labels: Int
    public var totalParameters: Int
    public var trainableParameters: Int
    public var trainingSeconds: Double
    /// Training images processed per second (0 when nothing was trained).
    public var imagesPerSecond: Double
    public var pixelAccuracy: Double
    public var meanIoU: Double
    public var meanIoUNoBackground: Double
    public var perClassIoU: [Double?]
    public var history: [EpochRecord]
}

/// The question SegKit exists to answer: with this classifier and these few
/// labelled images, how do frozen-encoder segmenters compare with a U-Net
/// trained from scratch, and from how many labels on does that change?
public struct Comparison {
    public var recipes: [String]
    public var baseline: String?
    public var labelCounts: [Int]
    public var training: TrainingConfig
    public var recipeFolder: String
    public var overrides: [String] = []
    /// Loads a fresh copy of the classifier for every contender (none shares weights).
    public var classifier: () throws -> KerasModel

    public init(recipes: [String], baseline: String?, labelCounts: [Int], training: TrainingConfig, recipeFolder: String,
                classifier: @escaping () throws -> KerasModel) {
        self.recipes = recipes
        self.baseline = baseline
        self.labelCounts = labelCounts
        self.training = training
        self.recipeFolder = recipeFolder
        self.classifier = classifier
    }

    public var contenders: [String] { recipes + (baseline.map { [$0] } ?? []) }

    /// Builds one contender: a recipe on the classifier, or the baseline from scratch.
    public func build(_ name: String, classes: Int, channels: Int) throws -> BuiltSegmenter {
        var sets = overrides
        if name == baseline { sets += ["classes=\(classes)", "input_channels=\(channels)"] }
        let recipe = try Recipe.load(name, overrides: sets, recipeFolder: recipeFolder)
        return try SegmenterBuilder(recipe: recipe).build(classifier: name == baseline ? nil : try classifier().graph)
    }

    /// Trains every contender on the first N samples of `train` for every N,
    /// validates on `validation` each epoch and scores on `test`. `progress`
    /// hears a line per step of the plan; `observer` sees the training itself.
    public func run(train: any LabelledImages, validation: any LabelledImages, test: any LabelledImages, classes: Int,
                    background: Int, progress: (String) -> Void, observer: TrainingObserver?,
                    keep: ((String, Int, BuiltSegmenter) -> Void)? = nil) throws -> [ContenderResult] {
        var results: [ContenderResult] = []
        for n in labelCounts {
            let subset = train.first(n)
            for name in contenders {
                let seg = try build(name, classes: classes, channels: train.channels)
                let total = seg.graph.parameters.reduce(0) { $0 + $1.value.count }
                let trainable = seg.graph.trainableParameters.reduce(0) { $0 + $1.value.count }
                progress("\(name) with \(n) labelled image(s): \(trainable) of \(total) parameters to train")
                var seconds = 0.0, history: [EpochRecord] = []
                if trainable > 0 {
                    let trainer = try Trainer(graph: seg.graph, classes: classes, config: training, runner: seg.runner)
                    let started = Date()
                    history = try trainer.fit(train: subset, val: validation, observer: observer, checkpoint: { _ in }, improved: { _ in })
                    seconds = Date().timeIntervalSince(started)
                }
                let matrix = try Self.evaluate(seg, test, classes: classes, scale: training.inputScale, batch: training.batchSize,
                                               ignoreLabel: training.ignoreLabel)
                results.append(ContenderResult(
                    contender: name, labels: n, totalParameters: total, trainableParameters: trainable, trainingSeconds: seconds,
                    imagesPerSecond: seconds > 0 ? Double(subset.count * history.count) / seconds : 0,
                    pixelAccuracy: matrix.pixelAccuracy, meanIoU: matrix.meanIoU, meanIoUNoBackground: matrix.meanIoU(excluding: background),
                    perClassIoU: matrix.perClassIoU, history: history))
                keep?(name, n, seg)
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
