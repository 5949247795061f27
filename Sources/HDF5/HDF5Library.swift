import CHDF5

/// One-time library set-up: HDF5 prints its error stack to stderr by default;
/// SegKit reports failures as `HDF5Error`s instead, so it is silenced once,
/// before any other call.
enum HDF5Library {
    static let ready: Bool = {
        _ = H5open()
        segkit_h5_silence_errors()
        return true
    }()
}

/// HDF5 returns negative ids and statuses on failure.
@inline(__always) func check(_ status: herr_t, _ file: String, _ object: String, _ what: @autoclosure () -> String) throws {
    if status < 0 { throw HDF5Error(file: file, object: object, what()) }
}

@inline(__always) func checkID(_ id: hid_t, _ file: String, _ object: String, _ what: @autoclosure () -> String) throws -> hid_t {
    if id < 0 { throw HDF5Error(file: file, object: object, what()) }
    return id
}

func joinPath(_ parent: String, _ name: String) -> String {
    parent == "/" ? "/" + name : parent + "/" + name
}
