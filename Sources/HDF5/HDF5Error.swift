import SegKitSupport
import Foundation

/// Every libhdf5 failure, as a Swift error naming the file and the object.
/// (HDF5's own error stack printing is switched off; see `HDF5Library`.)
public struct HDF5Error: SegKitError, Equatable {
    /// The file as the user named it (or as it was opened `reportedAs`).
    public let file: String
    /// The object path inside the file ("/model_weights/conv1"), or "" for the file itself.
    public let object: String
    /// What is wrong, phrased to follow the object ("is missing", "cannot be read").
    public let message: String

    /// An error about `object` in `file` (`object` "" for the file itself).
    public init(file: String, object: String, _ message: String) {
        self.file = file
        self.object = object
        self.message = message
    }

    /// "file: object: message", or "file: message" for the file itself.
    public var errorDescription: String? {
        object.isEmpty ? "\(file): \(message)" : "\(file): \(object): \(message)"
    }
}
