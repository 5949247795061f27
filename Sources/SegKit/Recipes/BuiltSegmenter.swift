import SegKitEngine
import SegKitKeras

/// A segmenter graph and what SegKit needs to run and describe it.
public struct BuiltSegmenter {
    public let graph: Graph
    public let recipe: Recipe
    public let classes: Int
    /// Input sizes must be multiples of this (SegKit pads and crops others).
    public let totalStride: Int
    /// Encoder taps used (empty for unet-scratch).
    public let stages: [EncoderStage]
    /// "logits", or "probabilities" for a heatmap of the classifier's softmax.
    public let output: String
    /// One name per class, for legends and reports.
    public var classNames: [String] = []

    /// SegKit's metadata, stored beside the Keras model (`segkit.json`).
    public var metadata: JSONValue {
        ["segkit_version": "0.1.0", "recipe": .string(recipe.name), "decoder": .string(recipe.decoder.rawValue),
         "classes": .number(Double(classes)),
         "class_names": .array((classNames.count == classes ? classNames : (0..<classes).map { "class_\($0)" }).map { .string($0) }),
         "total_stride": .number(Double(totalStride)), "output": .string(output),
         "stages": .array(stages.map { ["stride": .number(Double($0.stride)), "layer": .string($0.name)] })]
    }
}
