import SegKitSupport
import SegKitEngine

/// The Keras 3 class name and config that recreate an engine layer, the inverse
/// of `KerasLayerFactory`. A layer Keras 3 cannot express exactly is an error,
/// never an approximation.
struct KerasLayerConfig {
    let className: String
    let config: [String: JSONValue]
    /// Where Keras 3 finds the class: `keras.layers`, or Keras's own application
    /// module for LayerScale and CustomScaleLayer.
    var module: String { KerasApplicationLayers.modules[className] ?? "keras.layers" }
    var registeredName: JSONValue { module == "keras.layers" ? .null : .string(className) }

    /// Adds a layer's options to the common config entries and returns its Keras
    /// class name; nil when the layer belongs to another family.
    typealias Writer = @Sendable (Layer, String, inout [String: JSONValue]) throws -> String?

    /// Every layer family's writer; the engine layer types they handle do not
    /// overlap, so the first that answers is the only one. Adding a Keras layer:
    /// see `KerasLayerFactory.readers`.
    static let writers: [Writer] = [
        KerasConvolutionLayers.write, KerasDenseLayers.write, KerasNormalizationLayers.write,
        KerasPoolingLayers.write, KerasActivationLayers.write, KerasMergeLayers.write,
        KerasReshapingLayers.write, KerasPreprocessingLayers.write, KerasDropoutAndIdentityLayers.write,
        KerasApplicationLayers.write,
    ]

    static func make(_ layer: Layer, name: String) throws -> KerasLayerConfig {
        var c: [String: JSONValue] = ["name": .string(name), "trainable": .bool(layer.isTrainable), "dtype": "float32"]
        for write in writers {
            if let className = try write(layer, name, &c) { return KerasLayerConfig(className: className, config: c) }
        }
        throw KerasExportError.inexpressible(layer: name, reason: "\(layer.kind) has no Keras 3 equivalent")
    }
}

/// A layer Keras has no form for; files that cannot be written throw `FileError`.
public enum KerasExportError: SegKitError, Equatable {
    /// Layer `layer` (its Keras name) computes something no Keras 3 layer or activation does exactly.
    case inexpressible(layer: String, reason: String)

    /// "cannot write layer '<name>' as Keras: <reason>".
    public var errorDescription: String? {
        switch self {
        case let .inexpressible(layer, reason): return "cannot write layer '\(layer)' as Keras: \(reason)"
        }
    }
}
