import SegKitSupport
import CZlibGzip
import Foundation

/// An IDX file (MNIST / Fashion-MNIST), optionally gzip-compressed: a big-endian
/// header (magic 0x0000_08_NN with NN the rank) and unsigned bytes, the format
/// of LeCun and Cortes' MNIST page (yann.lecun.com/exdb/mnist), which
/// Fashion-MNIST reuses.
public struct IDXFile {
    /// The sizes in the header, outermost first: [60000, 28, 28] for Fashion-MNIST's training images,
    /// [60000] for its labels.
    public let dimensions: [Int]
    /// The data after the header, row-major: the product of `dimensions` bytes.
    public let bytes: [UInt8]

    /// Reads `path`, gunzipping it when it is gzip-compressed (through zlib).
    ///
    /// - Throws: `DataError.badFile` naming `path`: it cannot be opened, its gzip data is
    ///   corrupt or decompresses to over 1 GiB, it is not an IDX file of unsigned bytes
    ///   (type 0x08) of rank 1 to 4, or its size disagrees with its header.
    public init(path: String) throws {
        let data = try IDXFile.readAll(path)
        guard data.count >= 4, data[0] == 0, data[1] == 0, data[2] == 0x08 else {
            throw DataError.badFile(path, "not an IDX file of unsigned bytes (magic \(Array(data.prefix(4))))")
        }
        let rank = Int(data[3])
        guard rank >= 1, rank <= 4, data.count >= 4 + 4 * rank else { throw DataError.badFile(path, "truncated IDX header") }
        var dims: [Int] = []
        for i in 0..<rank {
            let o = 4 + 4 * i
            dims.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
        }
        let count = dims.reduce(1, *)
        guard data.count == 4 + 4 * rank + count else {
            throw DataError.badFile(path, "IDX header declares \(dims) = \(count) bytes, the file holds \(data.count - 4 - 4 * rank)")
        }
        self.dimensions = dims
        self.bytes = Array(data[(4 + 4 * rank)...])
    }

    /// The file's bytes, gunzipped through zlib when it is gzip-compressed.
    static func readAll(_ path: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else { throw DataError.badFile(path, "cannot be opened") }
        defer { gzclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = gzread(file, &chunk, UInt32(chunk.count))
            if n < 0 { throw DataError.badFile(path, "corrupt gzip data") }
            if n == 0 { break }
            out += chunk[0..<Int(n)]
            if out.count > 1 << 30 { throw DataError.badFile(path, "decompresses to more than 1 GiB") }
        }
        return out
    }
}

/// A fault in the data, naming the file, the sample or what is missing (SegKit's error
/// convention: one line, `SegKitError`).
public enum DataError: SegKitError, Equatable {
    /// A file that cannot be read or holds what SegKit cannot use: (the file, what is wrong).
    case badFile(String, String)
    /// A sample whose content is refused (a class id out of range, a size that disagrees):
    /// (the sample's name, what is wrong).
    case badSample(String, String)
    /// A source, layout file or usable sample that is not there: the whole message.
    case notFound(String)

    /// "FILE: MESSAGE", "SAMPLE: MESSAGE", or the message alone.
    public var errorDescription: String? {
        switch self {
        case let .badFile(f, m): return "\(f): \(m)"
        case let .badSample(where_, m): return "\(where_): \(m)"
        case let .notFound(m): return m
        }
    }
}
