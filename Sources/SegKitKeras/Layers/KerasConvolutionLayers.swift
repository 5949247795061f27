import SegKitSupport
import SegKitEngine

/// Conv2D, DepthwiseConv2D, SeparableConv2D and Conv2DTranspose (and their
/// Keras 2 aliases), read from a config and written back as Keras 3's.
enum KerasConvolutionLayers {
    static let readers: [String: KerasLayerFactory.Reader] = [
        "Conv2D": readConv2D, "Convolution2D": readConv2D,
        "DepthwiseConv2D": readDepthwiseConv2D,
        "SeparableConv2D": readSeparableConv2D, "SeparableConvolution2D": readSeparableConv2D,
        "Conv2DTranspose": readConv2DTranspose, "Convolution2DTranspose": readConv2DTranspose,
    ]

    static func readConv2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let cin = try c.channels(inputShapes)
        let (kh, kw) = try c.positivePair("kernel_size")
        let groups = try c.positive("groups", default: 1)
        guard groups >= 1, cin % groups == 0 else { throw c.unsupported("groups", "\(groups) with \(cin) input channels") }
        let filters = try c.positive("filters")
        return try Conv2D(name: c.spec.name, kernel: try c.weight([kh, kw, cin / groups, filters]),
                          bias: try c.bool("use_bias", default: true) ? try c.weight([filters]) : nil,
                          strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                          dilation: try c.positivePair("dilation_rate", default: (1, 1)), groups: groups,
                          activation: try c.activation())
    }

    static func readDepthwiseConv2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let cin = try c.channels(inputShapes)
        let (kh, kw) = try c.positivePair("kernel_size")
        let dm = try c.positive("depth_multiplier", default: 1)
        return try DepthwiseConv2D(name: c.spec.name, kernel: try c.weight([kh, kw, cin, dm]),
                                   bias: try c.bool("use_bias", default: true) ? try c.weight([cin * dm]) : nil,
                                   strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                                   dilation: try c.positivePair("dilation_rate", default: (1, 1)), activation: try c.activation())
    }

    static func readSeparableConv2D(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let cin = try c.channels(inputShapes)
        let (kh, kw) = try c.positivePair("kernel_size")
        let dm = try c.positive("depth_multiplier", default: 1)
        let filters = try c.positive("filters")
        return try SeparableConv2D(name: c.spec.name, depthwiseKernel: try c.weight([kh, kw, cin, dm]),
                                   pointwiseKernel: try c.weight([1, 1, cin * dm, filters]),
                                   bias: try c.bool("use_bias", default: true) ? try c.weight([filters]) : nil,
                                   strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                                   dilation: try c.positivePair("dilation_rate", default: (1, 1)), activation: try c.activation())
    }

    static func readConv2DTranspose(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let cin = try c.channels(inputShapes)
        let (kh, kw) = try c.positivePair("kernel_size")
        let filters = try c.positive("filters")
        let outputPadding: (Int, Int)? = c.isNull("output_padding") ? nil : try c.pair("output_padding")
        return try Conv2DTranspose(name: c.spec.name, kernel: try c.weight([kh, kw, filters, cin]),
                                   bias: try c.bool("use_bias", default: true) ? try c.weight([filters]) : nil,
                                   strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                                   outputPadding: outputPadding, dilation: try c.positivePair("dilation_rate", default: (1, 1)),
                                   activation: try c.activation())
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) throws -> String? {
        switch layer {
        case let l as Conv2D:
            c.merge(["filters": .int(l.filters), "kernel_size": .pair(l.kernelSize), "strides": .pair(l.strides),
                     "padding": .string(l.padding.rawValue), "data_format": "channels_last", "dilation_rate": .pair(l.dilation),
                     "groups": .int(l.groups), "activation": try kerasActivationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
            return "Conv2D"
        case let l as Conv2DTranspose:
            c.merge(["filters": .int(l.filters), "kernel_size": .pair(l.kernelSize), "strides": .pair(l.strides),
                     "padding": .string(l.padding.rawValue), "data_format": "channels_last", "dilation_rate": .pair(l.dilation),
                     "output_padding": l.outputPadding.map { .pair($0) } ?? .null,
                     "activation": try kerasActivationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
            return "Conv2DTranspose"
        case let l as SeparableConv2D:
            let d = l.depthwise
            c.merge(["filters": .int(l.pointwise.filters), "kernel_size": .pair(d.kernelSize), "strides": .pair(d.strides),
                     "padding": .string(d.padding.rawValue), "data_format": "channels_last", "dilation_rate": .pair(d.dilation),
                     "depth_multiplier": .int(d.depthMultiplier), "activation": try kerasActivationName(l.pointwise.activation, layer: name),
                     "use_bias": .bool(l.pointwise.bias != nil)]) { $1 }
            return "SeparableConv2D"
        case let l as DepthwiseConv2D:
            c.merge(["kernel_size": .pair(l.kernelSize), "strides": .pair(l.strides), "padding": .string(l.padding.rawValue),
                     "data_format": "channels_last", "dilation_rate": .pair(l.dilation), "depth_multiplier": .int(l.depthMultiplier),
                     "activation": try kerasActivationName(l.activation, layer: name), "use_bias": .bool(l.bias != nil)]) { $1 }
            return "DepthwiseConv2D"
        default:
            return nil
        }
    }
}
