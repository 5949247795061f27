import SegKitSupport
/// Tensor arithmetic saved in a model config, lowered to the Keras layers that
/// compute the same thing. tf_keras writes `x + 3`, `x * (1/6)`, `tf.nn.relu6(x)`
/// as TFOpLambda layers (`config.function` = "__operators__.add", "math.multiply",
/// "nn.relu6", …; the other operand in the inbound node's kwargs, `y`); Keras 3
/// as operation layers of module `keras.src.ops.numpy` / `keras.src.ops.nn`
/// (class "Add", "TrueDivide", "Relu6", "Mean", …; operands in `args`).
///
/// Only the operations of `KerasOperation.table` are read; any other is refused
/// by name, as a Lambda is: nothing from a file is ever executed. A constant
/// operand becomes a Rescaling (x·s + o: exact for +, −, ×; x / c is x·(1/c),
/// within one rounding), two tensors an Add / Subtract / Multiply / Maximum /
/// Minimum layer, a unary function an Activation, a mean or max over the two
/// spatial axes a global pooling.
struct KerasOperation {
    let file: String

    enum Kind { case binary(String), unary(String), reduce(max: Bool) }

    /// tf_keras TFOpLambda `function` and Keras 3 operation class → what it computes.
    static let table: [String: Kind] = [
        "__operators__.add": .binary("add"), "math.add": .binary("add"), "Add": .binary("add"),
        "math.subtract": .binary("subtract"), "__operators__.sub": .binary("subtract"), "Subtract": .binary("subtract"),
        "math.multiply": .binary("multiply"), "__operators__.mul": .binary("multiply"), "Multiply": .binary("multiply"),
        "math.truediv": .binary("divide"), "math.divide": .binary("divide"), "__operators__.truediv": .binary("divide"),
        "TrueDivide": .binary("divide"), "Divide": .binary("divide"),
        "math.maximum": .binary("maximum"), "Maximum": .binary("maximum"),
        "math.minimum": .binary("minimum"), "Minimum": .binary("minimum"),
        "nn.relu": .unary("relu"), "Relu": .unary("relu"), "nn.relu6": .unary("relu6"), "Relu6": .unary("relu6"),
        "math.sigmoid": .unary("sigmoid"), "nn.sigmoid": .unary("sigmoid"), "Sigmoid": .unary("sigmoid"),
        "math.tanh": .unary("tanh"), "nn.tanh": .unary("tanh"), "Tanh": .unary("tanh"),
        "nn.silu": .unary("swish"), "nn.swish": .unary("swish"), "Silu": .unary("swish"),
        "nn.gelu": .unary("gelu"), "Gelu": .unary("gelu"), "math.softplus": .unary("softplus"), "Softplus": .unary("softplus"),
        "HardSigmoid": .unary("hard_sigmoid"), "HardSilu": .unary("hard_silu"),
        "nn.softmax": .unary("softmax"), "Softmax": .unary("softmax"),
        "math.reduce_mean": .reduce(max: false), "Mean": .reduce(max: false),
        "math.reduce_max": .reduce(max: true), "Max": .reduce(max: true),
    ]

    /// Whether a layer entry is such an operation.
    /// Keras 3's legacy `.h5` drops the module: an operation is then a table
    /// class whose config, unlike every layer's, has no `trainable` key.
    static func isOperation(_ entry: JSONValue) -> Bool {
        let className = entry["class_name"]?.string ?? ""
        if className == "TFOpLambda" || className == "SlicingOpLambda" { return true }
        if let module = entry["module"]?.string { return module.hasPrefix("keras.src.ops.") }
        return table[className] != nil && entry["config"]?["trainable"] == nil && entry["config"]?.object != nil
    }

