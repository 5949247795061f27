import SegKitSupport
import SegKitEngine

/// Max and average pooling, windowed and global, read from a config and
/// written back as Keras 3's.
enum KerasPoolingLayers {
    static let readers: [String: KerasLayerFactory.Reader] = [
        "MaxPooling2D": readPooling2D, "MaxPool2D": readPooling2D, "AveragePooling2D": readPooling2D, "AvgPool2D": readPooling2D,
        "GlobalMaxPooling2D": readGlobalPooling2D, "GlobalMaxPool2D": readGlobalPooling2D,
        "GlobalAveragePooling2D": readGlobalPooling2D, "GlobalAvgPool2D": readGlobalPooling2D,
    ]

    static func readPooling2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let pool = try c.positivePair("pool_size", default: (2, 2))
        return try Pooling2D(name: c.spec.name, c.spec.className.hasPrefix("Max") ? .max : .average, poolSize: pool,
                             strides: c.isNull("strides") ? pool : try c.positivePair("strides"), padding: try c.padding())
    }

    static func readGlobalPooling2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        GlobalPooling2D(name: c.spec.name, c.spec.className.hasPrefix("GlobalMax") ? .max : .average,
                        keepDims: try c.bool("keepdims", default: false))
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) -> String? {
        switch layer {
        case let l as Pooling2D:
            c.merge(["pool_size": .pair(l.poolSize), "strides": .pair(l.strides), "padding": .string(l.padding.rawValue),
                     "data_format": "channels_last"]) { $1 }
            return l.reduction == .max ? "MaxPooling2D" : "AveragePooling2D"
        case let l as GlobalPooling2D:
            c.merge(["keepdims": .bool(l.keepDims), "data_format": "channels_last"]) { $1 }
            return l.reduction == .max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D"
        default:
            return nil
        }
    }
}
