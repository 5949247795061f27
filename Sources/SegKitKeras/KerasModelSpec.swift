import SegKitSupport
/// A reference to one output tensor of one application of a layer, as Keras's
/// `inbound_nodes` and `input_layers` write it: (layer name, node index, tensor index).
struct TensorRef: Equatable {
    var layer: String
    var node: Int
    var tensor: Int
}

/// One layer of a Keras config, before any weights.
struct LayerSpec {
    var className: String
    var name: String
    var config: JSONValue
    /// One entry per application of the layer (several for a shared layer).
    var inboundNodes: [[TensorRef]]
    /// A model used as a layer.
    var nested: ModelSpec?

    var trainable: Bool { config["trainable"]?.bool ?? true }
}

/// A Functional or Sequential model config.
struct ModelSpec {
    var name: String
    var className: String
    var layers: [LayerSpec]
    var inputs: [TensorRef]
    var outputs: [TensorRef]
    var trainable: Bool
}

/// Parses Keras 2 and Keras 3 model configs (`{"class_name": …, "config": …}`).
struct ModelSpecParser {
    let file: String

    static let modelClasses: Set<String> = ["Functional", "Model", "Sequential"]

    func parseModel(_ root: JSONValue) throws -> ModelSpec {
        guard let className = root["class_name"]?.string, let config = root["config"], config.object != nil else {
            throw KerasImportError.invalidConfig(file: file, message: "the model config has no class_name/config pair")
        }
        guard Self.modelClasses.contains(className) else {
            throw KerasImportError.invalidConfig(file: file, message: "the top-level object is a \(className), not a Functional or Sequential model")
        }
        try refuseCustom(root, name: config["name"]?.string ?? "model", className: className)
        return className == "Sequential"
            ? try parseSequential(config, root: root)
            : try parseFunctional(config, className: className)
    }

    /// Anything not from Keras itself is refused by name: SegKit never runs code from a file.
    func refuseCustom(_ entry: JSONValue, name: String, className: String) throws {
        if let module = entry["module"]?.string, !(module.hasPrefix("keras") || module.hasPrefix("tf_keras")) {
            throw KerasImportError.unsupportedLayer(name: name, className: className, file: file,
                                                    reason: "it comes from module '\(module)', not from Keras; custom code is never executed")
        }
        // Keras's own application layers, which tf_keras registers under the package "Custom".
        if className == "Custom>CustomScaleLayer" && entry["module"] == nil { return }
        if let module = entry["module"]?.string, module.hasPrefix("keras.src.applications."),
           !["LayerScale", "CustomScaleLayer"].contains(className) {
            throw KerasImportError.unsupportedLayer(name: name, className: className, file: file,
                                                    reason: "it comes from module '\(module)', and SegKit reads only LayerScale and CustomScaleLayer from Keras's application code")
        }
        if let registered = entry["registered_name"]?.string, registered != className, registered.contains(">") {
            throw KerasImportError.unsupportedLayer(name: name, className: className, file: file,
                                                    reason: "it is the custom registered class '\(registered)'; custom code is never executed")
        }
    }

    private func parseLayer(_ entry: JSONValue, inbound: [[TensorRef]]) throws -> LayerSpec {
        guard let className = entry["class_name"]?.string, let config = entry["config"] else {
            throw KerasImportError.invalidConfig(file: file, message: "a layer entry has no class_name/config")
        }
        let name = entry["name"]?.string ?? config["name"]?.string ?? ""
        guard !name.isEmpty else {
            throw KerasImportError.invalidConfig(file: file, message: "a \(className) layer has no name")
        }
        try refuseCustom(entry, name: name, className: className)
        var spec = LayerSpec(className: className, name: name, config: config, inboundNodes: inbound)
        if Self.modelClasses.contains(className) {
            spec.nested = className == "Sequential"
                ? try parseSequential(config, root: entry)
                : try parseFunctional(config, className: className)
        }
        return spec
    }

    private func parseFunctional(_ config: JSONValue, className: String) throws -> ModelSpec {
        let name = config["name"]?.string ?? "model"
        guard let layers = config["layers"]?.array else {
            throw KerasImportError.invalidConfig(file: file, message: "model '\(name)' has no layer list")
        }
        var specs: [LayerSpec] = []
        for entry in layers {
            if KerasOperation.isOperation(entry) {
                let (lowered, inputs) = try KerasOperation(file: file).lower(entry, nodes: entry["inbound_nodes"]?.array ?? [])
                specs.append(try parseLayer(lowered, inbound: inputs))
                continue
            }
            let nodes = try (entry["inbound_nodes"]?.array ?? []).map { try parseNode($0, in: entry) }
            specs.append(try parseLayer(entry, inbound: nodes))
        }
        return ModelSpec(name: name, className: className, layers: specs,
                         inputs: try refList(config["input_layers"], what: "input_layers", model: name),
                         outputs: try refList(config["output_layers"], what: "output_layers", model: name),
                         trainable: config["trainable"]?.bool ?? true)
    }

