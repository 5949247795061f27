import SegKitSupport
import SegKitEngine

/// A segmenter graph and what SegKit needs to run and describe it.
public struct BuiltSegmenter {
    /// The segmenter: NHWC images `[N, H, W, C]` in, per-pixel scores `[N, H, W, classes]` out.
    public let graph: Graph
    /// The recipe it was built from.
    public let recipe: Recipe
    /// Number of classes scored (the output's channels).
    public let classes: Int
    /// The least common multiple of the graph's strides: input sizes this far apart
    /// align alike (SegKit pads and crops others, `SizeRule`).
    public let totalStride: Int
    /// The input size the decoder was laid out at (nil: 0 modulo `totalStride`);
    /// the graph runs at this size plus multiples of `totalStride`.
    public let referenceSize: (height: Int, width: Int)?
    /// Encoder taps used (empty for unet-scratch).
    public let stages: [EncoderStage]
    /// "logits", or "probabilities" for a heatmap of the classifier's softmax.
    public let output: String
    /// One name per class, for legends and reports.
    public var classNames: [String] = []

    /// Records a built graph with what runs and describes it; checks nothing.
    public init(graph: Graph, recipe: Recipe, classes: Int, totalStride: Int, referenceSize: (height: Int, width: Int)?,
                stages: [EncoderStage], output: String) {
        self.graph = graph
        self.recipe = recipe
        self.classes = classes
        self.totalStride = totalStride
        self.referenceSize = referenceSize
        self.stages = stages
        self.output = output
    }

    /// Runs the segmenter at any input size.
    public var runner: Segmenter { Segmenter(graph: graph, totalStride: totalStride, referenceSize: referenceSize) }

    /// What `segkit.json` says of this segmenter.
    public var storedMetadata: SegmenterMetadata {
        var m = SegmenterMetadata(classes: classes, classNames: classNames)
        m.recipe = recipe.name
        m.decoder = recipe.decoder.rawValue
        m.totalStride = totalStride
        m.output = output
        m.referenceSize = referenceSize
        m.stages = stages.map {
            .init(stride: $0.stride, layer: $0.name, offset: [$0.offsetRows, $0.offsetCols], receptiveField: [$0.receptiveRows, $0.receptiveCols])
        }
        return m
    }

    /// `storedMetadata` as the document `KerasWriter` stores beside the model.
    public var metadata: JSONValue { storedMetadata.json }
}
