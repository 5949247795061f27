import Foundation

extension JSONValue {
    /// Compact JSON text with sorted keys (deterministic files); integral numbers
    /// are written without a fraction, others with Swift's shortest round-trip form.
    public var jsonText: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(n):
            if n.rounded() == n, abs(n) < 1e15 { return String(Int64(n)) }
            return n.isFinite ? "\(n)" : "null"
        case let .string(s): return JSONValue.quote(s)
        case let .array(a): return "[" + a.map(\.jsonText).joined(separator: ", ") + "]"
        case let .object(o):
            return "{" + o.keys.sorted().map { JSONValue.quote($0) + ": " + o[$0]!.jsonText }.joined(separator: ", ") + "}"
        }
    }

    /// `s` as a JSON string literal, quotes included (RFC 8259, section 7).
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
    public init(nilLiteral: ()) { self = .null }

    /// An integer as a JSON number.
    public static func int(_ i: Int) -> JSONValue { .number(Double(i)) }
    /// A float as a JSON number (widened exactly to `Double`).
    public static func float(_ f: Float) -> JSONValue { .number(Double(f)) }
    /// A pair (a kernel size, a stride) as a two-number array, Keras's form.
    public static func pair(_ p: (Int, Int)) -> JSONValue { [.int(p.0), .int(p.1)] }
}

/// A config value in a message prints as the JSON it was in the file, never as
/// Swift's enum dump.
extension JSONValue: CustomStringConvertible {
    public var description: String { jsonText }
}
