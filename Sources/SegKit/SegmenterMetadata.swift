import SegKitSupport
import SegKitKeras
import Foundation

/// SegKit's `segkit.json`, stored beside a segmenter's Keras model (an entry of
/// the `.keras` archive, or the root attribute `segkit` of a legacy `.h5`):
/// written from this type (`json`), read back by `init(json:outputChannels:file:)`,
/// which checks each value against the model it describes, so a hand-edited or
/// damaged file is an error naming the key, never a crash or a runaway allocation.
///
/// Keys (snake_case, as `CodingKeys` spells them): `segkit_version`, `recipe`,
/// `decoder`, `classes`, `class_names`, `total_stride`, `output`,
/// `reference_size` ([height, width] or null), `stages`, `input_scale`,
/// `background_class`, and `source` for `segkit convolutionalize`'s nets.
/// Reading is validated by hand rather than by a synthesized `Decodable`
/// init, because each value is checked against the model (its output's
/// channels) and the messages must name the key, the value and what was expected.
public struct SegmenterMetadata: Sendable, Equatable, Encodable {
    /// One encoder stage a decoder taps, as `segkit build` reports it.
    public struct Stage: Sendable, Equatable, Encodable {
        /// Output stride (input pixels per map pixel).
        public var stride: Int
        /// The encoder layer whose output is the tap.
        public var layer: String
        /// FCN's offset: the input coordinate (pixels, rows then columns) of map pixel (0, 0)'s centre.
        public var offset: [Double]?
        /// Input pixels one map pixel sees (rows, columns).
        public var receptiveField: [Int]?

        /// - Parameters: as the properties.
        public init(stride: Int, layer: String, offset: [Double]? = nil, receptiveField: [Int]? = nil) {
            self.stride = stride
            self.layer = layer
            self.offset = offset
            self.receptiveField = receptiveField
        }

        enum CodingKeys: String, CodingKey {
            case stride, layer, offset
            case receptiveField = "receptive_field"
        }
    }

    /// The SegKit version that wrote the file.
    public var segkitVersion: String? = SegmenterMetadata.currentVersion
    /// The recipe the segmenter was built with ("fcn-8s"), nil for other nets.
    public var recipe: String?
    /// The recipe's decoder family ("fcn", "unet", …).
    public var decoder: String?
    /// The segmentation classes: the model's output channels (2 for one sigmoid unit).
    public var classes: Int
    /// One name per class, for legends and reports (class_0, class_1, … when none were given).
    public var classNames: [String]
    /// The period of the decoder's alignment (1 to 1024), when stored.
    public var totalStride: Int?
    /// "logits", or "probabilities" for a heatmap of a softmax classifier.
    public var output: String?
    /// A size (height, width) the decoder aligns at, when stored.
    public var referenceSize: (height: Int, width: Int)?
    /// The encoder stages the decoder taps (finest first).
    public var stages: [Stage] = []
    /// The stored input scaling, when stored.
    public var inputScale: InputScaling?
    /// The background class the training data named (Pascal VOC's 0), when stored;
    /// otherwise SegKit takes the last class.
    public var background: Int?
    /// The classifier file a `segkit convolutionalize` net was made from.
    public var source: String?

    /// The version written into new files.
    public static let currentVersion = "0.1.0"
    /// The `.keras` archive entry that holds the document.
    public static let entryName = "segkit.json"
    /// The legacy `.h5` root attribute that holds it.
    public static let attributeName = "segkit"
    /// The largest document read (a SegKit one is a few kilobytes).
    static let maxBytes = 1 << 20

    /// The `segkit.json` document `model` holds (loaded with
    /// `SideFileNames.segkit`), parsed; nil when it holds none.
    /// - Throws: `FileError` naming `file` for a document over 1 MiB, one that
    ///   cannot be read, or one that is not JSON.
    public static func document(in model: KerasModel, file: String) throws -> JSONValue? {
        if let text = model.sideFiles.attributes[attributeName] {
            return try JSONValue.parse(Data(text.utf8), source: file + " " + attributeName)
        }
        guard let entry = model.sideFiles.entries[entryName] else { return nil }
        guard entry.size <= maxBytes else {
            throw FileError(file: file, "\(entryName) decompresses to more than \(maxBytes) bytes; refused")
        }
        return try JSONValue.parse(try entry.read(offset: 0, count: entry.size), source: file + " " + entryName)
    }

    /// Metadata for a new file; the rest is set by property.
    /// - Parameters:
    ///   - classes: the segmentation classes (≥ 1).
    ///   - classNames: one per class; nil or a wrong count names them class_0, class_1, ….
    public init(classes: Int, classNames: [String]? = nil) {
        self.classes = classes
        self.classNames = classNames?.count == classes ? classNames! : Self.defaultNames(classes)
    }

    /// The names of classes nobody named: class_0, class_1, …
    public static func defaultNames(_ classes: Int) -> [String] { (0..<classes).map { "class_\($0)" } }

    enum CodingKeys: String, CodingKey {
        case recipe, decoder, classes, output, stages, source
        case segkitVersion = "segkit_version", classNames = "class_names", totalStride = "total_stride"
        case referenceSize = "reference_size", inputScale = "input_scale", background = "background_class"
    }

