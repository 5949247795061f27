import Foundation
import HDF5
import SegKitEngine
import SegKitKeras

/// The Keras-written files under Tests/Fixtures/keras (see make_fixtures.py).
public enum Fixtures {
    public static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/keras")

    public static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// One way of loading one net: the model file and, for weights-only files, the config.
    public struct Case: CustomStringConvertible, Sendable {
        public let net: String
        public let keras: Int
        public let model: String
        public let config: String?
        public var description: String { model + (config.map { " + \($0)" } ?? "") }

        public init(net: String, keras: Int, model: String, config: String?) {
            self.net = net
            self.keras = keras
            self.model = model
            self.config = config
        }
        public var expected: String { "\(net).k\(keras).expected.h5" }
        /// Keras 2 and 3 themselves differ by ~1.3e-5 on MobileNetV2 (the figure);
        /// the 50-layer and Inception nets sum float32 rounding over more layers.
        /// For them the bound is relative to the largest value compared (probed layers reach ~40).
        /// InceptionV3 (94 convolutions, softmax output) measured 1.09e-4 against tf_keras: 2e-4.
        /// A mixed_float16 model: Keras computes in float16 (unit roundoff 4.9e-4), SegKit in
        /// float32; they differ by Keras's rounding: 2e-3 of the largest value, ~4 float16 ulps.
        public var tolerance: Float {
            switch net {
            case "inception_v3": return 2e-4
            case "mixed_f16", "float16_net": return 2e-3
            // Probed layers before its Rescaling hold raw pixel values up to 255: float32 rounding there is ~3e-5.
            case "augment_zoo": return 1e-6
            case "regnetx002": return 1e-4
            default: return Fixtures.applications.contains(net) ? 1e-4 : 1e-5
            }
        }
        public var isRelative: Bool {
            (Fixtures.applications.contains(net) && net != "mobilenet_v2") || ["regnetx002", "mixed_f16", "float16_net", "augment_zoo"].contains(net)
        }
    }

    public static let smallNets = ["plain_cnn", "vgg", "residual", "zoo", "nested"]
    /// Real users' classifier shapes (recipes issue): valid padding, odd strides, heads of every kind.
    public static let userNets = ["mnist_convnet", "vgg_valid", "pool3", "mini_xception", "bn_head", "binary_sigmoid", "two_outputs"]
    /// The importer issue's small nets: augmentation and preprocessing layers, PReLU,
    /// a mixed_float16 policy, tensor arithmetic (TFOpLambda / Keras 3 operations),
    /// a (28, 28) input reshaped to channels with a Permute, float16 weights; and GroupNormalization.
    public static let layerNets = ["tf_tutorial", "prelu_net", "mixed_f16", "arith_net", "flat_input", "float16_net", "group_norm_net"]
    /// Keras Applications with `weights=None`, written as .k3.keras and .k2.h5 only.
    public static let applications = ["mobilenet_v2", "mobilenet_v1", "resnet50v2", "inception_v3", "efficientnet_b0",
                                      "efficientnet_v2_b0", "mobilenet_v3_small", "mobilenet_v3_small_nopre", "convnext_tiny",
                                      "inception_resnet_v2"]

    /// Every net in every format its Keras version writes.
    public static let cases: [Case] = (smallNets + userNets + layerNets).flatMap { net in [
        Case(net: net, keras: 3, model: "\(net).k3.keras", config: nil),
        Case(net: net, keras: 3, model: "\(net).k3.h5", config: nil),
        Case(net: net, keras: 3, model: "\(net).k3.weights.h5", config: "\(net).k3.json"),
        Case(net: net, keras: 3, model: "\(net).k3.weights.h5", config: "\(net).k3.keras"),
        Case(net: net, keras: 2, model: "\(net).k2.h5", config: nil),
        Case(net: net, keras: 2, model: "\(net).k2.w.h5", config: "\(net).k2.json"),
        Case(net: net, keras: 2, model: "\(net).k2.weights.h5", config: "\(net).k2.json"),
    ] } + applications.flatMap { net in [
        Case(net: net, keras: 3, model: "\(net).k3.keras", config: nil),
        Case(net: net, keras: 2, model: "\(net).k2.h5", config: nil),
    ] } + [
        // Keras 3 writes no legacy .h5 of a model with its newer augmentation layers.
        Case(net: "augment_zoo", keras: 3, model: "augment_zoo.k3.keras", config: nil),
        Case(net: "augment_zoo", keras: 3, model: "augment_zoo.k3.weights.h5", config: "augment_zoo.k3.json"),
        Case(net: "augment_zoo", keras: 2, model: "augment_zoo.k2.h5", config: nil),
        Case(net: "augment_zoo", keras: 2, model: "augment_zoo.k2.w.h5", config: "augment_zoo.k2.json"),
        Case(net: "augment_zoo", keras: 2, model: "augment_zoo.k2.weights.h5", config: "augment_zoo.k2.json"),
        Case(net: "regnetx002", keras: 2, model: "regnetx002.k2.h5", config: nil),
        // layer_names split into layer_names0, 1, 2 as Keras 2 does past 64 KiB.
        Case(net: "plain_cnn", keras: 2, model: "plain_cnn.k2.chunked.w.h5", config: "plain_cnn.k2.json"),
    ]

    public static func load(_ c: Case) throws -> KerasModel {
        try KerasModel.load(path(c.model), configPath: c.config.map(path))
    }

    /// Keras's input, output and probed layer outputs, and its parameter counts.
    public struct Expected {
        public var input: Tensor
        public var outputs: [String: Tensor]
        public var total: Int, trainable: Int, nonTrainable: Int
    }

    public static func expected(_ c: Case) throws -> Expected {
        let root = try HDF5File(readingFrom: path(c.expected)).root
        func tensor(_ name: String) throws -> Tensor {
            let d = try root.dataset(name)
            return try Tensor(shape: d.shape(), scalars: d.readFloats())
        }
        var outputs: [String: Tensor] = [:]
        // Layer names with "/" (tf_keras's MobileNetV3: "Conv/BatchNorm") were stored as groups.
        func collect(_ prefix: String, _ names: [String]) throws {
            for name in names where !(prefix.isEmpty && name == "input") {
                let path = prefix.isEmpty ? name : prefix + "/" + name
                if let t = try? tensor(path) { outputs[path] = t } else { try collect(path, try root.group(path).childNames()) }
            }
        }
        try collect("", try root.childNames())
        return Expected(input: try tensor("input"), outputs: outputs,
                        total: Int(try root.numbersAttribute("total_params")[0]),
                        trainable: Int(try root.numbersAttribute("trainable_params")[0]),
                        nonTrainable: Int(try root.numbersAttribute("non_trainable_params")[0]))
    }
}

public func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
