import SegKitSupport
import SegKitEngine

/// Builds the engine layer for one Keras layer config, given its input shapes
/// (which fix the kernel shapes). Parameters are created as zeros in Keras's
/// weight order and under Keras's weight names; the weight loader fills them.
/// Every config option either changes what the layer computes or is refused.
struct KerasLayerFactory {
    let file: String
    /// Keras 2 and 3 differ in a few defaults (hard_sigmoid's slope).
    let kerasMajor: Int
    /// Elements all the model's weights may still take (a forged config cannot make
    /// SegKit allocate more than a very large real model would).
    let budget = WeightBudget(elements: KerasLayerFactory.maxWeightElements)

    final class WeightBudget {
        var remaining: Int
        init(elements: Int) { remaining = elements }
    }

    /// The reduced-precision dtype policies seen in the config (SegKit computes
    /// in float32 with the file's weights, converted from float16 where stored so).
    final class PolicyLog { var names: Set<String> = [] }
    let policies = PolicyLog()

    /// Layers that are the identity when a model predicts (augmentation, noise,
    /// regularisation): imported as `PassThrough`, listed as such by `inspect`.
    static let identityAtInference: Set<String> = [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
        "RandomHeight", "RandomWidth", "RandomColorDegeneration", "RandomColorJitter", "RandomGrayscale", "RandomHue",
        "RandomSaturation", "RandomSharpness", "RandomShear", "RandomPosterization", "RandomInvert", "RandomErasing",
        "RandomGaussianBlur", "RandomPerspective", "RandomElasticTransform",
        "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    ]

    /// No single size in a config may exceed this, nor the model's weights hold more
    /// than `maxWeightElements` elements in all (1 GiB of float32, above VGG16's 138M):
    /// a forged config gets an error, not an allocation.
    static let maxDimension = 1 << 20
    static let maxWeightElements = 1 << 28

    func make(_ spec: LayerSpec, inputShapes: [StaticShape]) throws -> Layer {
        let c = Options(spec: spec, file: file, budget: budget)
        // Every weight shape follows from the config and the input shapes; check it before allocating.
        for shape in inputShapes {
            for d in shape.compactMap({ $0 }) where d < 1 || d > Self.maxDimension {
                throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' receives an input of size \(d) on some axis")
            }
        }
        try c.refuseChannelsFirst()
        if let policy = try c.computePolicy(), policy != "float32" { policies.names.insert(policy) }
        let name = spec.name
        let layer: Layer
        switch spec.className {
        case "Conv2D", "Convolution2D":
            let cin = try c.channels(inputShapes)
            let (kh, kw) = try c.positivePair("kernel_size")
            let groups = try c.positive("groups", default: 1)
            guard groups >= 1, cin % groups == 0 else { throw c.unsupported("groups", "\(groups) with \(cin) input channels") }
            let filters = try c.positive("filters")
            layer = try Conv2D(name: name, kernel: try c.weight([kh, kw, cin / groups, filters]),
                               bias: try c.bool("use_bias", default: true) ? try c.weight([filters]) : nil,
                               strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                               dilation: try c.positivePair("dilation_rate", default: (1, 1)), groups: groups,
                               activation: try activation(c))
        case "DepthwiseConv2D":
            let cin = try c.channels(inputShapes)
            let (kh, kw) = try c.positivePair("kernel_size")
            let dm = try c.positive("depth_multiplier", default: 1)
            layer = try DepthwiseConv2D(name: name, kernel: try c.weight([kh, kw, cin, dm]),
                                        bias: try c.bool("use_bias", default: true) ? try c.weight([cin * dm]) : nil,
                                        strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                                        dilation: try c.positivePair("dilation_rate", default: (1, 1)), activation: try activation(c))
        case "SeparableConv2D", "SeparableConvolution2D":
            let cin = try c.channels(inputShapes)
            let (kh, kw) = try c.positivePair("kernel_size")
            let dm = try c.positive("depth_multiplier", default: 1)
            let filters = try c.positive("filters")
            layer = try SeparableConv2D(name: name, depthwiseKernel: try c.weight([kh, kw, cin, dm]),
                                        pointwiseKernel: try c.weight([1, 1, cin * dm, filters]),
                                        bias: try c.bool("use_bias", default: true) ? try c.weight([filters]) : nil,
                                        strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                                        dilation: try c.positivePair("dilation_rate", default: (1, 1)), activation: try activation(c))
        case "Conv2DTranspose", "Convolution2DTranspose":
            let cin = try c.channels(inputShapes)
            let (kh, kw) = try c.positivePair("kernel_size")
            let filters = try c.positive("filters")
            let outputPadding: (Int, Int)? = c.isNull("output_padding") ? nil : try c.pair("output_padding")
            layer = try Conv2DTranspose(name: name, kernel: try c.weight([kh, kw, filters, cin]),
                                        bias: try c.bool("use_bias", default: true) ? try c.weight([filters]) : nil,
                                        strides: try c.positivePair("strides", default: (1, 1)), padding: try c.padding(),
                                        outputPadding: outputPadding, dilation: try c.positivePair("dilation_rate", default: (1, 1)),
                                        activation: try activation(c))
        case "Dense":
            guard let last = inputShapes.first?.last ?? nil else {
                throw KerasImportError.unsupportedLayer(name: name, className: spec.className, file: file,
                                                        reason: "its input's last axis has no fixed size")
            }
            let units = try c.positive("units")
            layer = try Dense(name: name, kernel: try c.weight([last, units]),
                              bias: try c.bool("use_bias", default: true) ? try c.weight([units]) : nil,
                              activation: try activation(c))
        case "BatchNormalization":
            let rank = inputShapes.first?.count ?? 0
            let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
            guard axes.count == 1, axes[0] == -1 || axes[0] == rank - 1 else {
                throw c.unsupported("axis", "\(axes) (only the last, channel axis)")
            }
            let channels = try c.channels(inputShapes)
            layer = try BatchNormalization(
                name: name, channels: channels, momentum: Float(try c.double("momentum", default: 0.99)),
                epsilon: Float(try c.double("epsilon", default: 1e-3)),
                gamma: try c.bool("scale", default: true) ? Tensor(repeating: 1, shape: [channels]) : nil,
                beta: try c.bool("center", default: true) ? try c.weight([channels]) : nil)
        case "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D":
            let pool = try c.positivePair("pool_size", default: (2, 2))
            layer = try Pooling2D(name: name, spec.className.hasPrefix("Max") ? .max : .average, poolSize: pool,
                                  strides: c.isNull("strides") ? pool : try c.positivePair("strides"), padding: try c.padding())
        case "GlobalMaxPooling2D", "GlobalMaxPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D":
            layer = GlobalPooling2D(name: name, spec.className.hasPrefix("GlobalMax") ? .max : .average,
                                    keepDims: try c.bool("keepdims", default: false))
        case "ZeroPadding2D":
            let (rows, cols) = try c.nonNegativeBorders("padding")
            layer = ZeroPadding2D(name: name, rows: rows, cols: cols)
        case "Cropping2D":
            let (rows, cols) = try c.nonNegativeBorders("cropping")
            layer = Cropping2D(name: name, rows: rows, cols: cols)
        case "UpSampling2D":
            let mode = c.value("interpolation")?.string ?? "nearest"
            guard let interpolation = UpSampling2D.Interpolation(rawValue: mode) else {
                throw c.unsupported("interpolation", mode)
            }
            layer = try UpSampling2D(name: name, size: try c.positivePair("size", default: (2, 2)), interpolation: interpolation)
        case "Flatten":
            layer = Reshape.flatten(name: name)
        case "Reshape":
            guard let target = c.value("target_shape")?.array?.map(\.int), !target.isEmpty,
                  target.allSatisfy({ $0 != nil && ($0! == -1 || ($0! >= 1 && $0! <= Self.maxDimension)) }) else {
                throw c.unsupported("target_shape", "\(String(describing: c.value("target_shape")))")
            }
            layer = try Reshape(name: name, target: target.map { $0! })
        case "Dropout", "SpatialDropout2D":
            var noise: [Int?]?
            if let ns = c.value("noise_shape"), !ns.isNull {
                // (None, 1, 1, 1): one draw per image (stochastic depth); each entry a positive size or null.
                guard spec.className == "Dropout", let entries = ns.array, entries.count == (inputShapes.first?.count ?? -1),
                      entries.allSatisfy({ $0.isNull || ($0.int ?? 0) >= 1 }) else { throw c.unsupported("noise_shape", ns.jsonText) }
                noise = entries.map(\.int)
            }
            layer = try Dropout(name: name, rate: Float(try c.double("rate")), perChannel: spec.className == "SpatialDropout2D",
                                noiseShape: noise, seed: UInt64(max(0, c.value("seed")?.int ?? 0)))
        case "LayerNormalization":
            let rank = inputShapes.first?.count ?? 0
            let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
            guard axes == [-1] || axes == [rank - 1] else { throw c.unsupported("axis", "\(axes) (only the last axis)") }
            if try c.bool("rms_scaling", default: false) { throw c.unsupported("rms_scaling", "true") }
            let channels = try c.channels(inputShapes)
            layer = try LayerNormalization(name: name, channels: channels, epsilon: Float(try c.double("epsilon", default: 1e-3)),
                                           gamma: try c.bool("scale", default: true) ? try c.weight([channels]) : nil,
                                           beta: try c.bool("center", default: true) ? try c.weight([channels]) : nil)
        case "PReLU":
            guard let input = inputShapes.first, input.count >= 2 else { throw c.unsupported("input", "a rank-2 or higher input") }
            var shape = Array(input.dropFirst())
            let shared = c.value("shared_axes")?.array?.compactMap(\.int) ?? c.value("shared_axes")?.int.map { [$0] } ?? []
            for axis in shared {
                guard axis >= 1, axis < input.count else { throw c.unsupported("shared_axes", "\(shared)") }
                shape[axis - 1] = 1
            }
            guard shape.allSatisfy({ $0 != nil }) else {
                throw c.unsupported("shared_axes", "\(shared): an unshared axis of unknown size")
            }
            layer = PReLU(name: name, alpha: try c.weight(shape.map { $0! }))
        case _ where Self.identityAtInference.contains(spec.className):
            layer = PassThrough(name: name, kerasClass: spec.className, config: spec.config)
        case "Permute":
            guard let dims = c.value("dims")?.array?.compactMap(\.int), !dims.isEmpty else { throw c.unsupported("dims", "\(c.value("dims") ?? .null)") }
            layer = try Permute(name: name, dims: dims)
        case "LayerScale":
            // Keras's ConvNeXt layer (module keras.src.applications.convnext; tf_keras writes no module).
            let channels = try c.positive("projection_dim")
            guard try c.channels(inputShapes) == channels else { throw c.unsupported("projection_dim", "\(channels) for \(inputShapes)") }
            layer = LayerScale(name: name, gamma: try c.weight([channels]))
        case "CustomScaleLayer", "Custom>CustomScaleLayer":
            // Keras's InceptionResNetV2 layer (tf_keras registers it under the package "Custom").
            layer = ScaledResidual(name: name, scale: Float(try c.double("scale")))
        case "RandomCrop":
            // At inference Keras crops and resizes a larger input (each version its own way): SegKit
            // reads it only where that is the identity, an input of exactly the crop's size.
            let (h, w) = (try c.positive("height"), try c.positive("width"))
            guard let input = inputShapes.first, input.count == 4, input[1] == h, input[2] == w else {
                throw c.unsupported("height/width", "\(h)x\(w) on an input of \(describe(inputShapes.first ?? [])) (only the identity crop)")
            }
            layer = PassThrough(name: name, kerasClass: spec.className, config: spec.config)
        case "Resizing":
            for key in ["crop_to_aspect_ratio", "pad_to_aspect_ratio"] where try c.bool(key, default: false) { throw c.unsupported(key, "true") }
            let mode = c.value("interpolation")?.string ?? "bilinear"
            guard let interpolation = UpSampling2D.Interpolation(rawValue: mode) else { throw c.unsupported("interpolation", "'\(mode)'") }
            layer = try Resizing(name: name, height: try c.positive("height"), width: try c.positive("width"), interpolation: interpolation)
        case "CenterCrop":
            layer = try CenterCrop(name: name, height: try c.positive("height"), width: try c.positive("width"))
        case "Activation":
            layer = ActivationLayer(name: name, try activation(c), kerasKind: "Activation")
        case "ReLU":
            let maxValue = c.isNull("max_value") ? nil : Float(try c.double("max_value"))
            layer = ActivationLayer(name: name, .relu(maxValue: maxValue, negativeSlope: Float(try c.double("negative_slope", default: 0)),
                                                      threshold: Float(try c.double("threshold", default: 0))), kerasKind: "ReLU")
        case "LeakyReLU":
            let slope = c.value("negative_slope")?.double ?? c.value("alpha")?.double ?? 0.3
            layer = ActivationLayer(name: name, .leakyRelu(alpha: Float(slope)), kerasKind: "LeakyReLU")
        case "ELU":
            layer = ActivationLayer(name: name, .elu(alpha: Float(try c.double("alpha", default: 1))), kerasKind: "ELU")
        case "Softmax":
            let rank = inputShapes.first?.count ?? 0
            let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
            guard axes == [-1] || axes == [rank - 1] else { throw c.unsupported("axis", "\(axes) (only the last axis)") }
            layer = ActivationLayer(name: name, .softmax, kerasKind: "Softmax")
        case "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum":
            layer = ElementwiseMerge(name: name, ElementwiseMerge.Operation(rawValue: spec.className)!)
        case "Concatenate":
            layer = Concatenate(name: name, axis: try c.int("axis", default: -1))
        case "Rescaling":
            layer = try Rescaling(name: name, scale: try c.floats("scale"), offset: try c.floats("offset", default: [0]))
        case "Normalization":
            let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
            guard axes == [-1] || axes == [(inputShapes.first?.count ?? 0) - 1] else {
                throw c.unsupported("axis", "\(axes) (only the last, channel axis)")
            }
            if c.value("invert")?.bool == true { throw c.unsupported("invert", "true") }
            let channels = try c.channels(inputShapes)
            if let mean = c.value("mean"), !mean.isNull {
                // Statistics given in the config rather than adapted: no weights to read.
                layer = try NormalizationFromConfig.make(name: name, options: c, channels: channels)
            } else {
                layer = try Normalization(name: name, mean: try c.weight([channels]), variance: Tensor(repeating: 1, shape: [channels]))
            }
        default:
            throw KerasImportError.unsupportedLayer(
                name: name, className: spec.className, file: file,
                reason: spec.className == "Lambda" || spec.className.hasSuffix("OpLambda")
                    ? "Lambda layers hold Python code, which SegKit never executes"
                    : "SegKit does not know this layer class (custom or unsupported); it executes no code from files")
        }
        if !spec.trainable { layer.isTrainable = false }
        return layer
    }

    /// Keras activation names (a string, or Keras 3's serialized-function object).
    func activation(_ c: Options) throws -> Activation {
        guard let value = c.value("activation"), !value.isNull else { return .linear }
        guard let name = value.string ?? value["config"]?.string else { throw c.unsupported("activation", "\(value)") }
        switch name {
        case "linear", "identity": return .linear
        case "relu": return .relu()
        case "relu6": return .relu6
        case "leaky_relu": return .leakyRelu(alpha: 0.2)
        case "elu": return .elu(alpha: 1)
        case "swish", "silu": return .swish
        case "sigmoid": return .sigmoid
        case "hard_sigmoid": return .hardSigmoid(slope: kerasMajor >= 3 ? 1.0 / 6.0 : 0.2)
        case "hard_swish", "hard_silu": return .hardSwish
        case "tanh": return .tanh
        case "gelu": return .gelu(approximate: false)
        case "softplus": return .softplus
        case "softmax": return .softmax
        default: throw c.unsupported("activation", "'\(name)'")
        }
    }
}

/// Typed access to a layer's config, with errors that name the layer and option.
struct Options {
    let spec: LayerSpec
    let file: String
    var budget: KerasLayerFactory.WeightBudget? = nil

