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
    var module: String {
        switch className {
        case "LayerScale": return "keras.src.applications.convnext"
        case "CustomScaleLayer": return "keras.src.applications.inception_resnet_v2"
        default: return "keras.layers"
        }
    }
    var registeredName: JSONValue { module == "keras.layers" ? .null : .string(className) }

    static func make(_ layer: Layer, name: String) throws -> KerasLayerConfig {
        var c: [String: JSONValue] = ["name": .string(name), "trainable": .bool(layer.isTrainable), "dtype": "float32"]
        let className: String
        switch layer {
        case let l as Conv2D:
            className = "Conv2D"
            c.merge(["filters": .int(l.filters), "kernel_size": .pair(l.kernelSize), "strides": .pair(l.strides),
                     "padding": .string(l.padding.rawValue), "data_format": "channels_last", "dilation_rate": .pair(l.dilation),
                     "groups": .int(l.groups), "activation": try activationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
        case let l as Conv2DTranspose:
            className = "Conv2DTranspose"
            c.merge(["filters": .int(l.filters), "kernel_size": .pair(l.kernelSize), "strides": .pair(l.strides),
                     "padding": .string(l.padding.rawValue), "data_format": "channels_last", "dilation_rate": .pair(l.dilation),
                     "output_padding": l.outputPadding.map { .pair($0) } ?? .null,
                     "activation": try activationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
        case let l as SeparableConv2D:
            className = "SeparableConv2D"
            let d = l.depthwise
            c.merge(["filters": .int(l.pointwise.filters), "kernel_size": .pair(d.kernelSize), "strides": .pair(d.strides),
                     "padding": .string(d.padding.rawValue), "data_format": "channels_last", "dilation_rate": .pair(d.dilation),
                     "depth_multiplier": .int(d.depthMultiplier), "activation": try activationName(l.pointwise.activation, layer: name),
                     "use_bias": .bool(l.pointwise.bias != nil)]) { $1 }
        case let l as DepthwiseConv2D:
            className = "DepthwiseConv2D"
            c.merge(["kernel_size": .pair(l.kernelSize), "strides": .pair(l.strides), "padding": .string(l.padding.rawValue),
                     "data_format": "channels_last", "dilation_rate": .pair(l.dilation), "depth_multiplier": .int(l.depthMultiplier),
                     "activation": try activationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
        case let l as Dense:
            className = "Dense"
            c.merge(["units": .int(l.units), "activation": try activationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
        case let l as BatchNormalization:
            className = "BatchNormalization"
            c.merge(["axis": -1, "momentum": .float(l.momentum), "epsilon": .float(l.epsilon),
                     "center": .bool(l.beta != nil), "scale": .bool(l.gamma != nil)]) { $1 }
        case let l as Pooling2D:
            className = l.reduction == .max ? "MaxPooling2D" : "AveragePooling2D"
            c.merge(["pool_size": .pair(l.poolSize), "strides": .pair(l.strides), "padding": .string(l.padding.rawValue),
                     "data_format": "channels_last"]) { $1 }
        case let l as GlobalPooling2D:
            className = l.reduction == .max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D"
            c.merge(["keepdims": .bool(l.keepDims), "data_format": "channels_last"]) { $1 }
        case let l as ZeroPadding2D:
            className = "ZeroPadding2D"
            c.merge(["padding": [.pair(l.rows), .pair(l.cols)], "data_format": "channels_last"]) { $1 }
        case let l as Cropping2D:
            className = "Cropping2D"
            c.merge(["cropping": [.pair(l.rows), .pair(l.cols)], "data_format": "channels_last"]) { $1 }
        case let l as UpSampling2D:
            className = "UpSampling2D"
            c.merge(["size": .pair(l.size), "interpolation": .string(l.interpolation.rawValue), "data_format": "channels_last"]) { $1 }
        case let l as Reshape:
            if let target = l.target {
                className = "Reshape"
                c["target_shape"] = .array(target.map { .int($0) })
            } else {
                className = "Flatten"
                c["data_format"] = "channels_last"
            }
        case let l as Dropout:
            className = l.perChannel ? "SpatialDropout2D" : "Dropout"
            c["rate"] = .float(l.rate)
            if let noise = l.noiseShape { c["noise_shape"] = .array(noise.map { $0.map { .int($0) } ?? .null }) }
        case let l as LayerNormalization:
            className = "LayerNormalization"
            c.merge(["axis": -1, "epsilon": .float(l.epsilon), "center": .bool(l.beta != nil), "scale": .bool(l.gamma != nil)]) { $1 }
        case let l as PReLU:
            className = "PReLU"
            let shared = l.alpha.value.shape.enumerated().filter { $0.element == 1 }.map { JSONValue.int($0.offset + 1) }
            c["shared_axes"] = shared.isEmpty ? .null : .array(shared)
        case let l as PassThrough:
            className = l.kerasClass
            if let original = (l.config as? JSONValue)?.object {
                c = original.merging(["name": .string(name), "trainable": .bool(layer.isTrainable)]) { $1 }
            }
        case let l as Resizing:
            className = "Resizing"
            c.merge(["height": .int(l.height), "width": .int(l.width), "interpolation": .string(l.interpolation.rawValue),
                     "crop_to_aspect_ratio": false, "data_format": "channels_last"]) { $1 }
        case let l as Permute:
            className = "Permute"
            c["dims"] = .array(l.dims.map { .int($0) })
        case let l as LayerScale:
            className = "LayerScale"
            c.merge(["init_values": 1e-6, "projection_dim": .int(l.gamma.value.count)]) { $1 }
        case let l as ScaledResidual:
            className = "CustomScaleLayer"
            c["scale"] = .float(l.scale)
        case let l as CenterCrop:
            className = "CenterCrop"
            c.merge(["height": .int(l.height), "width": .int(l.width), "data_format": "channels_last"]) { $1 }
        case let l as ActivationLayer:
            switch (l.kind, l.activation) {
            case ("ReLU", let .relu(maxValue, slope, threshold)):
                className = "ReLU"
                c.merge(["max_value": maxValue.map { .float($0) } ?? .null, "negative_slope": .float(slope), "threshold": .float(threshold)]) { $1 }
            case ("LeakyReLU", let .relu(nil, slope, 0)):
                className = "LeakyReLU"
                c["negative_slope"] = .float(slope)
            case ("ELU", let .elu(alpha)):
                className = "ELU"
                c["alpha"] = .float(alpha)
            case ("Softmax", .softmax):
                className = "Softmax"
                c["axis"] = -1
            default:
                className = "Activation"
                c["activation"] = try activationName(l.activation, layer: name)
            }
        case let l as ElementwiseMerge:
            className = l.operation.rawValue
        case let l as Concatenate:
            className = "Concatenate"
            c["axis"] = .int(l.axis)
        case let l as Rescaling:
            className = "Rescaling"
            c["scale"] = l.scale.count == 1 ? .float(l.scale[0]) : .array(l.scale.map { .float($0) })
            c["offset"] = l.offset.count == 1 ? .float(l.offset[0]) : .array(l.offset.map { .float($0) })
        case is Normalization:
            className = "Normalization"
            c.merge(["axis": [-1], "mean": .null, "variance": .null, "invert": false]) { $1 }
        default:
            throw KerasExportError.inexpressible(layer: name, reason: "\(layer.kind) has no Keras 3 equivalent")
        }
        return KerasLayerConfig(className: className, config: c)
    }

    /// Keras 3's name for an activation, if it has one that computes exactly this.
    static func activationName(_ a: Activation, layer: String) throws -> JSONValue {
        switch a {
        case .linear: return "linear"
        case .relu(nil, 0, 0): return "relu"
        case .relu(6, 0, 0): return "relu6"
        case .relu(nil, 0.2, 0): return "leaky_relu"
        case .elu(1): return "elu"
        case .swish: return "silu"
        case .sigmoid: return "sigmoid"
        case .hardSigmoid(let slope) where slope == 1.0 / 6.0: return "hard_sigmoid"
        case .hardSwish: return "hard_silu"
        case .tanh: return "tanh"
        case .gelu(approximate: false): return "gelu"
        case .softplus: return "softplus"
        case .softmax: return "softmax"
        default:
            throw KerasExportError.inexpressible(layer: layer, reason: "activation \(a) has no Keras 3 name")
        }
    }
}

/// A layer Keras has no form for; files that cannot be written throw `FileError`.
public enum KerasExportError: SegKitError, Equatable {
    case inexpressible(layer: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .inexpressible(layer, reason): return "cannot write layer '\(layer)' as Keras: \(reason)"
        }
    }
}
