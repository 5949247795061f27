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
        public var tolerance: Float { net == "inception_v3" ? 2e-4 : Fixtures.applications.contains(net) ? 1e-4 : 1e-5 }
        public var isRelative: Bool { Fixtures.applications.contains(net) && net != "mobilenet_v2" }
    }

    public static let smallNets = ["plain_cnn", "vgg", "residual", "zoo", "nested"]
    /// Real users' classifier shapes (recipes issue): valid padding, odd strides, heads of every kind.
    public static let userNets = ["mnist_convnet", "vgg_valid", "pool3", "mini_xception", "bn_head", "binary_sigmoid", "two_outputs"]
    /// Keras Applications with `weights=None`, written as .k3.keras and .k2.h5 only.
    public static let applications = ["mobilenet_v2", "mobilenet_v1", "resnet50v2", "inception_v3"]

    /// Every net in every format its Keras version writes.
    public static let cases: [Case] = (smallNets + userNets).flatMap { net in [
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
        for name in try root.childNames() where name != "input" { outputs[name] = try tensor(name) }
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
