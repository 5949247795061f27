import ArgumentParser
import SegKit
import SegKitEngine
import SegKitKeras

/// A segmenter read back from its Keras file, with what SegKit stored beside it
/// (segkit.json): class count and names, total stride, input scaling.
struct SegmenterFile {
    let model: KerasModel
    let classes: Int
    let classNames: [String]

    init(_ path: String) throws {
        model = try loadModel(path)
        let meta = model.segkitMetadata ?? [:]
        guard let classes = try meta["classes"]?.int ?? (model.graph.staticShapes().last?.last ?? nil) else {
            throw ValidationError("\(path): cannot tell the class count (not built by segkit build?)")
        }
        self.classes = classes
        classNames = meta["class_names"]?.array?.compactMap(\.string) ?? (0..<classes).map { "class_\($0)" }
    }

    var metadata: JSONValue { model.segkitMetadata ?? [:] }

    /// Pad-and-crop runner at the stored total stride.
    var runner: Segmenter { Segmenter(graph: model.graph, totalStride: metadata["total_stride"]?.int ?? 1) }

    /// The scaling given on the command line, else the stored one, else unit (raw
    /// when the model rescales its own input).
    func inputScaling(override: String?) throws -> InputScaling {
        if let override { return try InputScaling(parsing: override) }
        if let stored = metadata["input_scale"]?.string { return try InputScaling(parsing: stored) }
        return .defaultScaling(for: model.graph)
    }
}