    /// Writes the keys that are set; `reference_size` is written as null when
    /// absent (a U-Net from scratch aligns at multiples of its stride).
    /// - Throws: what `encoder` throws (nothing, for `JSONEncoder` with these values).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(segkitVersion, forKey: .segkitVersion)
        try c.encodeIfPresent(recipe, forKey: .recipe)
        try c.encodeIfPresent(decoder, forKey: .decoder)
        try c.encode(classes, forKey: .classes)
        try c.encode(classNames, forKey: .classNames)
        try c.encodeIfPresent(totalStride, forKey: .totalStride)
        try c.encodeIfPresent(output, forKey: .output)
        if let r = referenceSize { try c.encode([r.height, r.width], forKey: .referenceSize) } else { try c.encodeNil(forKey: .referenceSize) }
        if !stages.isEmpty { try c.encode(stages, forKey: .stages) }
        try c.encodeIfPresent(inputScale?.description, forKey: .inputScale)
        try c.encodeIfPresent(background, forKey: .background)
        try c.encodeIfPresent(source, forKey: .source)
    }

    /// The document for `KerasWriter(metadata:)`: `encode(to:)` through
    /// Foundation's `JSONEncoder`.
    public var json: JSONValue {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        // Strings, integers and (named if not finite) floats: encoding cannot fail.
        guard let data = try? encoder.encode(self), let value = try? JSONValue.parse(data, source: "segkit.json") else { return [:] }
        return value
    }

    /// Equal when every stored value is (a tuple's fields compared one by one).
    public static func == (a: Self, b: Self) -> Bool {
        a.classes == b.classes && a.classNames == b.classNames && a.totalStride == b.totalStride
            && a.referenceSize?.height == b.referenceSize?.height && a.referenceSize?.width == b.referenceSize?.width && a.inputScale == b.inputScale && a.background == b.background
            && a.segkitVersion == b.segkitVersion && a.recipe == b.recipe && a.decoder == b.decoder && a.output == b.output
            && a.stages == b.stages && a.source == b.source
    }

    /// Reads `json` (nil: a Keras model SegKit did not write) for a model whose
    /// output has `outputChannels` channels (nil: unknown).
    ///
    /// - Throws: `DataError.badFile` naming `file`, the key, what was found and what was expected.
    public init(json: JSONValue?, outputChannels: Int?, file: String) throws {
        let given = json ?? [:]
        /// A key's value; JSON null means not stored (a U-Net from scratch has no reference size).
        func meta(_ key: CodingKeys) -> JSONValue? {
            guard let value = given[key.rawValue] else { return nil }
            if case .null = value { return nil }
            return value
        }
        func bad(_ key: CodingKeys, _ message: String) -> DataError { .badFile(file, "segkit.json: \(key.rawValue) \(message)") }
        if let stored = meta(.classes) {
            guard let k = stored.int, (1...65_536).contains(k) else { throw bad(.classes, "is \(stored), expected a count from 1 to 65536") }
            if let outputChannels, outputChannels != k, !(k == 2 && outputChannels == 1) {
                throw bad(.classes, "is \(k), and the model's output has \(outputChannels) channels")
            }
            classes = k
        } else if let outputChannels, outputChannels >= 1 {
            classes = outputChannels
        } else {
            throw DataError.badFile(file, "cannot tell the class count (no segkit.json from `segkit build`, and the output's channels are unknown)")
        }
        if let names = meta(.classNames) {
            guard let list = names.array?.compactMap(\.string), list.count == classes else {
                throw bad(.classNames, "is not a list of \(classes) names")
            }
            classNames = list
        } else {
            classNames = Self.defaultNames(classes)
        }
        if let stored = meta(.totalStride) {
            guard let s = stored.int, (1...1024).contains(s) else { throw bad(.totalStride, "is \(stored), expected 1 to 1024") }
            totalStride = s
        }
        if let stored = meta(.referenceSize) {
            guard let r = stored.array?.compactMap(\.int), r.count == 2, r.allSatisfy({ (1...16_384).contains($0) }) else {
                throw bad(.referenceSize, "is \(stored), expected [height, width] of 1 to 16384 pixels")
            }
            referenceSize = (r[0], r[1])
        }
        if let stored = meta(.background) {
            guard let b = stored.int, (0..<classes).contains(b) else { throw bad(.background, "is \(stored), expected a class from 0 to \(classes - 1)") }
            background = b
        }
        if let stored = meta(.inputScale) {
            guard let text = stored.string, let scale = try? InputScaling(parsing: text) else {
                throw bad(.inputScale, "is \(stored), expected unit, raw, symmetric or mean-std:M,S")
            }
            inputScale = scale
        }
        // What build and convolutionalize describe the net with: read as stored,
        // never needed to run it, so an odd value is left out rather than refused.
        segkitVersion = meta(.segkitVersion)?.string
        recipe = meta(.recipe)?.string
        decoder = meta(.decoder)?.string
        output = meta(.output)?.string
        source = meta(.source)?.string
        stages = (meta(.stages)?.array ?? []).compactMap { entry in
            guard let stride = entry["stride"]?.int, let layer = entry["layer"]?.string else { return nil }
            return Stage(stride: stride, layer: layer, offset: entry["offset"]?.array?.compactMap(\.double),
                         receptiveField: entry["receptive_field"]?.array?.compactMap(\.int))
        }
    }
}
