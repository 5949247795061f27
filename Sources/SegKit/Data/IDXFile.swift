import SegKitSupport
import CZlibGzip
import Foundation

/// An IDX file (MNIST / Fashion-MNIST), optionally gzip-compressed: a big-endian
/// header (magic 0x0000_08_NN with NN the rank) and unsigned bytes.
public struct IDXFile {
    public let dimensions: [Int]
    public let bytes: [UInt8]

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

public enum DataError: SegKitError, Equatable {
    case badFile(String, String)
    case badSample(String, String)
    case notFound(String)

    public var errorDescription: String? {
        switch self {
        case let .badFile(f, m): return "\(f): \(m)"
        case let .badSample(where_, m): return "\(where_): \(m)"
        case let .notFound(m): return m
        }
    }
}
