import SegKitEngine

/// How raw pixel values become network inputs. Stored with a trained
/// segmenter so evaluation and prediction scale exactly as training did.
public enum InputScaling: Equatable, Sendable, CustomStringConvertible {
    /// value / 255: [0, 1] (the default for 8-bit data).
    case unit
    /// values as they are (0…255): for classifiers with their own Rescaling layer.
    case raw
    /// value / 127.5 − 1: [−1, 1], as MobileNet expects.
    case symmetric
    /// (value / 255 − mean) / std.
    case meanStd(Float, Float)

    /// Reads `--input-scale`: `unit`, `raw`, `symmetric` or `mean-std:MEAN,STD`
    /// (MEAN within ±10⁶, STD from 10⁻⁶ to 10⁶).
    ///
    /// - Throws: `SpecError` quoting the bad part.
    public init(parsing text: String) throws {
        switch text {
        case "unit": self = .unit
        case "raw": self = .raw
        case "symmetric": self = .symmetric
        default:
            let spec = OptionSpec("--input-scale", text)
            guard text.hasPrefix("mean-std:") else { throw spec.fail(text, "is not unit, raw, symmetric or mean-std:MEAN,STD") }
            let numbers = try spec.items(of: String(text.dropFirst(9)))
            guard numbers.count == 2 else { throw spec.fail(text, "is not mean-std:MEAN,STD (e.g. mean-std:0.45,0.22)") }
            self = .meanStd(try spec.float(numbers[0], in: -1e6...1e6, "a mean"), try spec.float(numbers[1], in: 1e-6...1e6, "a standard deviation"))
        }
    }

    /// The `--input-scale` text, which `init(parsing:)` reads back.
    public var description: String {
        switch self {
        case .unit: return "unit"
        case .raw: return "raw"
        case .symmetric: return "symmetric"
        case let .meanStd(m, s): return "mean-std:\(m),\(s)"
        }
    }

    /// Unit scaling, or raw values for a model that rescales its own input.
    public static func defaultScaling(for graph: Graph) -> InputScaling {
        graph.layers.contains { $0 is Rescaling } ? .raw : .unit
    }

    /// One raw value (0…255 for 8-bit sources) as a network input.
    @inline(__always) public func apply(_ v: Float) -> Float {
        switch self {
        case .unit: return v / 255
        case .raw: return v
        case .symmetric: return v / 127.5 - 1
        case let .meanStd(m, s): return (v / 255 - m) / s
        }
    }
}
