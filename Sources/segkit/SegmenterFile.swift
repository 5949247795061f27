import SegKitSupport
import ArgumentParser
import SegKit
import SegKitEngine
import SegKitKeras

/// A segmenter read back from its Keras file, with what SegKit stored beside it
/// (segkit.json): class count and names, total stride, input scaling.
struct SegmenterFile {
    let model: KerasModel
    let stored: SegmenterMetadata
    var classes: Int { stored.classes }
    var classNames: [String] { stored.classNames }

    init(_ path: String) throws {
        model = try loadModel(path)
        stored = try SegmenterMetadata(json: try SegmenterMetadata.document(in: model, file: path),
                                       outputChannels: try model.graph.staticShapes().last?.last ?? nil, file: path)
    }

    /// The segmenter at any input size, by the stored alignment (`SizeRule`):
    /// sizes are the stored reference size plus multiples of the total stride.
    var runner: Segmenter {
        stored.totalStride.map { Segmenter(graph: model.graph, totalStride: $0, referenceSize: stored.referenceSize) } ?? Segmenter(inferringFrom: model.graph)
    }

    /// The scaling given on the command line, else the stored one, else unit (raw
    /// when the model rescales its own input).
    func inputScaling(override: String?) throws -> InputScaling {
        if let override { return try InputScaling(parsing: override) }
        if let scale = stored.inputScale { return scale }
        return .defaultScaling(for: model.graph)
    }
}

/// The runner of a model SegKit built (one whose segkit.json stores its total
/// stride), nil for other models.
///
/// - Throws: `DataError.badFile` for a damaged segkit.json.
func storedRunner(_ model: KerasModel, file: String) throws -> Segmenter? {
    guard let document = try SegmenterMetadata.document(in: model, file: file) else { return nil }
    let stored = try SegmenterMetadata(json: document, outputChannels: nil, file: file)
    return stored.totalStride.map { Segmenter(graph: model.graph, totalStride: $0, referenceSize: stored.referenceSize) }
}
