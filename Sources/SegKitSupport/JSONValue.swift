import SegKitSupport
import Foundation

/// A parsed JSON document (Keras configs), with the small accessors the
/// importer needs. Decoding is bounded: see `JSONValue.parse`.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// An object's member `key`; nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    /// The value as the Swift type it holds, or nil when it holds another.
    public var string: String? { if case let .string(s) = self { return s }; return nil }
    /// The value when it is a number, else nil.
    public var double: Double? { if case let .number(n) = self { return n }; return nil }
    /// The value when it is a boolean, else nil.
    public var bool: Bool? { if case let .bool(b) = self { return b }; return nil }
    /// The value when it is an array, else nil.
    public var array: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    /// The value when it is an object, else nil.
    public var object: [String: JSONValue]? { if case let .object(o) = self { return o }; return nil }
    /// Whether the value is JSON null.
    public var isNull: Bool { self == .null }

    /// An integral number.
    public var int: Int? {
        guard let d = double, d.rounded() == d, abs(d) < 1e15 else { return nil }
        return Int(d)
    }

    /// Limits on documents SegKit accepts: a Keras config is far below both.
    public static let maxBytes = 64 << 20
    /// The deepest nesting of arrays and objects accepted.
    public static let maxDepth = 200

    /// Parses `data`, refusing oversized or absurdly nested documents before
    /// handing them to Foundation's parser.
    /// - Parameters:
    ///   - data: UTF-8 JSON text (RFC 8259).
    ///   - source: the file (or the part of one) it came from, for messages.
    /// - Throws: `FileError` naming `source` when the text is over `maxBytes`,
    ///   nests deeper than `maxDepth` or is not JSON.
    public static func parse(_ data: Data, source: String) throws -> JSONValue {
        guard data.count <= maxBytes else {
            throw FileError(file: source, "the JSON config is \(data.count) bytes, over the \(maxBytes)-byte limit")
        }
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in data {
            if inString {
                if escaped { escaped = false } else if byte == 0x5C { escaped = true } else if byte == 0x22 { inString = false }
                continue
            }
            switch byte {
            case 0x22: inString = true
            case 0x5B, 0x7B: depth += 1; deepest = max(deepest, depth)
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
            if deepest > maxDepth {
                throw FileError(file: source, "the JSON config nests deeper than \(maxDepth) levels")
            }
        }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw FileError(file: source, "the config is not valid JSON (\(error.localizedDescription))")
        }
    }
}

extension JSONValue: Decodable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}
