import CHDF5
import Foundation

/// An open HDF5 file. Closed when the last reference to it (or to a group,
/// dataset or attribute inside it) goes away.
public final class HDF5File {
    /// The name errors give the file (its path, unless opened `reportedAs` another).
    public let path: String
    let id: hid_t

    /// Opens an existing file read-only. A missing, truncated or non-HDF5 file
    /// is an `HDF5Error` naming it — as `name` when given (a scratch file holding
    /// an archive's entry is reported as that entry).
    /// - Throws: `HDF5Error` when the file is missing, not HDF5, or cannot be opened.
    public init(readingFrom path: String, reportedAs name: String? = nil) throws {
        _ = HDF5Library.ready
        self.path = name ?? path
        guard FileManager.default.fileExists(atPath: path) else {
            throw HDF5Error(file: self.path, object: "", "no such file")
        }
        guard H5Fis_hdf5(path) > 0 else {
            throw HDF5Error(file: self.path, object: "", "not an HDF5 file (no HDF5 signature found)")
        }
        let id = H5Fopen(path, segkit_h5f_acc_rdonly(), segkit_h5p_default())
        guard id >= 0 else {
            throw HDF5Error(file: self.path, object: "",
                            "cannot be opened: truncated or damaged, or written by a newer HDF5 (libver 'latest') than this libhdf5 can read")
        }
        self.id = id
    }

    /// Creates (or truncates) a file for writing; errors name it `name` when given.
    /// - Throws: `HDF5Error` when the file cannot be created.
    public init(creating path: String, reportedAs name: String? = nil) throws {
        _ = HDF5Library.ready
        self.path = name ?? path
        self.id = try checkID(H5Fcreate(path, segkit_h5f_acc_trunc(), segkit_h5p_default(), segkit_h5p_default()),
                              self.path, "", "cannot be created")
    }

    deinit { H5Fclose(id) }

    /// The root group "/", where Keras keeps `model_config`, `model_weights` or `layers`.
    /// - Throws: `HDF5Error` when the root group cannot be opened.
    public var root: HDF5Group {
        get throws { try HDF5Group(file: self, path: "/") }
    }

    /// Writes everything to disk (also done on close).
    /// - Throws: `HDF5Error` when libhdf5 cannot flush the file.
    public func flush() throws {
        try check(H5Fflush(id, H5F_SCOPE_GLOBAL), path, "", "cannot be flushed")
    }
}
