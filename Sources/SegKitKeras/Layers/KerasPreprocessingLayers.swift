import SegKitSupport
import SegKitEngine

/// Rescaling and Normalization (x·scale + offset; (x − mean) / √variance),
/// read from a config and written back as Keras 3's.
enum KerasPreprocessingLayers {
    static let readers: [String: KerasLayerFactory.Reader] = ["Rescaling": readRescaling, "Normalization": readNormalization]

    static func readRescaling(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        try Rescaling(name: c.spec.name, scale: try c.floats("scale"), offset: try c.floats("offset", default: [0]))
    }

    static func readNormalization(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
        guard axes == [-1] || axes == [(inputShapes.first?.count ?? 0) - 1] else {
            throw c.unsupported("axis", "\(axes) (only the last, channel axis)")
        }
        if c.value("invert")?.bool == true { throw c.unsupported("invert", "true") }
        let channels = try c.channels(inputShapes)
        if let mean = c.value("mean"), !mean.isNull {
            // Statistics given in the config rather than adapted: no weights to read.
            return try normalizationFromConfig(c, channels: channels)
        }
        return try Normalization(name: c.spec.name, mean: try c.weight([channels]), variance: Tensor(repeating: 1, shape: [channels]))
    }

    /// Normalization whose mean and variance are written in the config, as the
    /// Rescaling that computes it (one value stands for every channel).
    private static func normalizationFromConfig(_ c: Options, channels: Int) throws -> Layer {
        let mean = try c.floats("mean"), variance = try c.floats("variance")
        let expand = { (v: [Float]) -> [Float] in v.count == 1 ? [Float](repeating: v[0], count: channels) : v }
        guard expand(mean).count == channels, expand(variance).count == channels else {
            throw c.unsupported("mean/variance", "\(mean.count)/\(variance.count) values for \(channels) channels")
        }
        return try Rescaling(name: c.spec.name, scale: expand(variance).map { 1 / max($0.squareRoot(), 1e-7) },
                             offset: zip(expand(mean), expand(variance)).map { -$0 / max($1.squareRoot(), 1e-7) })
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) -> String? {
        switch layer {
        case let l as Rescaling:
            c["scale"] = l.scale.count == 1 ? .float(l.scale[0]) : .array(l.scale.map { .float($0) })
            c["offset"] = l.offset.count == 1 ? .float(l.offset[0]) : .array(l.offset.map { .float($0) })
            return "Rescaling"
        case is Normalization:
            // The statistics are the layer's weights, written with the others.
            c.merge(["axis": [-1], "mean": .null, "variance": .null, "invert": false]) { $1 }
            return "Normalization"
        default:
            return nil
        }
    }
}
