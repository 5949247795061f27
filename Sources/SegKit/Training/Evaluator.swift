import Foundation
import SegKitEngine

/// Segmentation metrics of a segmenter on a labelled set, at each image's own
/// size (`SizeRule`), in batches of equally sized images decoded ahead of the
/// compute: the one evaluation loop of `train` (validation), `eval`, `compare`.
public struct Evaluator {
    public let runner: Segmenter
    public let classes: Int
    public let inputScale: InputScaling
    public let batchSize: Int
    /// Pixels with this label count neither in the loss nor in the metrics.
    public let ignoreLabel: Int32?

    public init(runner: Segmenter, classes: Int, inputScale: InputScaling, batchSize: Int, ignoreLabel: Int32?) {
        self.runner = runner
        self.classes = classes
        self.inputScale = inputScale
        self.batchSize = max(1, batchSize)
        self.ignoreLabel = ignoreLabel
    }

    /// The confusion matrix and mean softmax cross-entropy (per batch, over the
    /// pixels not ignored) of `data`.
    ///
    /// `progress` hears (images done, images in all) after every batch.
    ///
    /// - Throws: `DataError` for a sample that cannot be read, `EngineError` from the graph.
    public func evaluate(_ data: any LabelledImages, progress: ((Int, Int) -> Void)? = nil) throws -> (matrix: ConfusionMatrix, loss: Float) {
        var config = TrainingConfig()
        config.inputScale = inputScale
        let pipeline = TrainingBatches(data: data, config: config, ignoreLabel: ignoreLabel ?? -1)
        let batches = TrainingBatches.inferenceBatches(data, batch: batchSize)
        let prefetch = Prefetcher(count: batches.count) { b in try pipeline.assemble(batches[b], epoch: 0, step: 0, augment: false) }
        defer { prefetch.cancel() }
        var matrix = ConfusionMatrix(classes: classes, ignoreLabel: ignoreLabel)
        var loss: Double = 0, done = 0
        let crossEntropy = SoftmaxCrossEntropy(ignoreLabel: ignoreLabel ?? -1)
        for b in batches.indices {
            let batch = try prefetch.take(b)
            let x = try Tensor(shape: [batch.count, batch.height, batch.width, batch.channels], scalars: batch.pixels)
            let y = try runner.scores(x)
            matrix.add(scores: y.scalars, labels: batch.masks)
            loss += Double(try crossEntropy(logits: y, labels: batch.masks).loss)
            done += batches[b].count
            progress?(done, data.count)
        }
        return (matrix, Float(loss / Double(max(batches.count, 1))))
    }
}
