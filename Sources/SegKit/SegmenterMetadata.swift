import SegKitSupport
import Foundation

/// What SegKit reads back from a segmenter's `segkit.json` (see
/// `BuiltSegmenter.metadata` for what it writes), each value checked against
/// the model it describes: a hand-edited or damaged file is an error naming the
/// key, never a crash or a runaway allocation.
public struct SegmenterMetadata: Sendable, Equatable {
    public var classes: Int
    public var classNames: [String]
    /// The period of the decoder's alignment (1 to 1024), when stored.
    public var totalStride: Int?
    /// A size (height, width) the decoder aligns at, when stored.
    public var referenceSize: (height: Int, width: Int)?
    /// The stored input scaling, when stored.
    public var inputScale: InputScaling?
    /// The background class the training data named (Pascal VOC's 0), when stored;
    /// otherwise SegKit takes the last class.
    public var background: Int?

    public static func == (a: Self, b: Self) -> Bool {
        a.classes == b.classes && a.classNames == b.classNames && a.totalStride == b.totalStride
            && a.referenceSize?.height == b.referenceSize?.height && a.referenceSize?.width == b.referenceSize?.width && a.inputScale == b.inputScale && a.background == b.background
    }

    /// Reads `json` (nil: a Keras model SegKit did not write) for a model whose
    /// output has `outputChannels` channels (nil: unknown).
    ///
    /// - Throws: `DataError.badFile` naming `file`, the key, what was found and what was expected.
    public init(json: JSONValue?, outputChannels: Int?, file: String) throws {
        let given = json ?? [:]
        /// A key's value; JSON null means not stored (a U-Net from scratch has no reference size).
        func meta(_ key: String) -> JSONValue? {
            guard let value = given[key] else { return nil }
            if case .null = value { return nil }
            return value
        }
        func bad(_ key: String, _ message: String) -> DataError { .badFile(file, "segkit.json: \(key) \(message)") }
        if let stored = meta("classes") {
            guard let k = stored.int, (1...65_536).contains(k) else { throw bad("classes", "is \(stored), expected a count from 1 to 65536") }
            if let outputChannels, outputChannels != k, !(k == 2 && outputChannels == 1) {
                throw bad("classes", "is \(k), and the model's output has \(outputChannels) channels")
            }
            classes = k
        } else if let outputChannels, outputChannels >= 1 {
            classes = outputChannels
        } else {
            throw DataError.badFile(file, "cannot tell the class count (no segkit.json from `segkit build`, and the output's channels are unknown)")
        }
        if let names = meta("class_names") {
            guard let list = names.array?.compactMap(\.string), list.count == classes else {
                throw bad("class_names", "is not a list of \(classes) names")
            }
            classNames = list
        } else {
            classNames = (0..<classes).map { "class_\($0)" }
        }
        if let stored = meta("total_stride") {
            guard let s = stored.int, (1...1024).contains(s) else { throw bad("total_stride", "is \(stored), expected 1 to 1024") }
            totalStride = s
        }
        if let stored = meta("reference_size") {
            guard let r = stored.array?.compactMap(\.int), r.count == 2, r.allSatisfy({ (1...16_384).contains($0) }) else {
                throw bad("reference_size", "is \(stored), expected [height, width] of 1 to 16384 pixels")
            }
            referenceSize = (r[0], r[1])
        }
        if let stored = meta("background_class") {
            guard let b = stored.int, (0..<classes).contains(b) else { throw bad("background_class", "is \(stored), expected a class from 0 to \(classes - 1)") }
            background = b
        }
        if let stored = meta("input_scale") {
            guard let text = stored.string, let scale = try? InputScaling(parsing: text) else {
                throw bad("input_scale", "is \(stored), expected unit, raw, symmetric or mean-std:M,S")
            }
            inputScale = scale
        }
    }
}
