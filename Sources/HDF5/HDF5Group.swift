import CHDF5

/// A group: named children (groups and datasets) and attributes.
public final class HDF5Group: HDF5AttributeHolder {
    /// The open file the group is in (kept open while the group is alive).
    public let file: HDF5File
    /// The group's absolute path in the file ("/" for the root, "/model_weights/conv1").
    public let path: String
    let id: hid_t

    init(file: HDF5File, path: String) throws {
        self.file = file
        self.path = path
        self.id = try checkID(H5Gopen2(file.id, path, segkit_h5p_default()), file.path, path, "is not a group that can be opened")
    }

    deinit { H5Gclose(id) }

    var objectID: hid_t { id }

    /// How a member is linked: only `hard` links are followed; `soft`,
    /// `external` and `userDefined` ones could send SegKit to another path or file.
    public enum LinkKind: Equatable, Sendable { case hard, soft, external, userDefined }

    /// Names of the links in this group, in name order.
    /// - Throws: `HDF5Error` when the group's members cannot be listed.
    public func childNames() throws -> [String] {
        var info = H5G_info_t()
        try check(H5Gget_info(id, &info), file.path, path, "cannot list its members")
        var names: [String] = []
        for i in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, segkit_h5p_default())
            guard length >= 0 else { throw HDF5Error(file: file.path, object: path, "cannot read the name of member \(i)") }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            _ = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, segkit_h5p_default())
            names.append(String(cString: buffer))
        }
        return names
    }

    /// How member `name` is linked, read without following the link.
    /// - Throws: `HDF5Error` when there is no such member.
    public func linkKind(_ name: String) throws -> LinkKind {
        var info = H5L_info_t()
        try check(H5Lget_info(id, name, &info, segkit_h5p_default()), file.path, joinPath(path, name), "no such member")
        switch info.type {
        case H5L_TYPE_HARD: return .hard
        case H5L_TYPE_SOFT: return .soft
        case H5L_TYPE_EXTERNAL: return .external
        default: return .userDefined
        }
    }

    /// Whether the group has a link `name`, of any kind (the link is not followed).
    public func contains(_ name: String) -> Bool {
        H5Lexists(id, name, segkit_h5p_default()) > 0
    }

    /// Whether a member is a group (false for a dataset). Only hard links are
    /// followed: SegKit never lets a file send it to another file or path.
    /// - Throws: `HDF5Error` when the member is missing, not a hard link, or cannot be inspected.
    public func isGroup(_ name: String) throws -> Bool {
        try requireHardLink(name)
        var info = H5O_info_t()
        try check(H5Oget_info_by_name2(id, name, &info, UInt32(H5O_INFO_BASIC), segkit_h5p_default()),
                  file.path, joinPath(path, name), "cannot be inspected")
        return info.type == H5O_TYPE_GROUP
    }

    func requireHardLink(_ name: String) throws {
        guard contains(name) else { throw HDF5Error(file: file.path, object: joinPath(path, name), "is missing") }
        let kind = try linkKind(name)
        guard kind == .hard else {
            throw HDF5Error(file: file.path, object: joinPath(path, name),
                            "is a \(kind) link; SegKit follows only ordinary (hard) links and never opens another file or path a model file points to")
        }
    }

    /// Opens member `name` as a group.
    /// - Throws: `HDF5Error` when it is missing, not a hard link, or not a group.
    public func group(_ name: String) throws -> HDF5Group {
        try requireHardLink(name)
        return try HDF5Group(file: file, path: joinPath(path, name))
    }

    /// Opens member `name` as a dataset (its data is read only when asked).
    /// - Throws: `HDF5Error` when it is missing, not a hard link, or not a dataset.
    public func dataset(_ name: String) throws -> HDF5Dataset {
        try requireHardLink(name)
        return try HDF5Dataset(file: file, path: joinPath(path, name))
    }

    /// Follows a slash-separated path of hard links below this group
    /// ("conv1/kernel:0", as Keras 2's `weight_names` give them).
    /// - Throws: `HDF5Error` when the path is empty or a step is missing, not
    ///   a hard link, or of the wrong kind.
    public func dataset(atPath relative: String) throws -> HDF5Dataset {
        var parts = relative.split(separator: "/").map(String.init)
        guard let last = parts.popLast() else { throw HDF5Error(file: file.path, object: path, "empty dataset path") }
        var g = self
        for p in parts { g = try g.group(p) }
        return try g.dataset(last)
    }

    /// Follows a slash-separated path of hard links below this group; "" is the group itself.
    /// - Throws: `HDF5Error` when a step is missing, not a hard link, or not a group.
    public func group(atPath relative: String) throws -> HDF5Group {
        var g = self
        for p in relative.split(separator: "/") { g = try g.group(String(p)) }
        return g
    }

    /// Creates member group `name` and returns it opened.
    /// - Throws: `HDF5Error` when the name is taken or the group cannot be created.
    @discardableResult
    public func createGroup(_ name: String) throws -> HDF5Group {
        let child = joinPath(path, name)
        let gid = try checkID(H5Gcreate2(id, name, segkit_h5p_default(), segkit_h5p_default(), segkit_h5p_default()),
                              file.path, child, "cannot be created")
        H5Gclose(gid)
        return try HDF5Group(file: file, path: child)
    }

    /// Writes a float32 dataset of `shape` from row-major `floats` ([] shape: a scalar).
    /// - Throws: `HDF5Error` when `floats` does not fill `shape`, the name is
    ///   taken, or the dataset cannot be created or written.
    public func writeDataset(_ name: String, shape: [Int], floats: [Float]) throws {
        try writeDataset(name, shape: shape, type: segkit_h5t_native_float(), count: floats.count) { buffer in
            floats.withUnsafeBytes { buffer($0.baseAddress!) }
        }
    }

    /// Creates a float32 dataset of `shape` to be filled a slab of rows at a
    /// time with `HDF5Dataset.writeFloats(rows:_:)` (outputs larger than memory).
    /// - Throws: `HDF5Error` when the name is taken or the shape is not valid.
    public func createFloatDataset(_ name: String, shape: [Int]) throws -> HDF5Dataset {
        let object = joinPath(path, name)
        var dims = shape.map { hsize_t($0) }
        guard !dims.isEmpty else { throw HDF5Error(file: file.path, object: object, "a dataset written by rows needs a first axis") }
        let space = try checkID(H5Screate_simple(Int32(dims.count), &dims, nil), file.path, object, "bad dataspace \(shape)")
        defer { H5Sclose(space) }
        let dset = try checkID(H5Dcreate2(id, name, segkit_h5t_native_float(), space, segkit_h5p_default(), segkit_h5p_default(),
                                          segkit_h5p_default()), file.path, object, "cannot be created")
        H5Dclose(dset)
        return try HDF5Dataset(file: file, path: object)
    }

    /// Writes an unsigned 8-bit dataset of `shape` (images as files store them).
    /// - Throws: `HDF5Error` as the float32 `writeDataset` does.
    public func writeDataset(_ name: String, shape: [Int], bytes: [UInt8]) throws {
        try writeDataset(name, shape: shape, type: segkit_h5t_native_uint8(), count: bytes.count) { buffer in
            bytes.withUnsafeBytes { buffer($0.baseAddress!) }
        }
    }

    /// Writes a 64-bit integer dataset of `shape`.
    /// - Throws: `HDF5Error` as the float32 `writeDataset` does.
    public func writeDataset(_ name: String, shape: [Int], int64s: [Int64]) throws {
        try writeDataset(name, shape: shape, type: segkit_h5t_native_int64(), count: int64s.count) { buffer in
            int64s.withUnsafeBytes { buffer($0.baseAddress!) }
        }
    }

    private func writeDataset(_ name: String, shape: [Int], type: hid_t, count: Int,
                              _ withBytes: ((UnsafeRawPointer) -> herr_t) -> herr_t) throws {
        let object = joinPath(path, name)
        guard shape.reduce(1, *) == count else {
            throw HDF5Error(file: file.path, object: object, "shape \(shape) does not hold \(count) values")
        }
        var dims = shape.map { hsize_t($0) }
        // A rank-0 shape is a scalar (Keras stores Normalization's count that way).
        let space = try checkID(dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil),
                                file.path, object, "bad dataspace \(shape)")
        defer { H5Sclose(space) }
        let dset = try checkID(H5Dcreate2(id, name, type, space, segkit_h5p_default(), segkit_h5p_default(), segkit_h5p_default()),
                               file.path, object, "cannot be created")
        defer { H5Dclose(dset) }
        if count > 0 {
            let status = withBytes { H5Dwrite(dset, type, segkit_h5s_all(), segkit_h5s_all(), segkit_h5p_default(), $0) }
            try check(status, file.path, object, "cannot be written")
        }
    }
}
