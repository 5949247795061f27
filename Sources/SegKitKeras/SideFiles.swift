import SegKitSupport

/// The names of what another tool stores in a Keras model file beside Keras's
/// own parts (Keras ignores them): top-level entries of a `.keras` archive,
/// and root string attributes of a legacy `.h5` model. SegKitKeras reads and
/// writes them by name without knowing what they hold; SegKit names its own
/// (`SideFileNames.segkit`).
public struct SideFileNames: Sendable {
    /// Archive entries to copy out, when present.
    public var entries: [String]
    /// Root string attributes of a legacy `.h5` model to read, when present.
    public var attributes: [String]

    /// - Parameters: as the properties.
    public init(entries: [String] = [], attributes: [String] = []) {
        self.entries = entries
        self.attributes = attributes
    }
}

/// The side files a model file held, of those asked for (`SideFileNames`).
public struct SideFiles {
    /// Archive entry name → its bytes, copied to a scratch file while read
    /// (each bounded like the weights: `KerasArchive.entryLimit`).
    public internal(set) var entries: [String: ScratchFile] = [:]
    /// Root attribute name → its text, from a legacy `.h5` model.
    public internal(set) var attributes: [String: String] = [:]
}

/// A text a writer stores beside the model: the archive entry `entry` of a
/// `.keras` file, or the root attribute `attribute` of a legacy `.h5` one.
public struct SideText: Sendable {
    /// Its archive entry name in a `.keras` file.
    public var entry: String
    /// Its root attribute name in a legacy `.h5` file.
    public var attribute: String
    /// The text stored (UTF-8 in an archive).
    public var text: String

    /// - Parameters: as the properties.
    public init(entry: String, attribute: String, text: String) {
        self.entry = entry
        self.attribute = attribute
        self.text = text
    }
}
