import SegKitSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private temporary file for data that lives only as long as this process
/// needs it: weights unpacked from a `.keras` archive, a checkpoint's parts
/// before they are zipped, a spilled feature cache. Removed when the object goes.
///
/// A killed process removes nothing (`SIGKILL` runs no `deinit`), so the name
/// carries the process id, and making a scratch file removes the ones in the
/// same folder whose process has ended. (An unlinked file reached through
/// `/proc/self/fd` would need no clean-up, but libhdf5 resolves that link to
/// the deleted name and refuses to open it.)
public final class ScratchFile: @unchecked Sendable {
    private let path: String
    private let descriptor: Int32
    static let prefix = "segkit-scratch-"

    /// Creates an empty file only this user can read, in `directory`.
    /// - Throws: `FileError` when the file cannot be created there.
    public init(directory: String = NSTemporaryDirectory()) throws {
        let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        removeFilesOfEndedProcesses(in: folder, prefix: Self.prefix)
        path = folder + "/" + Self.prefix + "\(getpid())-\(UUID().uuidString)"
        descriptor = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw FileError(file: folder, "cannot create a scratch file there: \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    /// Calls `body` with the file's path, while this object surely lives (a file
    /// libhdf5 opened there stays readable after, through its own descriptor).
    public func withPath<R>(_ body: (String) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(path) }
    }

    /// The file's size in bytes now.
    public var size: Int {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Appends `bytes` (for data produced in pieces, like an archive entry).
    /// - Throws: `FileError` when the disk refuses the write.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { throw FileError(file: path, "cannot be written: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// `count` bytes from `offset` (fewer at the end of the file).
    /// - Throws: `FileError` when the read fails.
    public func read(offset: Int, count: Int) throws -> Data {
        var data = Data(count: count)
        var done = 0
        try data.withUnsafeMutableBytes { buffer in
            while done < count {
                let n = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
                guard n >= 0 else { throw FileError(file: path, "cannot be read: \(String(cString: strerror(errno)))") }
                if n == 0 { break }
                done += n
            }
        }
        return data.prefix(done)
    }
}

/// Removes the files in `folder` named `prefix<pid>-…` whose process no longer
/// runs: what killed SegKit processes left behind.
public func removeFilesOfEndedProcesses(in folder: String, prefix: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
    for name in names where name.hasPrefix(prefix) {
        guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid != getpid() else { continue }
        // kill(pid, 0) delivers nothing; ESRCH means there is no such process.
        if kill(pid, 0) != 0 && errno == ESRCH {
            unlink(folder + "/" + name)
        }
    }
}