    /// The equivalent layer entry and its input tensors.
    ///
    /// - Throws: `KerasImportError.unsupportedLayer` naming the operation when it
    ///   is not in the table or is called in a way SegKit does not read.
    func lower(_ entry: JSONValue, nodes: [JSONValue]) throws -> (entry: JSONValue, inputs: [[TensorRef]]) {
        let className = entry["class_name"]?.string ?? "?"
        let name = entry["name"]?.string ?? entry["config"]?["name"]?.string ?? "?"
        let function = className == "TFOpLambda" ? (entry["config"]?["function"]?.string ?? "?") : className
        func refuse(_ reason: String) -> KerasImportError {
            .unsupportedLayer(name: name, className: className == "TFOpLambda" ? "TFOpLambda(\(function))" : className, file: file, reason: reason)
        }
        guard let kind = Self.table[function] else {
            throw refuse("the operation '\(function)' is not one SegKit reads (nothing from a file is executed)")
        }
        guard nodes.count == 1, let node = nodes.first else { throw refuse("it is applied \(nodes.count) times") }
        // Operands in call order: tensors as references, the rest as JSON values; keyword operands by name.
        var operands: [Operand] = []
        var keywords: [String: JSONValue] = [:]
        if let list = node.array {
            // tf_keras: [[layer, node, tensor, {kwargs}]]: the first operand and the keyword ones.
            // One application is either the entry itself or a list holding it.
            let parts = list.first?.string != nil ? list : (list.count == 1 ? list[0].array ?? [] : [])
            guard parts.count >= 3, let l = parts[0].string, let n = parts[1].int, let t = parts[2].int else {
                throw refuse("its inbound node is not [layer, node, tensor, kwargs]")
            }
            operands.append(.tensor(TensorRef(layer: l, node: n, tensor: t)))
            keywords = parts.count > 3 ? parts[3].object ?? [:] : [:]
            if let y = keywords.removeValue(forKey: "y") { operands.append(Self.operand(y)) }
        } else {
            for a in node["args"]?.array ?? [] { operands.append(Self.operand(a)) }
            keywords = node["kwargs"]?.object ?? [:]
        }
        keywords.removeValue(forKey: "name")
        let config = entry["config"] ?? .object([:])
        var layer: [String: JSONValue] = ["name": .string(name), "trainable": true, "dtype": "float32"]
        let layerClass: String
        let tensors = operands.compactMap(\.tensor)
        switch kind {
        case let .unary(activation):
            guard operands.count == 1, tensors.count == 1 else { throw refuse("it takes one tensor, given \(operands.count) operand(s)") }
            if activation == "relu6" {
                layerClass = "ReLU"
                layer["max_value"] = 6
            } else {
                layerClass = "Activation"
                layer["activation"] = .string(activation)
            }
        case let .reduce(max):
            let axis = keywords["axis"] ?? config["axis"] ?? (operands.count > 1 ? operands[1].constant : nil)
            let keep = keywords["keepdims"]?.bool ?? config["keepdims"]?.bool ?? false
            let axes = Set(axis?.array?.compactMap(\.int) ?? [])
            guard tensors.count == 1, axes == [1, 2] || axes == [-3, -2] else {
                throw refuse("it reduces over axes \(axis?.jsonText ?? "null"); SegKit reads the two spatial axes [1, 2] only")
            }
            layerClass = max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D"
            layer["keepdims"] = .bool(keep)
            layer["data_format"] = "channels_last"
        case let .binary(op):
            guard operands.count == 2 else { throw refuse("it takes two operands, given \(operands.count)") }
            if tensors.count == 2 {
                let classes = ["add": "Add", "subtract": "Subtract", "multiply": "Multiply", "maximum": "Maximum", "minimum": "Minimum"]
                guard let c = classes[op] else { throw refuse("SegKit reads '\(function)' of two tensors only for +, −, ×, max and min") }
                layerClass = c
            } else {
                guard tensors.count == 1, let constant = operands.first(where: { $0.tensor == nil })?.constant,
                      let values = Self.numbers(constant), !values.isEmpty else {
                    throw refuse("its constant operand is not a number or a list of numbers")
                }
                let tensorFirst = operands[0].tensor != nil
                // x·scale + offset.
                let one = values.map { _ in 1.0 }
                let (scale, offset): ([Double], [Double])
                switch (op, tensorFirst) {
                case ("add", _): (scale, offset) = (one, values)
                case ("subtract", true): (scale, offset) = (one, values.map { -$0 })
                case ("subtract", false): (scale, offset) = (values.map { _ in -1.0 }, values)
                case ("multiply", _): (scale, offset) = (values, values.map { _ in 0 })
                case ("divide", true):
                    guard !values.contains(0) else { throw refuse("it divides by zero") }
                    (scale, offset) = (values.map { 1 / $0 }, values.map { _ in 0 })
                default: throw refuse("SegKit reads '\(function)' with a constant only for +, −, × and ÷ by the constant")
                }
                layerClass = "Rescaling"
                func value(_ v: [Double]) -> JSONValue { v.count == 1 ? .number(v[0]) : .array(v.map { .number($0) }) }
                layer["scale"] = value(scale)
                layer["offset"] = value(offset)
            }
        }
        return (.object(["class_name": .string(layerClass), "name": .string(name), "config": .object(layer)]),
                [tensors])
    }

    enum Operand {
        case tensor(TensorRef), constant(JSONValue)
        var tensor: TensorRef? { if case let .tensor(t) = self { return t }; return nil }
        var constant: JSONValue? { if case let .constant(c) = self { return c }; return nil }
    }

    /// A Keras 3 `__keras_tensor__`, a tf_keras [layer, node, tensor] reference, or a constant.
    static func operand(_ v: JSONValue) -> Operand {
        if v["class_name"]?.string == "__keras_tensor__", let h = v["config"]?["keras_history"]?.array, h.count == 3,
           let l = h[0].string, let n = h[1].int, let t = h[2].int {
            return .tensor(TensorRef(layer: l, node: n, tensor: t))
        }
        if let a = v.array, a.count == 3, let l = a[0].string, let n = a[1].int, let t = a[2].int {
            return .tensor(TensorRef(layer: l, node: n, tensor: t))
        }
        return .constant(v)
    }

    /// A number or a flat list of numbers.
    static func numbers(_ v: JSONValue) -> [Double]? {
        if let d = v.double { return [d] }
        guard let a = v.array else { return nil }
        let values = a.compactMap(\.double)
        return values.count == a.count ? values : nil
    }
}
