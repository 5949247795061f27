import SegKitSupport
import Foundation

/// Errors the engine reports instead of crashing: each names the op or layer
/// and says what was expected and what was found.
public enum EngineError: SegKitError, Equatable {
    /// An op or layer was given a tensor, kernel or shape it cannot take: what it
    /// expected and what it found (shapes as Swift arrays or Keras tuples).
    case shapeMismatch(op: String, expected: String, found: String)
    /// A configuration value out of range (strides, rates, axes...), or a call the op
    /// does not support (a backward pass without its training-mode forward cache).
    case invalidArgument(op: String, message: String)
    /// A malformed graph or call on it: an unknown or duplicate node, a wrong number
    /// of inputs or output gradients, or a layer's error re-reported at its node.
    case graph(String)
    /// A kernel's scratch memory could not be allocated (what was running).
    case outOfMemory(String)

    /// The message printed to the user: "op: expected …, found …" and so on.
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
