import Foundation
import SegKitEngine

/// Segmentation metrics of a segmenter on a labelled set, at each image's own
/// size (`SizeRule`), in batches of equally sized images decoded ahead of the
/// compute: the one evaluation loop of `train` (validation), `eval`, `compare`.
public struct Evaluator {
    /// Runs the segmenter at each image's own size (`Segmenter.scores`).
    public let runner: Segmenter
    /// K: the segmenter's classes, the confusion matrix's size.
    public let classes: Int
    /// How raw pixels become inputs, as in training.
    public let inputScale: InputScaling
    /// Images per forward pass (at least 1); a batch holds images of one size only.
    public let batchSize: Int
    /// Pixels with this label count neither in the loss nor in the metrics.
    public let ignoreLabel: Int32?

    /// An evaluator; a `batchSize` below 1 counts as 1.
    public init(runner: Segmenter, classes: Int, inputScale: InputScaling, batchSize: Int, ignoreLabel: Int32?) {
        self.runner = runner
        self.classes = classes
        self.inputScale = inputScale
        self.batchSize = max(1, batchSize)
        self.ignoreLabel = ignoreLabel
    }

    /// The confusion matrix and mean softmax cross-entropy of `data`: each
    /// batch's mean over its pixels not ignored, weighted by the batch's images,
    /// as Keras's `evaluate` weights its batches (so a short last batch or a
    /// small size bucket counts by its images, not as a whole batch).
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
            loss += Double(try crossEntropy(logits: y, labels: batch.masks).loss) * Double(batch.count)
            done += batches[b].count
            progress?(done, data.count)
        }
        return (matrix, Float(loss / Double(max(done, 1))))
    }
}
