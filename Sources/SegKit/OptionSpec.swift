import SegKitSupport
import Foundation

/// A malformed option value: which option, its whole value, the bad part and
/// what was expected there.
public struct SpecError: SegKitError, Equatable {
    /// The option's name, e.g. "--crop".
    public let option: String
    /// The option's whole value, as given.
    public let text: String
    /// The part refused (the whole value when all of it is).
    public let part: String
    /// What was expected there: the message's end.
    public let expected: String

    /// `--crop '3,x': 'x' is not a crop width: …`, or `--crop 'x': …` when the part is the whole value.
    public var errorDescription: String? {
        part == text ? "\(option) '\(text)': \(expected)" : "\(option) '\(text)': '\(part)' \(expected)"
    }
}

/// The one parser of SegKit's small option languages (`--crop 256,256`,
/// `--augment flip,scale:0.5-2.0`, `--class-weights 1,2,0.5`, `--set depth=3`,
/// `fashion-canvas:count=8,items=1-3`, `--input-scale mean-std:0.5,0.25`): comma
/// lists, KEY=VALUE settings, A-B ranges and numbers in ranges. Every error
/// quotes the option, its value and the bad part.
public struct OptionSpec: Sendable {
    /// The option the value belongs to, for messages ("--augment").
    public let option: String
    /// The option's whole value, the default of what `items(of:)` splits.
    public let text: String

    /// A parser for `text`, the value given to `option`.
    public init(_ option: String, _ text: String) {
        self.option = option
        self.text = text
    }

    /// An error about `part` of the value.
    public func fail(_ part: some StringProtocol, _ expected: String) -> SpecError {
        SpecError(option: option, text: text, part: String(part), expected: expected)
    }

    /// The items between `separator`s of `part` (default: the whole value).
    ///
    /// - Throws: `SpecError` for an empty value or an empty item.
    public func items(of part: String? = nil, separator: Character = ",") throws -> [String] {
        let whole = part ?? text
        let items = whole.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !whole.isEmpty, !items.contains(where: \.isEmpty) else { throw fail(whole, whole.isEmpty ? "is empty" : "has an empty item") }
        return items
    }

    /// A whole number in `range`.
    ///
    /// - Throws: `SpecError` naming `what` and the range.
    public func int(_ part: String, in range: ClosedRange<Int>, _ what: String) throws -> Int {
        guard let v = Int(part), range.contains(v) else { throw fail(part, "is not \(what): a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return v
    }

    /// A finite number in `range`.
    ///
    /// - Throws: `SpecError` naming `what` and the range.
    public func float(_ part: String, in range: ClosedRange<Float>, _ what: String) throws -> Float {
        guard let v = Float(part), v.isFinite, range.contains(v) else {
            throw fail(part, "is not \(what): a number from \(range.lowerBound.formatted) to \(range.upperBound.formatted)")
        }
        return v
    }

    /// `KEY=VALUE` (the value may be empty, the key may not).
    ///
    /// - Throws: `SpecError` when there is no `=` or no key.
    public func setting(_ part: String) throws -> (key: String, value: String) {
        guard let eq = part.firstIndex(of: "="), eq != part.startIndex else { throw fail(part, "is not KEY=VALUE") }
        return (String(part[..<eq]), String(part[part.index(after: eq)...]))
    }

    /// One `--set` value as its KEY=VALUE pairs: `init=glorot,dropout=0` is two
    /// settings. A comma starts a new pair only outside brackets and when what
    /// follows it begins with `KEY=`, so a YAML list value stays whole
    /// (`stages=[block1,block2]`, `unfreeze=a,b` is one setting of value `a,b`).
    ///
    /// - Throws: `SpecError` when a pair has no `=` or no key.
    public func settings(_ part: String) throws -> [(key: String, value: String)] {
        var pieces: [String] = [], current = "", depth = 0
        let chars = Array(part)
        for (i, ch) in chars.enumerated() {
            if "[{(".contains(ch) { depth += 1 } else if "]})".contains(ch) { depth = max(depth - 1, 0) }
            if ch == ",", depth == 0, Self.startsWithKey(chars[(i + 1)...]) {
                pieces.append(current)
                current = ""
            } else {
                current.append(ch)
            }
        }
        pieces.append(current)
        return try pieces.map(setting)
    }

    /// Whether `rest` begins with an identifier followed by `=`.
    private static func startsWithKey(_ rest: ArraySlice<Character>) -> Bool {
        guard let first = rest.first, first.isLetter || first == "_" else { return false }
        for ch in rest {
            if ch == "=" { return true }
            if !(ch.isLetter || ch.isNumber || ch == "_") { return false }
        }
        return false
    }

    /// `A-B` (or `A` alone, meaning `A-A`) as two strings.
    ///
    /// - Throws: `SpecError` for more than one `-` or an empty side.
    public func range(_ part: String) throws -> (String, String) {
        let sides = part.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(sides.count), !sides.contains(where: \.isEmpty) else { throw fail(part, "is not a range A-B") }
        return (sides[0], sides.count == 2 ? sides[1] : sides[0])
    }
}

extension Float {
    /// Without a trailing ".0" for whole numbers.
    var formatted: String { self == rounded() && abs(self) < 1e9 ? String(Int(self)) : "\(self)" }
}
