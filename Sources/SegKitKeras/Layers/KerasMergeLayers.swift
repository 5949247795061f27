import SegKitSupport
import SegKitEngine

/// Layers that combine several tensors (Add, Subtract, Multiply, Average,
/// Maximum, Minimum, Concatenate), read from a config and written back as Keras 3's.
enum KerasMergeLayers {
    static let readers: [String: KerasLayerFactory.Reader] = [
        "Add": readElementwise, "Subtract": readElementwise, "Multiply": readElementwise,
        "Average": readElementwise, "Maximum": readElementwise, "Minimum": readElementwise,
        "Concatenate": readConcatenate,
    ]

    /// The table above lists exactly the engine's operations, whose raw values are Keras's class names.
    static func readElementwise(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        ElementwiseMerge(name: c.spec.name, ElementwiseMerge.Operation(rawValue: c.spec.className)!)
    }

    static func readConcatenate(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        Concatenate(name: c.spec.name, axis: try c.int("axis", default: -1))
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) -> String? {
        switch layer {
        case let l as ElementwiseMerge:
            return l.operation.rawValue
        case let l as Concatenate:
            c["axis"] = .int(l.axis)
            return "Concatenate"
        default:
            return nil
        }
    }
}
