import SegKitSupport
import SegKitEngine

/// BatchNormalization, LayerNormalization and GroupNormalization over the last
/// (channel) axis, read from a config and written back as Keras 3's.
enum KerasNormalizationLayers {
    static let readers: [String: KerasLayerFactory.Reader] = [
        "BatchNormalization": readBatchNormalization, "LayerNormalization": readLayerNormalization,
        "GroupNormalization": readGroupNormalization,
    ]

    static func readBatchNormalization(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let rank = inputShapes.first?.count ?? 0
        let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
        guard axes.count == 1, axes[0] == -1 || axes[0] == rank - 1 else {
            throw c.unsupported("axis", "\(axes) (only the last, channel axis)")
        }
        let channels = try c.channels(inputShapes)
        return try BatchNormalization(
            name: c.spec.name, channels: channels, momentum: Float(try c.double("momentum", default: 0.99)),
            epsilon: Float(try c.double("epsilon", default: 1e-3)),
            gamma: try c.bool("scale", default: true) ? Tensor(repeating: 1, shape: [channels]) : nil,
            beta: try c.bool("center", default: true) ? try c.weight([channels]) : nil)
    }

    static func readLayerNormalization(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let rank = inputShapes.first?.count ?? 0
        let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
        guard axes == [-1] || axes == [rank - 1] else { throw c.unsupported("axis", "\(axes) (only the last axis)") }
        if try c.bool("rms_scaling", default: false) { throw c.unsupported("rms_scaling", "true") }
        let channels = try c.channels(inputShapes)
        return try LayerNormalization(name: c.spec.name, channels: channels, epsilon: Float(try c.double("epsilon", default: 1e-3)),
                                      gamma: try c.bool("scale", default: true) ? try c.weight([channels]) : nil,
                                      beta: try c.bool("center", default: true) ? try c.weight([channels]) : nil)
    }

    /// keras/src/layers/normalization/group_normalization.py: `groups` −1 is one
    /// group per channel (instance normalization), as Keras's `build` reads it.
    static func readGroupNormalization(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let rank = inputShapes.first?.count ?? 0
        let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
        guard axes == [-1] || axes == [rank - 1] else { throw c.unsupported("axis", "\(axes) (only the last axis)") }
        let channels = try c.channels(inputShapes)
        let requested = try c.int("groups", default: 32)
        let groups = requested == -1 ? channels : requested
        guard groups >= 1, channels % groups == 0 else {
            throw c.unsupported("groups", "\(requested) (must divide the input's \(channels) channels)")
        }
        return try GroupNormalization(name: c.spec.name, channels: channels, groups: groups,
                                      epsilon: Float(try c.double("epsilon", default: 1e-3)),
                                      gamma: try c.bool("scale", default: true) ? try c.weight([channels]) : nil,
                                      beta: try c.bool("center", default: true) ? try c.weight([channels]) : nil)
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) -> String? {
        switch layer {
        case let l as BatchNormalization:
            c.merge(["axis": -1, "momentum": .float(l.momentum), "epsilon": .float(l.epsilon),
                     "center": .bool(l.beta != nil), "scale": .bool(l.gamma != nil)]) { $1 }
            return "BatchNormalization"
        case let l as LayerNormalization:
            c.merge(["axis": -1, "epsilon": .float(l.epsilon), "center": .bool(l.beta != nil), "scale": .bool(l.gamma != nil)]) { $1 }
            return "LayerNormalization"
        case let l as GroupNormalization:
            c.merge(["groups": .int(l.groups), "axis": -1, "epsilon": .float(l.epsilon),
                     "center": .bool(l.beta != nil), "scale": .bool(l.gamma != nil)]) { $1 }
            return "GroupNormalization"
        default:
            return nil
        }
    }
}
