import CHDF5

/// A dataset: its shape and element type, read as float32, float64 or int64
/// (libhdf5 converts between numeric types).
public final class HDF5Dataset: HDF5AttributeHolder {
    /// The open file the dataset is in (kept open while the dataset is alive).
    public let file: HDF5File
    /// The dataset's absolute path in the file ("/model_weights/conv1/conv1/kernel:0").
    public let path: String
    let id: hid_t
    var objectID: hid_t { id }

    /// The HDF5 type class of a dataset's elements: only float and integer
    /// datasets can be read as numbers.
    public enum ElementClass: Equatable, Sendable { case float, integer, string, other }

    init(file: HDF5File, path: String) throws {
        self.file = file
        self.path = path
        self.id = try checkID(H5Dopen2(file.id, path, segkit_h5p_default()), file.path, path, "is not a dataset that can be opened")
    }

    deinit { H5Dclose(id) }

    /// The declared shape, row-major, outermost axis first; [] for a scalar
    /// (read from the header only: nothing is allocated).
    /// - Throws: `HDF5Error` when the dataspace cannot be read or is not simple.
    public func shape() throws -> [Int] {
        let space = try checkID(H5Dget_space(id), file.path, path, "has no readable dataspace")
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw HDF5Error(file: file.path, object: path, "has a dataspace that is not simple") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        return dims.map { Int(clamping: $0) }
    }

    /// The class of the stored element type (its width and byte order do not
    /// matter: libhdf5 converts on reading).
    /// - Throws: `HDF5Error` when the type cannot be read.
    public func elementClass() throws -> ElementClass {
        let type = try checkID(H5Dget_type(id), file.path, path, "has no readable type")
        defer { H5Tclose(type) }
        switch H5Tget_class(type) {
        case H5T_FLOAT: return .float
        case H5T_INTEGER: return .integer
        case H5T_STRING: return .string
        default: return .other
        }
    }

    /// Refuses data stored outside this file (external raw-data files, virtual
    /// datasets): reading them would make SegKit open files a model names.
    func requireStoredInFile() throws {
        let plist = try checkID(H5Dget_create_plist(id), file.path, path, "has no creation properties")
        defer { H5Pclose(plist) }
        if H5Pget_layout(plist) == H5D_VIRTUAL {
            throw HDF5Error(file: file.path, object: path, "is a virtual dataset (data drawn from other files); refused")
        }
        if H5Pget_external_count(plist) > 0 {
            throw HDF5Error(file: file.path, object: path, "keeps its data in external files; refused")
        }
    }

    private func read<T>(_ memType: hid_t, zero: T, limit: Int) throws -> [T] {
        let klass = try elementClass()
        guard klass == .float || klass == .integer else {
            throw HDF5Error(file: file.path, object: path, "holds \(klass) values, expected numbers")
        }
        try requireStoredInFile()
        let count = try shape().reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard count >= 0, count <= limit else {
            throw HDF5Error(file: file.path, object: path, "declares \(try shape()) = \(count) elements, over the limit of \(limit)")
        }
        var values = [T](repeating: zero, count: count)
        if count > 0 {
            let status = values.withUnsafeMutableBytes {
                H5Dread(id, memType, segkit_h5s_all(), segkit_h5s_all(), segkit_h5p_default(), $0.baseAddress!)
            }
            try check(status, file.path, path, "cannot be read (damaged or truncated data)")
        }
        return values
    }

    /// Every element as float32, row-major. `limit` bounds the element count before allocating.
    /// - Throws: `HDF5Error` when the elements are not numbers, the data lives
    ///   outside the file (external or virtual), the count exceeds `limit`, or
    ///   the data is damaged or truncated.
    public func readFloats(limit: Int = 1 << 31) throws -> [Float] {
        try read(segkit_h5t_native_float(), zero: Float(0), limit: limit)
    }

    /// Every element as float64, row-major; `limit` bounds the element count before allocating.
    /// - Throws: `HDF5Error` as `readFloats(limit:)` does.
    public func readDoubles(limit: Int = 1 << 31) throws -> [Double] {
        try read(segkit_h5t_native_double(), zero: Double(0), limit: limit)
    }

    /// Every element as a 64-bit integer, row-major; `limit` bounds the element count before allocating.
    /// - Throws: `HDF5Error` as `readFloats(limit:)` does.
    public func readInt64s(limit: Int = 1 << 31) throws -> [Int64] {
        try read(segkit_h5t_native_int64(), zero: Int64(0), limit: limit)
    }

    /// Rows `rows` of the first axis as float32, row-major (a hyperslab read:
    /// only those rows leave the file).
    /// - Throws: `HDF5Error` when the rows lie outside the shape or cannot be read.
    public func readFloats(rows: Range<Int>) throws -> [Float] {
        let perRow = try rowLength(checking: rows)
        var values = [Float](repeating: 0, count: rows.count * perRow)
        guard !values.isEmpty else { return values }
        try withRowSelection(rows) { memSpace, fileSpace in
            let status = values.withUnsafeMutableBytes {
                H5Dread(id, segkit_h5t_native_float(), memSpace, fileSpace, segkit_h5p_default(), $0.baseAddress!)
            }
            try check(status, file.path, path, "rows \(rows) cannot be read")
        }
        return values
    }

    /// Writes `values` (row-major, float32) to rows `rows` of the first axis: a
    /// hyperslab write, so a large output is written a batch at a time.
    /// - Throws: `HDF5Error` when the rows lie outside the shape or the values do not fill them.
    public func writeFloats(rows: Range<Int>, _ values: [Float]) throws {
        let perRow = try rowLength(checking: rows)
        guard values.count == rows.count * perRow else {
            throw HDF5Error(file: file.path, object: path, "\(values.count) values do not fill rows \(rows) of shape \(try shape())")
        }
        guard !values.isEmpty else { return }
        try withRowSelection(rows) { memSpace, fileSpace in
            let status = values.withUnsafeBytes {
                H5Dwrite(id, segkit_h5t_native_float(), memSpace, fileSpace, segkit_h5p_default(), $0.baseAddress!)
            }
            try check(status, file.path, path, "rows \(rows) cannot be written")
        }
    }

    /// Values per row of the first axis, after checking that `rows` lie inside it.
    private func rowLength(checking rows: Range<Int>) throws -> Int {
        let shape = try shape()
        guard let n = shape.first, rows.lowerBound >= 0, rows.upperBound <= n else {
            throw HDF5Error(file: file.path, object: path, "rows \(rows) are outside shape \(shape)")
        }
        return shape.dropFirst().reduce(1, *)
    }

    /// Runs `body(memorySpace, fileSpace)` with rows `rows` selected in the file
    /// and a memory space of their shape: what a row-wise read and write share.
    private func withRowSelection(_ rows: Range<Int>, _ body: (hid_t, hid_t) throws -> Void) throws {
        let shape = try shape()
        let fileSpace = try checkID(H5Dget_space(id), file.path, path, "has no dataspace")
        defer { H5Sclose(fileSpace) }
        var start = [hsize_t](repeating: 0, count: shape.count), count = shape.map { hsize_t($0) }
        start[0] = hsize_t(rows.lowerBound)
        count[0] = hsize_t(rows.count)
        try check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil), file.path, path, "bad row selection")
        let memSpace = H5Screate_simple(Int32(count.count), &count, nil)
        defer { H5Sclose(memSpace) }
        try body(memSpace, fileSpace)
    }
}
