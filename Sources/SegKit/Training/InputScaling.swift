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

    public init(parsing text: String) throws {
        switch text {
        case "unit": self = .unit
        case "raw": self = .raw
        case "symmetric": self = .symmetric
        default:
            let parts = text.split(separator: ":")
            let numbers = parts.count == 2 ? parts[1].split(separator: ",").compactMap { Float($0) } : []
            guard parts.first == "mean-std", numbers.count == 2, numbers[1] > 0 else {
                throw DataError.notFound("--input-scale takes unit, raw, symmetric or mean-std:MEAN,STD, not '\(text)'")
            }
            self = .meanStd(numbers[0], numbers[1])
        }
    }

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

    @inline(__always) public func apply(_ v: Float) -> Float {
        switch self {
        case .unit: return v / 255
        case .raw: return v
        case .symmetric: return v / 127.5 - 1
        case let .meanStd(m, s): return (v / 255 - m) / s
        }
    }
}
