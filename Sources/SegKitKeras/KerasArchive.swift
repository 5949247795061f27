import SegKitSupport
import Foundation
import HDF5
import ZIPFoundation

/// A Keras 3 `.keras` archive: a zip with `config.json`, `metadata.json` and
/// `model.weights.h5` (Keras 3's saving_lib), plus the side entries a caller
/// names. Only those entries are read; nothing is extracted to a path the
/// archive names, entries with absolute or `..` paths are an error, and every
/// entry's decompressed size is bounded while it is read.
struct KerasArchive {
    let path: String
    let config: Data
    let metadata: Data?
    /// The weights, copied to a scratch file for libhdf5 (gone when the last handle closes).
    let weights: ScratchFile
    /// The side entries asked for that the archive has, likewise copied out.
    let sideEntries: [String: ScratchFile]

    static let entryLimit = 2 << 30
    static let configLimit = 64 << 20

    /// - Throws: `KerasImportError.archive` for an unreadable archive, a
    ///   missing Keras entry, a hostile entry path or an entry over its limit.
    init(path: String, sideEntries names: [String] = []) throws {
        self.path = path
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw KerasImportError.archive(file: path, message: "not a readable .keras (zip) archive: \(error.localizedDescription)")
        }
        for entry in archive where entry.path.hasPrefix("/") || entry.path.split(separator: "/").contains("..") {
            throw KerasImportError.archive(file: path, message: "entry '\(entry.path)' has an absolute or '..' path; refused")
        }
        config = try Self.read(archive, "config.json", limit: Self.configLimit, file: path)
        metadata = archive["metadata.json"] == nil ? nil : try Self.read(archive, "metadata.json", limit: 1 << 20, file: path)
        guard let entry = archive["model.weights.h5"] else {
            throw KerasImportError.archive(file: path, message: "has no model.weights.h5 entry")
        }
        weights = try Self.extractToScratchFile(archive, entry, file: path)
        var side: [String: ScratchFile] = [:]
        for name in names { side[name] = try archive[name].map { try Self.extractToScratchFile(archive, $0, file: path) } }
        sideEntries = side
    }

    /// Streams one entry into a scratch file, bounding its size.
    private static func extractToScratchFile(_ archive: Archive, _ entry: Entry, file path: String) throws -> ScratchFile {
        let result: ScratchFile
        do { result = try ScratchFile() } catch {
            throw KerasImportError.archive(file: path, message: "cannot unpack \(entry.path): \(error)")
        }
        var written = 0
        do {
            _ = try archive.extract(entry, skipCRC32: false) { chunk in
                written += chunk.count
                if written > Self.entryLimit { throw KerasImportError.archive(file: path, message: "\(entry.path) decompresses to more than \(Self.entryLimit) bytes; refused") }
                try chunk.withUnsafeBytes { try result.append($0) }
            }
        } catch let e as KerasImportError {
            throw e
        } catch {
            throw KerasImportError.archive(file: path, message: "\(entry.path) cannot be decompressed: \(error.localizedDescription)")
        }
        return result
    }

    private static func read(_ archive: Archive, _ name: String, limit: Int, file: String) throws -> Data {
        guard let entry = archive[name] else { throw KerasImportError.archive(file: file, message: "has no \(name) entry") }
        var data = Data()
        do {
            _ = try archive.extract(entry, skipCRC32: false) { chunk in
                guard data.count + chunk.count <= limit else {
                    throw KerasImportError.archive(file: file, message: "\(name) decompresses to more than \(limit) bytes; refused")
                }
                data.append(chunk)
            }
        } catch let e as KerasImportError {
            throw e
        } catch {
            throw KerasImportError.archive(file: file, message: "\(name) cannot be decompressed: \(error.localizedDescription)")
        }
        return data
    }

    /// True when the file starts with a zip signature.
    static func isZip(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let magic = (try? h.read(upToCount: 4)) ?? Data()
        return magic == Data([0x50, 0x4B, 0x03, 0x04])
    }
}
