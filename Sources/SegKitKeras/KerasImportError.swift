import SegKitSupport
import Foundation

/// What can go wrong reading a Keras file, each naming the file, the layer (or
/// weight), what was expected and what was found.
public enum KerasImportError: SegKitError, Equatable {
    case unsupportedLayer(name: String, className: String, file: String, reason: String)
    case unsupportedOption(layer: String, className: String, option: String, value: String, file: String)
    case invalidConfig(file: String, message: String)
    case missingWeights(layer: String, file: String, message: String)
    case shapeMismatch(layer: String, weight: String, expected: [Int], found: [Int], file: String)
    case unknownFormat(file: String, message: String)
    case configRequired(file: String, format: String)
    case archive(file: String, message: String)

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
