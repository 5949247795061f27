import SegKitSupport
import SegKitEngine

/// Dense, read from a config and written back as Keras 3's.
enum KerasDenseLayers {
    static let readers: [String: KerasLayerFactory.Reader] = ["Dense": readDense]

    static func readDense(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        guard let last = inputShapes.first?.last ?? nil else {
            throw KerasImportError.unsupportedLayer(name: c.spec.name, className: c.spec.className, file: c.file,
                                                    reason: "its input's last axis has no fixed size")
        }
        let units = try c.positive("units")
        return try Dense(name: c.spec.name, kernel: try c.weight([last, units]),
                         bias: try c.bool("use_bias", default: true) ? try c.weight([units]) : nil,
                         activation: try c.activation())
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) throws -> String? {
        guard let l = layer as? Dense else { return nil }
        c.merge(["units": .int(l.units), "activation": try kerasActivationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
        return "Dense"
    }
}
