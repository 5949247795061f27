import SegKitEngine
import SegKitSupport
import SegKitKeras

/// Where SegKit keeps its own parts in the Keras files it writes, which Keras
/// ignores: `segkit.json` (`SegmenterMetadata`; the root attribute `segkit` of
/// a legacy `.h5`) and a checkpoint's training state (`Checkpoint.stateEntry`).
extension SideFileNames {
    /// The side files SegKit reads when it loads a model.
    public static let segkit = SideFileNames(entries: [SegmenterMetadata.entryName, Checkpoint.stateEntry],
                                             attributes: [SegmenterMetadata.attributeName])
}

extension KerasWriter {
    /// A writer of `graph` as the model `name`, with SegKit's `segkit.json`
    /// document `metadata` beside it (nil: none).
    public init(graph: Graph, name: String, metadata: JSONValue?) {
        self.init(graph: graph, name: name)
        if let metadata {
            sideTexts = [SideText(entry: SegmenterMetadata.entryName, attribute: SegmenterMetadata.attributeName, text: metadata.jsonText)]
        }
    }
}
