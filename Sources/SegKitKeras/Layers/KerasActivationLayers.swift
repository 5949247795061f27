import SegKitSupport
import SegKitEngine

/// Activation, ReLU, LeakyReLU, ELU, Softmax and PReLU, read from a config and
/// written back as Keras 3's. An `ActivationLayer` remembers which Keras class
/// it came from, so a ReLU is written as a ReLU, not as an Activation.
enum KerasActivationLayers {
    static let readers: [String: KerasLayerFactory.Reader] = [
        "Activation": readActivation, "ReLU": readReLU, "LeakyReLU": readLeakyReLU, "ELU": readELU,
        "Softmax": readSoftmax, "PReLU": readPReLU,
    ]

    static func readActivation(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        ActivationLayer(name: c.spec.name, try c.activation(), kerasKind: "Activation")
    }

    static func readReLU(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let maxValue = c.isNull("max_value") ? nil : Float(try c.double("max_value"))
        return ActivationLayer(name: c.spec.name, .relu(maxValue: maxValue, negativeSlope: Float(try c.double("negative_slope", default: 0)),
                                                        threshold: Float(try c.double("threshold", default: 0))), kerasKind: "ReLU")
    }

    static func readLeakyReLU(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        // Keras 3 names the slope negative_slope, Keras 2 alpha.
        let slope = c.value("negative_slope")?.double ?? c.value("alpha")?.double ?? 0.3
        return ActivationLayer(name: c.spec.name, .leakyRelu(alpha: Float(slope)), kerasKind: "LeakyReLU")
    }

    static func readELU(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        ActivationLayer(name: c.spec.name, .elu(alpha: Float(try c.double("alpha", default: 1))), kerasKind: "ELU")
    }

    static func readSoftmax(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        let rank = inputShapes.first?.count ?? 0
        let axes = c.value("axis")?.array?.compactMap(\.int) ?? [c.value("axis")?.int ?? -1]
        guard axes == [-1] || axes == [rank - 1] else { throw c.unsupported("axis", "\(axes) (only the last axis)") }
        return ActivationLayer(name: c.spec.name, .softmax, kerasKind: "Softmax")
    }

    static func readPReLU(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
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
        return PReLU(name: c.spec.name, alpha: try c.weight(shape.map { $0! }))
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) throws -> String? {
        switch layer {
        case let l as ActivationLayer:
            switch (l.kind, l.activation) {
            case ("ReLU", let .relu(maxValue, slope, threshold)):
                c.merge(["max_value": maxValue.map { .float($0) } ?? .null, "negative_slope": .float(slope), "threshold": .float(threshold)]) { $1 }
                return "ReLU"
            case ("LeakyReLU", let .relu(nil, slope, 0)):
                c["negative_slope"] = .float(slope)
                return "LeakyReLU"
            case ("ELU", let .elu(alpha)):
                c["alpha"] = .float(alpha)
                return "ELU"
            case ("Softmax", .softmax):
                c["axis"] = -1
                return "Softmax"
            default:
                c["activation"] = try kerasActivationName(l.activation, layer: name)
                return "Activation"
            }
        case let l as PReLU:
            let shared = l.alpha.value.shape.enumerated().filter { $0.element == 1 }.map { JSONValue.int($0.offset + 1) }
            c["shared_axes"] = shared.isEmpty ? .null : .array(shared)
            return "PReLU"
        default:
            return nil
        }
    }
}
