import SegKitSupport
import SegKitEngine

/// A segmenter graph and what SegKit needs to run and describe it.
public struct BuiltSegmenter {
    public let graph: Graph
    public let recipe: Recipe
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

    /// SegKit's metadata, stored beside the Keras model (`segkit.json`).
    public var metadata: JSONValue {
        ["segkit_version": "0.1.0", "recipe": .string(recipe.name), "decoder": .string(recipe.decoder.rawValue),
         "classes": .number(Double(classes)),
         "class_names": .array((classNames.count == classes ? classNames : (0..<classes).map { "class_\($0)" }).map { .string($0) }),
         "total_stride": .number(Double(totalStride)), "output": .string(output),
         "reference_size": referenceSize.map { .array([.number(Double($0.height)), .number(Double($0.width))]) } ?? .null,
         "stages": .array(stages.map {
             ["stride": .number(Double($0.stride)), "layer": .string($0.name),
              "offset": .array([.number($0.offsetRows), .number($0.offsetCols)]),
              "receptive_field": .array([.number(Double($0.receptiveRows)), .number(Double($0.receptiveCols))])]
         })]
    }
}
