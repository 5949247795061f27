import SegKitSupport
import Foundation

/// Errors the engine reports instead of crashing: each names the op or layer
/// and says what was expected and what was found.
public enum EngineError: SegKitError, Equatable {
    case shapeMismatch(op: String, expected: String, found: String)
    case invalidArgument(op: String, message: String)
    case graph(String)
    /// A kernel's scratch memory could not be allocated (what was running).
    case outOfMemory(String)

    public var errorDescription: String? {
        switch self {
        case let .shapeMismatch(op, expected, found):
            return "\(op): expected \(expected), found \(found)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        case let .graph(message):
            return "graph: \(message)"
        case let .outOfMemory(what):
            return "out of memory while \(what)"
        }
    }
}
