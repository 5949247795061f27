import SegKitSupport
import SegKitEngine

/// Layers Keras defines in its applications rather than in `keras.layers`:
/// ConvNeXt's LayerScale and InceptionResNetV2's CustomScaleLayer.
enum KerasApplicationLayers {
    static let readers: [String: KerasLayerFactory.Reader] = [
        "LayerScale": readLayerScale,
        // tf_keras registers CustomScaleLayer under the package "Custom".
        "CustomScaleLayer": readCustomScaleLayer, "Custom>CustomScaleLayer": readCustomScaleLayer,
    ]

    /// Where Keras 3 finds each class written here (every other class is in `keras.layers`).
    static let modules: [String: String] = [
        "LayerScale": "keras.src.applications.convnext",
        "CustomScaleLayer": "keras.src.applications.inception_resnet_v2",
    ]

    /// Keras's ConvNeXt layer (module keras.src.applications.convnext; tf_keras writes no module).
    static func readLayerScale(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let channels = try c.positive("projection_dim")
        guard try c.channels(inputShapes) == channels else { throw c.unsupported("projection_dim", "\(channels) for \(inputShapes)") }
        return LayerScale(name: c.spec.name, gamma: try c.weight([channels]))
    }

    /// Keras's InceptionResNetV2 layer: x + scale · residual.
    static func readCustomScaleLayer(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        ScaledResidual(name: c.spec.name, scale: Float(try c.double("scale")))
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) -> String? {
        switch layer {
        case let l as LayerScale:
            c.merge(["init_values": 1e-6, "projection_dim": .int(l.gamma.value.count)]) { $1 }
            return "LayerScale"
        case let l as ScaledResidual:
            c["scale"] = .float(l.scale)
            return "CustomScaleLayer"
        default:
            return nil
        }
    }
}
