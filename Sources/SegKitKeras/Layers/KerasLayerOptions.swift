import SegKitSupport
import SegKitEngine

// The option parsing every layer family shares: typed config access whose
// errors name the layer and option, and Keras's activation names both ways.

/// Typed access to a layer's config, with errors that name the layer and option.
struct Options {
    let spec: LayerSpec
    let file: String
    /// Keras 2 and 3 differ in a few defaults (hard_sigmoid's slope).
    let kerasMajor: Int
    /// What the model's weights may still take, shared by all its layers.
    let budget: KerasLayerFactory.WeightBudget

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
        guard count <= budget.remaining else {
            throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' (\(spec.className)) declares a weight of shape \(shape), "
                                                 + "beyond the \(KerasLayerFactory.maxWeightElements) weights SegKit accepts for one model")
        }
        budget.remaining -= count
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

    /// The `activation` option: a Keras activation name (a string, or Keras 3's
    /// serialized-function object); absent or null is linear.
    func activation() throws -> Activation {
        guard let setting = value("activation"), !setting.isNull else { return .linear }
        guard let name = setting.string ?? setting["config"]?.string else { throw unsupported("activation", "\(setting)") }
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
        default: throw unsupported("activation", "'\(name)'")
        }
    }
}

/// Keras 3's name for an activation, if it has one that computes exactly this
/// (the inverse of `Options.activation()`).
func kerasActivationName(_ a: Activation, layer: String) throws -> JSONValue {
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
