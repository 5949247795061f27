import CHDF5

/// Attributes of a group or dataset: scalar and array, numbers and strings
/// (fixed- and variable-length, as h5py writes them).
public protocol HDF5AttributeHolder: AnyObject {
    /// The open file the object is in (kept open while the object is alive).
    var file: HDF5File { get }
    /// The object's absolute path in the file ("/" for the root group), as errors name it.
    var path: String { get }
}

protocol HDF5Object: HDF5AttributeHolder {
    var objectID: hid_t { get }
}

extension HDF5Group: HDF5Object {}
extension HDF5Dataset: HDF5Object {}

/// An open attribute, closed on scope exit.
private final class OpenAttribute {
    let id: hid_t
    let type: hid_t
    let space: hid_t
    let file: String
    let object: String

    init(on holder: hid_t, name: String, file: String, object: String) throws {
        self.file = file
        self.object = "\(object) attribute '\(name)'"
        guard H5Aexists(holder, name) > 0 else { throw HDF5Error(file: file, object: self.object, "is missing") }
        id = try checkID(H5Aopen(holder, name, segkit_h5p_default()), file, self.object, "cannot be opened")
        type = H5Aget_type(id)
        space = H5Aget_space(id)
        guard type >= 0, space >= 0 else {
            H5Aclose(id)
            throw HDF5Error(file: file, object: self.object, "has no readable type or dataspace")
        }
    }

    deinit {
        H5Tclose(type)
        H5Sclose(space)
        H5Aclose(id)
    }

    var count: Int { Int(H5Sget_simple_extent_npoints(space)) }
    var typeClass: H5T_class_t { H5Tget_class(type) }

    func readStrings() throws -> [String] {
        // h5py writes an empty list as an empty float64 array.
        if count == 0 { return [] }
        guard typeClass == H5T_STRING else {
            throw HDF5Error(file: file, object: object, "holds numbers, expected text")
        }
        let n = count
        guard n >= 0, n <= 1 << 24 else { throw HDF5Error(file: file, object: object, "declares \(n) strings") }
        if H5Tis_variable_str(type) > 0 {
            let memType = H5Tcopy(segkit_h5t_c_s1())
            defer { H5Tclose(memType) }
            H5Tset_size(memType, segkit_h5t_variable())
            H5Tset_cset(memType, H5Tget_cset(type))
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            try check(H5Aread(id, memType, &pointers), file, object, "cannot be read")
            defer { for p in pointers { if let p { H5free_memory(p) } } }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        let size = H5Tget_size(type)
        guard size > 0, size <= 1 << 26, n * size <= 1 << 28 else {
            throw HDF5Error(file: file, object: object, "declares \(n) strings of \(size) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: n * size)
        try check(H5Aread(id, type, &bytes), file, object, "cannot be read")
        return (0..<n).map { i in
            let slice = bytes[(i * size)..<((i + 1) * size)]
            let trimmed = slice.prefix { $0 != 0 }
            return String(decoding: trimmed, as: UTF8.self)
        }
    }

    func readDoubles() throws -> [Double] {
        let klass = typeClass
        guard klass == H5T_FLOAT || klass == H5T_INTEGER else {
            throw HDF5Error(file: file, object: object, "holds text, expected numbers")
        }
        let n = count
        guard n >= 0, n <= 1 << 24 else { throw HDF5Error(file: file, object: object, "declares \(n) values") }
        var values = [Double](repeating: 0, count: n)
        try check(H5Aread(id, segkit_h5t_native_double(), &values), file, object, "cannot be read")
        return values
    }
}

extension HDF5AttributeHolder {
    private var handle: hid_t {
        (self as? HDF5Object)?.objectID ?? -1
    }

    /// Whether the object has an attribute `name` (false also when libhdf5
    /// cannot tell, e.g. for a damaged header).
    public func hasAttribute(_ name: String) -> Bool {
        H5Aexists(handle, name) > 0
    }

    /// All strings of a string attribute (one for a scalar), fixed- or
    /// variable-length, as h5py writes them; an empty numeric array (h5py's
    /// empty list) gives none.
    /// - Throws: `HDF5Error` when the attribute is missing, holds numbers,
    ///   declares more than 2^24 strings or cannot be read.
    public func stringsAttribute(_ name: String) throws -> [String] {
        try OpenAttribute(on: handle, name: name, file: file.path, object: path).readStrings()
    }

    /// A scalar (or one-element) string attribute.
    /// - Throws: `HDF5Error` as `stringsAttribute` does, and when it holds
    ///   other than exactly one string.
    public func stringAttribute(_ name: String) throws -> String {
        let strings = try stringsAttribute(name)
        guard strings.count == 1 else {
            throw HDF5Error(file: file.path, object: "\(path) attribute '\(name)'", "holds \(strings.count) strings, expected one")
        }
        return strings[0]
    }

    /// Every value of a numeric attribute (integer or float) as float64, in
    /// the attribute's row-major order; a scalar gives one value.
    /// - Throws: `HDF5Error` when the attribute is missing, holds text,
    ///   declares more than 2^24 values or cannot be read.
    public func numbersAttribute(_ name: String) throws -> [Double] {
        try OpenAttribute(on: handle, name: name, file: file.path, object: path).readDoubles()
    }

    /// Writes a variable-length UTF-8 string attribute (a scalar), as h5py
    /// writes a Python `str` (Keras's `model_config`, `keras_version`).
    /// - Throws: `HDF5Error` when the attribute exists already or cannot be written.
    public func writeStringAttribute(_ name: String, _ value: String) throws {
        let type = H5Tcopy(segkit_h5t_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, segkit_h5t_variable())
        H5Tset_cset(type, H5T_CSET_UTF8)
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let object = "\(path) attribute '\(name)'"
        let attr = try checkID(H5Acreate2(handle, name, type, space, segkit_h5p_default(), segkit_h5p_default()),
                               file.path, object, "cannot be created")
        defer { H5Aclose(attr) }
        try value.withCString { cString in
            var pointer: UnsafePointer<CChar>? = cString
            try check(H5Awrite(attr, type, &pointer), file.path, object, "cannot be written")
        }
    }

    /// Writes an array of fixed-length, null-padded strings, as h5py writes
    /// numpy byte-string arrays (Keras's `layer_names`, `weight_names`).
    /// Each string is as wide as the longest one's UTF-8 bytes.
    /// - Throws: `HDF5Error` when the attribute exists already or cannot be written.
    public func writeStringsAttribute(_ name: String, _ values: [String]) throws {
        let size = max(1, values.map { $0.utf8.count }.max() ?? 1)
        let type = H5Tcopy(segkit_h5t_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, size)
        H5Tset_strpad(type, H5T_STR_NULLPAD)
        var dims = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        let object = "\(path) attribute '\(name)'"
        let attr = try checkID(H5Acreate2(handle, name, type, space, segkit_h5p_default(), segkit_h5p_default()),
                               file.path, object, "cannot be created")
        defer { H5Aclose(attr) }
        var bytes = [UInt8](repeating: 0, count: size * values.count)
        for (i, v) in values.enumerated() {
            for (j, b) in v.utf8.enumerated() { bytes[i * size + j] = b }
        }
        if !values.isEmpty { try check(H5Awrite(attr, type, &bytes), file.path, object, "cannot be written") }
    }
}