    /// A Sequential model is a chain: each layer takes the previous one's output.
    private func parseSequential(_ config: JSONValue, root: JSONValue) throws -> ModelSpec {
        let name = config["name"]?.string ?? "sequential"
        guard var layers = config["layers"]?.array else {
            throw KerasImportError.invalidConfig(file: file, message: "model '\(name)' has no layer list")
        }
        if layers.first?["class_name"]?.string != "InputLayer" {
            // No explicit input: take the shape from the first layer or the build config.
            let shape = layers.first?["config"]?["batch_input_shape"] ?? layers.first?["config"]?["batch_shape"]
                ?? config["build_input_shape"] ?? root["build_config"]?["input_shape"]
            guard let shape, !shape.isNull else {
                throw KerasImportError.invalidConfig(file: file, message: "Sequential model '\(name)' declares no input shape")
            }
            layers.insert(.object(["class_name": .string("InputLayer"),
                                   "config": .object(["batch_shape": shape, "name": .string("\(name)_input")])]), at: 0)
        }
        var specs: [LayerSpec] = []
        var previous: String?
        for entry in layers {
            let inbound = previous.map { [[TensorRef(layer: $0, node: 0, tensor: 0)]] } ?? []
            let spec = try parseLayer(entry, inbound: inbound)
            specs.append(spec)
            previous = spec.name
        }
        return ModelSpec(name: name, className: "Sequential", layers: specs,
                         inputs: [TensorRef(layer: specs[0].name, node: 0, tensor: 0)],
                         outputs: [TensorRef(layer: specs.last!.name, node: 0, tensor: 0)],
                         trainable: config["trainable"]?.bool ?? true)
    }

    /// One application's input tensors: Keras 2 writes `[[name, node, tensor, kwargs], …]`,
    /// Keras 3 `{"args": [...], "kwargs": {...}}` with `__keras_tensor__` entries.
    private func parseNode(_ node: JSONValue, in entry: JSONValue) throws -> [TensorRef] {
        let layerName = entry["name"]?.string ?? entry["config"]?["name"]?.string ?? "?"
        if let list = node.array {
            return try list.map { item in
                guard let parts = item.array, parts.count >= 3, let l = parts[0].string, let n = parts[1].int, let t = parts[2].int else {
                    throw KerasImportError.invalidConfig(file: file, message: "layer '\(layerName)' has a malformed inbound node")
                }
                if parts.count > 3, let kwargs = parts[3].object, kwargs.values.contains(where: Self.containsTensor) {
                    throw KerasImportError.unsupportedLayer(name: layerName, className: entry["class_name"]?.string ?? "?", file: file,
                                                            reason: "it is called with tensors as keyword arguments")
                }
                return TensorRef(layer: l, node: n, tensor: t)
            }
        }
        guard let args = node["args"] else {
            throw KerasImportError.invalidConfig(file: file, message: "layer '\(layerName)' has a malformed inbound node")
        }
        if let kwargs = node["kwargs"]?.object, kwargs.values.contains(where: Self.containsTensor) {
            throw KerasImportError.unsupportedLayer(name: layerName, className: entry["class_name"]?.string ?? "?", file: file,
                                                    reason: "it is called with tensors as keyword arguments")
        }
        var refs: [TensorRef] = []
        try collectTensors(args, into: &refs, layer: layerName)
        return refs
    }

    private static func containsTensor(_ v: JSONValue) -> Bool {
        if v["class_name"]?.string == "__keras_tensor__" { return true }
        if let a = v.array { return a.contains(where: containsTensor) }
        if let o = v.object { return o.values.contains(where: containsTensor) }
        return false
    }

    private func collectTensors(_ v: JSONValue, into refs: inout [TensorRef], layer: String) throws {
        if v["class_name"]?.string == "__keras_tensor__" {
            guard let h = v["config"]?["keras_history"]?.array, h.count == 3,
                  let l = h[0].string, let n = h[1].int, let t = h[2].int else {
                throw KerasImportError.invalidConfig(file: file, message: "layer '\(layer)' has a tensor without keras_history")
            }
            refs.append(TensorRef(layer: l, node: n, tensor: t))
        } else if let a = v.array {
            for item in a { try collectTensors(item, into: &refs, layer: layer) }
        }
    }

    /// `input_layers` / `output_layers`: a list of [name, node, tensor], or one such triple (Keras 3).
    private func refList(_ v: JSONValue?, what: String, model: String) throws -> [TensorRef] {
        guard let list = v?.array, !list.isEmpty else {
            throw KerasImportError.invalidConfig(file: file, message: "model '\(model)' has no \(what)")
        }
        func ref(_ item: JSONValue) -> TensorRef? {
            guard let p = item.array, p.count == 3, let l = p[0].string, let n = p[1].int, let t = p[2].int else { return nil }
            return TensorRef(layer: l, node: n, tensor: t)
        }
        if let single = ref(v!) { return [single] }
        return try list.map {
            guard let r = ref($0) else {
                throw KerasImportError.invalidConfig(file: file, message: "model '\(model)' has a malformed \(what) entry")
            }
            return r
        }
    }
}
