import SegKitEngine

/// A Keras layer as imported: its spec, its engine layer (nil for InputLayer and
/// nested models) and, for a nested model, its own layers. The weight readers
/// walk this tree in Keras's order.
final class LayerRecord {
    let spec: LayerSpec
    let layer: Layer?
    let children: [LayerRecord]

    init(spec: LayerSpec, layer: Layer?, children: [LayerRecord] = []) {
        self.spec = spec
        self.layer = layer
        self.children = children
    }

    /// Every engine layer below this record, in Keras's layer order.
    var allLayers: [Layer] { (layer.map { [$0] } ?? []) + children.flatMap(\.allLayers) }
}

/// Builds the engine graph of a model spec. Nested models are flattened into the
/// one graph (their nodes named "outer/inner"); a layer applied several times is
/// one engine layer at several nodes ("name", "name@1", …).
struct KerasGraphBuilder {
    let file: String
    let factory: KerasLayerFactory
    let graph = Graph()
    private(set) var shapes: [StaticShape] = []
    /// Keras layer name (top level) → graph node of its first application's output.
    private(set) var layerOutputs: [String: Int] = [:]

    init(file: String, kerasMajor: Int) {
        self.file = file
        self.factory = KerasLayerFactory(file: file, kerasMajor: kerasMajor)
    }

    /// Builds the top-level model; returns the layer records (for weights).
    mutating func buildTopLevel(_ model: ModelSpec) throws -> [LayerRecord] {
        let (records, outputs) = try build(model, inputNodes: nil, prefix: "", topLevel: true)
        graph.outputIndices = outputs
        return records
    }

