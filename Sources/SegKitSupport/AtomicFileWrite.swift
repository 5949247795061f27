import SegKitSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes through a temporary file beside `path` and renames it into place.
///
/// `rename(2)` replaces `path` in one step, so at every moment the old file or
/// the new one is there, whole: a failed, interrupted or killed write never
/// leaves a partial file under the real name, and a checkpoint being replaced
/// is never missing.
/// The temporary file is synced first, so the rename cannot reach the disk
/// before the data does.
///
/// A killed process leaves its temporary file behind (no `defer` runs on
/// `SIGKILL`); its name carries the writer's process id, and the next write to
/// the same `path` removes those whose writer has ended.
/// - Parameters:
///   - path: the file to create or replace.
///   - write: writes the whole content to the temporary path it is given.
/// - Throws: `FileError` when the folder does not exist or the rename fails;
///   whatever `write` throws (the temporary file is removed first).
public func writeAtomically(_ path: String, _ write: (String) throws -> Void) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    let prefix = ".\(url.lastPathComponent).segkit-"
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        throw FileError(file: path, "cannot be written: the folder \(folder) does not exist")
    }
    removeFilesOfEndedProcesses(in: folder, prefix: prefix)
    let temp = folder + "/" + prefix + "\(getpid())-\(UUID().uuidString)"
    do {
        try write(temp)
        let fd = open(temp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temp, path) == 0 else {
            throw FileError(file: path, "cannot be replaced: \(String(cString: strerror(errno)))")
        }
    } catch {
        try? FileManager.default.removeItem(atPath: temp)
        throw error
    }
}
