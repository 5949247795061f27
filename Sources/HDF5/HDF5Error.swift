import SegKitSupport
import Foundation

/// Every libhdf5 failure, as a Swift error naming the file and the object.
/// (HDF5's own error stack printing is switched off; see `HDF5Library`.)
public struct HDF5Error: SegKitError, Equatable {
    public let file: String
    /// The object path inside the file ("/model_weights/conv1"), or "" for the file itself.
    public let object: String
    public let message: String

    public init(file: String, object: String, _ message: String) {
        self.file = file
        self.object = object
        self.message = message
    }

    public var errorDescription: String? {
        object.isEmpty ? "\(file): \(message)" : "\(file): \(object): \(message)"
    }
}
