import SegKitSupport
import SegKitEngine

/// Layers that move or resample values without weights (Flatten, Reshape,
/// Permute, ZeroPadding2D, Cropping2D, UpSampling2D, Resizing, CenterCrop),
/// read from a config and written back as Keras 3's.
enum KerasReshapingLayers {
    static let readers: [String: KerasLayerFactory.Reader] = [
        "Flatten": readFlatten, "Reshape": readReshape, "Permute": readPermute,
        "ZeroPadding2D": readZeroPadding2D, "Cropping2D": readCropping2D, "UpSampling2D": readUpSampling2D,
        "Resizing": readResizing, "CenterCrop": readCenterCrop,
    ]

    static func readFlatten(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        Reshape.flatten(name: c.spec.name)
    }

    static func readReshape(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let maxDimension = KerasLayerFactory.maxDimension
        guard let target = c.value("target_shape")?.array?.map(\.int), !target.isEmpty,
              target.allSatisfy({ $0 != nil && ($0! == -1 || ($0! >= 1 && $0! <= maxDimension)) }) else {
            throw c.unsupported("target_shape", "\(String(describing: c.value("target_shape")))")
        }
        return try Reshape(name: c.spec.name, target: target.map { $0! })
    }

    static func readPermute(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        guard let dims = c.value("dims")?.array?.compactMap(\.int), !dims.isEmpty else { throw c.unsupported("dims", "\(c.value("dims") ?? .null)") }
        return try Permute(name: c.spec.name, dims: dims)
    }

    static func readZeroPadding2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let (rows, cols) = try c.nonNegativeBorders("padding")
        return ZeroPadding2D(name: c.spec.name, rows: rows, cols: cols)
    }

    static func readCropping2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let (rows, cols) = try c.nonNegativeBorders("cropping")
        return Cropping2D(name: c.spec.name, rows: rows, cols: cols)
    }

    static func readUpSampling2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let mode = c.value("interpolation")?.string ?? "nearest"
        guard let interpolation = UpSampling2D.Interpolation(rawValue: mode) else {
            throw c.unsupported("interpolation", mode)
        }
        return try UpSampling2D(name: c.spec.name, size: try c.positivePair("size", default: (2, 2)), interpolation: interpolation)
    }

    static func readResizing(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        for key in ["crop_to_aspect_ratio", "pad_to_aspect_ratio"] where try c.bool(key, default: false) { throw c.unsupported(key, "true") }
        let mode = c.value("interpolation")?.string ?? "bilinear"
        guard let interpolation = UpSampling2D.Interpolation(rawValue: mode) else { throw c.unsupported("interpolation", "'\(mode)'") }
        return try Resizing(name: c.spec.name, height: try c.positive("height"), width: try c.positive("width"), interpolation: interpolation)
    }

    static func readCenterCrop(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        try CenterCrop(name: c.spec.name, height: try c.positive("height"), width: try c.positive("width"))
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) -> String? {
        switch layer {
        case let l as Reshape:
            // The engine's Flatten is a Reshape without a target.
            guard let target = l.target else {
                c["data_format"] = "channels_last"
                return "Flatten"
            }
            c["target_shape"] = .array(target.map { .int($0) })
            return "Reshape"
        case let l as Permute:
            c["dims"] = .array(l.dims.map { .int($0) })
            return "Permute"
        case let l as ZeroPadding2D:
            c.merge(["padding": [.pair(l.rows), .pair(l.cols)], "data_format": "channels_last"]) { $1 }
            return "ZeroPadding2D"
        case let l as Cropping2D:
            c.merge(["cropping": [.pair(l.rows), .pair(l.cols)], "data_format": "channels_last"]) { $1 }
            return "Cropping2D"
        case let l as UpSampling2D:
            c.merge(["size": .pair(l.size), "interpolation": .string(l.interpolation.rawValue), "data_format": "channels_last"]) { $1 }
            return "UpSampling2D"
        case let l as Resizing:
            c.merge(["height": .int(l.height), "width": .int(l.width), "interpolation": .string(l.interpolation.rawValue),
                     "crop_to_aspect_ratio": false, "data_format": "channels_last"]) { $1 }
            return "Resizing"
        case let l as CenterCrop:
            c.merge(["height": .int(l.height), "width": .int(l.width), "data_format": "channels_last"]) { $1 }
            return "CenterCrop"
        default:
            return nil
        }
    }
}