    /// Adds `model`'s layers. `inputNodes` are the graph nodes feeding a nested
    /// model (nil at the top level, where its InputLayers become graph inputs).
    private mutating func build(
        _ model: ModelSpec, inputNodes: [Int]?, prefix: String, topLevel: Bool
    ) throws -> ([LayerRecord], [Int]) {
        let byName = Dictionary(model.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        guard byName.count == model.layers.count else {
            throw KerasImportError.invalidConfig(file: file, message: "model '\(model.name)' has two layers with one name")
        }
        // tf-keras counts a nested model's calls from 1 (node 0 is the model's own
        // internal node), Keras 3 from 0: a reference one past the last call says which.
        var maxReferenced: [String: Int] = [:]
        for spec in model.layers { for node in spec.inboundNodes { for r in node { maxReferenced[r.layer] = max(maxReferenced[r.layer] ?? 0, r.node) } } }
        for r in model.outputs { maxReferenced[r.layer] = max(maxReferenced[r.layer] ?? 0, r.node) }
        let nodeOffset = Dictionary(uniqueKeysWithValues: model.layers.map { spec in
            (spec.name, spec.nested != nil && (maxReferenced[spec.name] ?? 0) >= spec.inboundNodes.count ? 1 : 0)
        })
        func application(_ ref: TensorRef) -> Int { ref.node - (nodeOffset[ref.layer] ?? 0) }

        // (layer, application) → output nodes of that application.
        var produced: [String: [[Int]]] = [:]
        var records: [String: LayerRecord] = [:]
        var engineLayers: [String: Layer] = [:]

        // Inputs first: graph inputs at the top level, the caller's tensors when nested.
        for (i, ref) in model.inputs.enumerated() {
            guard let spec = byName[ref.layer], spec.className == "InputLayer" else {
                throw KerasImportError.invalidConfig(file: file, message: "model '\(model.name)' input '\(ref.layer)' is not an InputLayer")
            }
            let node: Int
            if let inputNodes {
                guard i < inputNodes.count else {
                    throw KerasImportError.invalidConfig(file: file, message: "model '\(model.name)' is called with \(inputNodes.count) tensors but has \(model.inputs.count) inputs")
                }
                node = inputNodes[i]
            } else {
                let shape = try inputShape(spec)
                node = try graph.addInput(name: spec.name, shape: shape)
                shapes.append(shape)
            }
            produced[spec.name] = [[node]]
            records[spec.name] = LayerRecord(spec: spec, layer: nil)
        }

        // Then every application, in an order where its inputs exist (Keras lists
        // layers topologically, but a shared layer's later calls may come later).
        var pending: [(spec: LayerSpec, app: Int)] = model.layers
            .filter { $0.className != "InputLayer" }
            .flatMap { spec in (0..<max(spec.inboundNodes.count, 0)).map { (spec, $0) } }
        while !pending.isEmpty {
            var progressed = false
            var still: [(spec: LayerSpec, app: Int)] = []
            for (spec, app) in pending {
                let refs = spec.inboundNodes[app]
                guard refs.allSatisfy({ application($0) >= 0 && (produced[$0.layer]?.count ?? 0) > application($0) }) else {
                    still.append((spec, app))
                    continue
                }
                let inputs = try refs.map { ref -> Int in
                    let outs = produced[ref.layer]![application(ref)]
                    guard ref.tensor < outs.count else {
                        throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' reads output \(ref.tensor) of '\(ref.layer)', which has \(outs.count)")
                    }
                    return outs[ref.tensor]
                }
                guard app == produced[spec.name, default: []].count else { still.append((spec, app)); continue }
                let nodeName = prefix + spec.name + (app == 0 ? "" : "@\(app)")
                if let nested = spec.nested {
                    let (children, outs) = try build(nested, inputNodes: inputs, prefix: nodeName + "/", topLevel: false)
                    if records[spec.name] == nil { records[spec.name] = LayerRecord(spec: spec, layer: nil, children: children) }
                    produced[spec.name, default: []].append(outs)
                } else {
                    let layer: Layer
                    if let existing = engineLayers[spec.name] {
                        layer = existing
                    } else {
                        layer = try factory.make(spec, inputShapes: inputs.map { shapes[$0] })
                        engineLayers[spec.name] = layer
                        records[spec.name] = LayerRecord(spec: spec, layer: layer)
                    }
                    let node = try addNode(layer, inputs: inputs, name: nodeName, spec: spec)
                    produced[spec.name, default: []].append([node])
                }
                if topLevel && app == 0 { layerOutputs[spec.name] = produced[spec.name]![0][0] }
                progressed = true
            }
            guard progressed else {
                let names = Set(still.map(\.spec.name)).sorted().prefix(5).joined(separator: ", ")
                throw KerasImportError.invalidConfig(file: file, message: "model '\(model.name)': layers \(names) read tensors no layer produces")
            }
            pending = still
        }
        if !model.trainable {
            for r in records.values { for l in r.allLayers { l.isTrainable = false } }
        }
        let outputs = try model.outputs.map { ref -> Int in
            let app = application(ref)
            guard let outs = produced[ref.layer], app >= 0, app < outs.count, ref.tensor < outs[app].count else {
                throw KerasImportError.invalidConfig(file: file, message: "model '\(model.name)' output '\(ref.layer)' is never computed")
            }
            return outs[app][ref.tensor]
        }
        if topLevel { for ref in model.inputs { layerOutputs[ref.layer] = produced[ref.layer]![0][0] } }
        let ordered = model.layers.compactMap { records[$0.name] }
        return (ordered, outputs)
    }

    private mutating func addNode(_ layer: Layer, inputs: [Int], name: String, spec: LayerSpec) throws -> Int {
        let arityOK = layer.inputArity.map { inputs.count == $0 } ?? (inputs.count >= 2)
        guard arityOK else {
            throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' (\(spec.className)) is called with \(inputs.count) input(s), "
                                                 + "it takes \(layer.inputArity.map(String.init) ?? "two or more")")
        }
        let shape: StaticShape
        do {
            shape = try layer.outputShape(for: inputs.map { shapes[$0] })
        } catch let e as EngineError {
            throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' (\(spec.className)): \(e.localizedDescription)")
        }
        let node = try graph.add(layer, inputs: inputs, nodeName: name)
        shapes.append(shape)
        return node
    }

    private func inputShape(_ spec: LayerSpec) throws -> StaticShape {
        guard let dims = (spec.config["batch_shape"] ?? spec.config["batch_input_shape"])?.array else {
            throw KerasImportError.invalidConfig(file: file, message: "InputLayer '\(spec.name)' declares no shape")
        }
        if let dtype = spec.config["dtype"]?.string, dtype != "float32" {
            throw KerasImportError.unsupportedOption(layer: spec.name, className: "InputLayer", option: "dtype", value: dtype, file: file)
        }
        let shape = dims.map(\.int)
        // Images (H, W, C), grey images without a channel axis (H, W), or vectors.
        guard shape.count == 4 || shape.count == 3 || shape.count == 2 else {
            throw KerasImportError.unsupportedOption(layer: spec.name, className: "InputLayer", option: "shape",
                                                     value: "\(dims.count - 1)-D per sample (SegKit takes images, H×W×C or H×W)", file: file)
        }
        return [nil] + shape.dropFirst()
    }
}
