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
        classNames = meta["class_names"]?.array?.compactMap(\.string) ?? Self.defaultNames(classes)
    }

    /// The names of classes nobody named: class_0, class_1, …
    static func defaultNames(_ classes: Int) -> [String] { (0..<classes).map { "class_\($0)" } }

    var metadata: JSONValue { model.segkitMetadata ?? [:] }

    /// The segmenter at any input size, by the stored alignment (`SizeRule`):
    /// sizes are the stored reference size plus multiples of the total stride.
    var runner: Segmenter { storedRunner(model) ?? Segmenter(inferringFrom: model.graph) }

    /// The scaling given on the command line, else the stored one, else unit (raw
    /// when the model rescales its own input).
    func inputScaling(override: String?) throws -> InputScaling {
        if let override { return try InputScaling(parsing: override) }
        if let stored = metadata["input_scale"]?.string { return try InputScaling(parsing: stored) }
        return .defaultScaling(for: model.graph)
    }
}

/// The runner of a model SegKit built (one with `segkit.json`), by its stored
/// alignment; nil for other models.
func storedRunner(_ model: KerasModel) -> Segmenter? {
    guard let meta = model.segkitMetadata, let stride = meta["total_stride"]?.int else { return nil }
    let reference = meta["reference_size"]?.array?.compactMap(\.int)
    return Segmenter(graph: model.graph, totalStride: stride, referenceSize: reference?.count == 2 ? (reference![0], reference![1]) : nil)
}