    func value(_ key: String) -> JSONValue? { spec.config[key] }
    func isNull(_ key: String) -> Bool { value(key)?.isNull ?? true }

    func unsupported(_ option: String, _ found: String) -> KerasImportError {
        .unsupportedOption(layer: spec.name, className: spec.className, option: option, value: found, file: file)
    }

    func int(_ key: String, default d: Int? = nil) throws -> Int {
        if let v = value(key), !v.isNull {
            guard let i = v.int ?? (v.array?.count == 1 ? v.array![0].int : nil) else { throw unsupported(key, "\(v)") }
            return i
        }
        guard let d else { throw unsupported(key, "missing") }
        return d
    }

    /// A zero weight of `shape`, refused when it would be larger than any real model's.
    func weight(_ shape: [Int]) throws -> Tensor {
        let count = Tensor.elementCount(shape)
        guard shape.allSatisfy({ $0 >= 1 }), count <= KerasLayerFactory.maxWeightElements else {
            throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' (\(spec.className)) declares a weight of shape \(shape), "
                                                 + "outside 1…\(KerasLayerFactory.maxWeightElements) elements")
        }
        if let budget {
            guard count <= budget.remaining else {
                throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' (\(spec.className)) declares a weight of shape \(shape), "
                                                     + "beyond the \(KerasLayerFactory.maxWeightElements) weights SegKit accepts for one model")
            }
            budget.remaining -= count
        }
        return Tensor(zeros: shape)
    }

    /// A size Keras requires to be at least 1 (filters, units, kernel sizes, strides, …).
    func positive(_ key: String, default d: Int? = nil) throws -> Int {
        let i = try int(key, default: d)
        guard i >= 1, i <= KerasLayerFactory.maxDimension else { throw unsupported(key, "\(i) (must be 1…\(KerasLayerFactory.maxDimension))") }
        return i
    }

    func positivePair(_ key: String, default d: (Int, Int)? = nil) throws -> (Int, Int) {
        let p = try pair(key, default: d)
        guard p.0 >= 1, p.1 >= 1, p.0 <= KerasLayerFactory.maxDimension, p.1 <= KerasLayerFactory.maxDimension else {
            throw unsupported(key, "\(p) (must be 1…\(KerasLayerFactory.maxDimension))")
        }
        return p
    }

    func double(_ key: String, default d: Double? = nil) throws -> Double {
        if let v = value(key), !v.isNull {
            guard let x = v.double else { throw unsupported(key, "\(v)") }
            return x
        }
        guard let d else { throw unsupported(key, "missing") }
        return d
    }

    func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = value(key), !v.isNull else { return d }
        guard let b = v.bool else { throw unsupported(key, "\(v)") }
        return b
    }

    func floats(_ key: String, default d: [Float]? = nil) throws -> [Float] {
        if let v = value(key), !v.isNull {
            if let x = v.double { return [Float(x)] }
            if let a = v.array?.compactMap(\.double), a.count == v.array?.count, !a.isEmpty { return a.map(Float.init) }
            throw unsupported(key, "\(v)")
        }
        guard let d else { throw unsupported(key, "missing") }
        return d
    }

    /// An int or a two-element list (kernel sizes, strides, dilation).
    func pair(_ key: String, default d: (Int, Int)? = nil) throws -> (Int, Int) {
        guard let v = value(key), !v.isNull else {
            guard let d else { throw unsupported(key, "missing") }
            return d
        }
        if let i = v.int { return (i, i) }
        if let a = v.array, a.count == 2, let x = a[0].int, let y = a[1].int { return (x, y) }
        throw unsupported(key, "\(v)")
    }

    /// ZeroPadding2D / Cropping2D: int, (sym_h, sym_w) or ((top, bottom), (left, right)).
    func borders(_ key: String) throws -> ((Int, Int), (Int, Int)) {
        guard let v = value(key) else { throw unsupported(key, "missing") }
        if let i = v.int { return ((i, i), (i, i)) }
        if let a = v.array, a.count == 2 {
            if let h = a[0].int, let w = a[1].int { return ((h, h), (w, w)) }
            if let r = a[0].array, let c = a[1].array, r.count == 2, c.count == 2,
               let t = r[0].int, let b = r[1].int, let l = c[0].int, let rr = c[1].int {
                return ((t, b), (l, rr))
            }
        }
        throw unsupported(key, "\(v)")
    }

    func nonNegativeBorders(_ key: String) throws -> ((Int, Int), (Int, Int)) {
        let b = try borders(key)
        guard [b.0.0, b.0.1, b.1.0, b.1.1].allSatisfy({ $0 >= 0 && $0 <= KerasLayerFactory.maxDimension }) else {
            throw unsupported(key, "\(b) (must be ≥ 0)")
        }
        return b
    }

    func padding() throws -> Padding {
        let p = value("padding")?.string ?? "valid"
        guard let padding = Padding(rawValue: p) else { throw unsupported("padding", "'\(p)'") }
        return padding
    }

    /// The channel count of the (first) input, which must be known.
    func channels(_ shapes: [StaticShape]) throws -> Int {
        guard let c = shapes.first?.last ?? nil else {
            throw KerasImportError.unsupportedLayer(name: spec.name, className: spec.className, file: file,
                                                    reason: "its input's channel count is not fixed")
        }
        return c
    }

    func refuseChannelsFirst() throws {
        if let f = value("data_format")?.string, f != "channels_last" { throw unsupported("data_format", "'\(f)'") }
    }

    /// The layer's dtype policy: float32, or a reduced-precision one SegKit runs in
    /// float32 (mixed_float16, mixed_bfloat16, float16, bfloat16: the weights are
    /// stored as float32, or converted from float16 on reading, and float32
    /// arithmetic is at least as exact as Keras's). float64 and others are refused.
    func computePolicy() throws -> String? {
        guard let d = value("dtype"), !d.isNull else { return nil }
        let name = d.string ?? d["config"]?["name"]?.string
        guard let name, ["float32", "mixed_float16", "mixed_bfloat16", "float16", "bfloat16"].contains(name) else {
            throw unsupported("dtype", name.map { "'\($0)'" } ?? "\(d)")
        }
        return name
    }
}

/// Normalization whose mean and variance are written in the config.
enum NormalizationFromConfig {
    static func make(name: String, options c: Options, channels: Int) throws -> Layer {
        let mean = try c.floats("mean"), variance = try c.floats("variance")
        let expand = { (v: [Float]) -> [Float] in v.count == 1 ? [Float](repeating: v[0], count: channels) : v }
        guard expand(mean).count == channels, expand(variance).count == channels else {
            throw c.unsupported("mean/variance", "\(mean.count)/\(variance.count) values for \(channels) channels")
        }
        return try Rescaling(name: name, scale: expand(variance).map { 1 / max($0.squareRoot(), 1e-7) },
                             offset: zip(expand(mean), expand(variance)).map { -$0 / max($1.squareRoot(), 1e-7) })
    }
}
