import SegKitSupport
import Foundation

/// SegKit's one error convention: every error type says, in one line, the file
/// (or the layer, or the sample), what was expected and what was found.
///
/// Types conform by implementing `errorDescription` (Foundation's
/// `LocalizedError`, which `localizedDescription` and swift-argument-parser
/// print); this protocol gives them the same text as `description`, so an error
/// interpolated into another message reads the same and never as Swift's
/// structure dump.
public protocol SegKitError: LocalizedError, CustomStringConvertible {}

extension SegKitError {
    /// The `errorDescription`, for string interpolation.
    public var description: String { errorDescription ?? String(describing: Self.self) }
}

/// A file that could not be created, written, replaced, read or parsed.
/// Reads as "`file`: `message`".
public struct FileError: SegKitError, Equatable {
    /// The path as the user gave it, or a name for an inner part ("model.keras config.json").
    public let file: String
    /// What went wrong, with what was expected and found where that applies.
    public let message: String

    /// - Parameters:
    ///   - file: the path, or a name for the part of a file.
    ///   - message: what went wrong.
    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var errorDescription: String? { "\(file): \(message)" }
}
