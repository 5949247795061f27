import SegKitSupport
import Foundation

/// What can go wrong reading a Keras file, each naming the file, the layer (or
/// weight), what was expected and what was found.
public enum KerasImportError: SegKitError, Equatable {
    /// A layer class SegKit does not read: custom, Lambda (Python code), or not implemented.
    case unsupportedLayer(name: String, className: String, file: String, reason: String)
    /// A config option whose value SegKit does not compute exactly (e.g. `data_format` channels_first).
    case unsupportedOption(layer: String, className: String, option: String, value: String, file: String)
    /// A config that is not a well-formed model (dangling references, sizes out of bounds, …).
    case invalidConfig(file: String, message: String)
    /// Weights the config needs and the file lacks, or has and the config does not.
    case missingWeights(layer: String, file: String, message: String)
    /// A stored weight whose shape is not the one the config implies.
    case shapeMismatch(layer: String, weight: String, expected: [Int], found: [Int], file: String)
    /// A file that is none of Keras's four layouts.
    case unknownFormat(file: String, message: String)
    /// A weights-only file given without the architecture (`--config`).
    case configRequired(file: String, format: String)
    /// A `.keras` zip that cannot be read safely (unsafe paths, missing or oversized entries).
    case archive(file: String, message: String)

    /// The message a user sees, starting with the file.
    public var errorDescription: String? {
        switch self {
        case let .unsupportedLayer(name, className, file, reason):
            return "\(file): layer '\(name)' of class \(className) is not supported: \(reason)"
        case let .unsupportedOption(layer, className, option, value, file):
            return "\(file): layer '\(layer)' (\(className)) sets \(option) = \(value), which SegKit does not support"
        case let .invalidConfig(file, message):
            return "\(file): \(message)"
        case let .missingWeights(layer, file, message):
            return "\(file): layer '\(layer)': \(message)"
        case let .shapeMismatch(layer, weight, expected, found, file):
            return "\(file): layer '\(layer)' weight '\(weight)': the config expects shape \(expected), the file holds \(found)"
        case let .unknownFormat(file, message):
            return "\(file): \(message)"
        case let .configRequired(file, format):
            return "\(file) is a \(format) with weights only; give the architecture with --config (a model.to_json() file, a config.json or a .keras archive)"
        case let .archive(file, message):
            return "\(file): \(message)"
        }
    }
}
