import SegKitSupport
import Foundation
import HDF5
import SegKitEngine
import ZIPFoundation

/// Writes an engine graph as a Keras 3 Functional model: a `.keras` archive
/// (config.json, metadata.json, model.weights.h5 in Keras 3's layout, plus the
/// caller's side entries, which Keras ignores) or, for a name ending in `.h5`,
/// the legacy HDF5 model format (side texts as root attributes). Output goes
/// to a temporary name and is renamed on success.
public struct KerasWriter {
    /// The `keras_version` written to metadata.json and the `.h5` attributes:
    /// the Keras 3 release whose saving_lib layout the output follows.
    public static let kerasVersion = "3.15.1"

    /// The graph written: one Keras layer per engine layer, one call per node.
    public let graph: Graph
    /// The Functional model's name (`config.name`).
    public let name: String
    /// Texts stored beside the model: archive entries in a `.keras`, root
    /// attributes in an `.h5` (SegKit's `segkit.json`).
    public var sideTexts: [SideText] = []
    /// Further archive entries (name → file to copy in), e.g. SegKit's training
    /// state; a legacy `.h5` has no place for them.
    public var extraFiles: [String: ScratchFile] = [:]

    /// A writer of `graph` as the model `name`; nothing is written until `write(to:)`.
    public init(graph: Graph, name: String) {
        self.graph = graph
        self.name = name
    }

    /// A Keras layer: one engine layer and every node it is applied at.
    struct ExportLayer {
        let name: String
        let keras: KerasLayerConfig?     // nil for an InputLayer
        let layer: Layer
        var nodes: [Int]
    }

    /// Keras forbids "/" in layer names; flattened nested models use it.
    public static func kerasName(_ nodeName: String) -> String {
        nodeName.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "@", with: "_")
    }

    func exportLayers() throws -> [ExportLayer] {
        var layers: [ExportLayer] = []
        var index: [ObjectIdentifier: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            let id = ObjectIdentifier(node.layer)
            if let k = index[id] { layers[k].nodes.append(i); continue }
            let name = Self.kerasName(node.name)
            let config = node.layer is InputLayer ? nil : try KerasLayerConfig.make(node.layer, name: name)
            index[id] = layers.count
            layers.append(ExportLayer(name: name, keras: config, layer: node.layer, nodes: [i]))
        }
        // Keras pairs a legacy .h5's weights with `model.layers` by position, and names a
        // .keras archive's weights by class and position in it: write in that order.
        let (depth, visit) = Self.kerasOrder(graph)
        func key(_ l: ExportLayer) -> (Int, Int) {
            (l.nodes.map { depth[$0] }.max() ?? -1, l.nodes.compactMap { visit[$0] }.min() ?? Int.max)
        }
        return layers.sorted { a, b in
            let (ka, kb) = (key(a), key(b))
            return ka.0 != kb.0 ? ka.0 > kb.0 : ka.1 < kb.1
        }
    }

    /// Keras 3's `model.layers` order (`map_graph`, keras/src/ops/function.py):
    /// layers by decreasing depth — the longest path from a layer's node to an
    /// output — and, at equal depth, by when a depth-first walk from the outputs
    /// (inputs in order) first reaches them. Returns each node's depth (−1 for a
    /// node no output depends on) and its first-visit number.
    static func kerasOrder(_ graph: Graph) -> (depth: [Int], visit: [Int: Int]) {
        var depth = [Int](repeating: -1, count: graph.nodes.count)
        for o in graph.outputIndices { depth[o] = max(depth[o], 0) }
        for i in graph.nodes.indices.reversed() where depth[i] >= 0 {
            for input in graph.nodes[i].inputs { depth[input] = max(depth[input], depth[i] + 1) }
        }
        var visit: [Int: Int] = [:]
        var layerVisit: [ObjectIdentifier: Int] = [:]
        var stack = graph.outputIndices.reversed().map { $0 }
        while let n = stack.popLast() {
            guard visit[n] == nil else { continue }
            let id = ObjectIdentifier(graph.nodes[n].layer)
            if layerVisit[id] == nil { layerVisit[id] = layerVisit.count }
            visit[n] = layerVisit[id]!
            stack += graph.nodes[n].inputs.reversed()
        }
        return (depth, visit)
    }

    /// Keras 3's Functional model config.
    func modelConfig(_ layers: [ExportLayer]) throws -> JSONValue {
        let shapes = try graph.staticShapes()
        var owner: [Int: (name: String, application: Int)] = [:]
        for l in layers { for (k, n) in l.nodes.enumerated() { owner[n] = (l.name, k) } }
        func shapeJSON(_ s: StaticShape) -> JSONValue { .array(s.map { $0.map { .int($0) } ?? .null }) }
        func tensor(_ node: Int) -> JSONValue {
            ["class_name": "__keras_tensor__",
             "config": ["shape": shapeJSON(shapes[node]), "dtype": "float32",
                        "keras_history": [.string(owner[node]!.name), .int(owner[node]!.application), 0]]]
        }
        let entries: [JSONValue] = layers.map { l in
            if let input = l.layer as? InputLayer {
                return ["module": "keras.layers", "class_name": "InputLayer", "registered_name": nil, "name": .string(l.name),
                        "config": ["batch_shape": shapeJSON(input.shape), "dtype": "float32", "sparse": false, "name": .string(l.name)],
                        "inbound_nodes": []]
            }
            let nodes: [JSONValue] = l.nodes.map { n in
                let inputs = graph.nodes[n].inputs.map(tensor)
                let args: JSONValue = l.layer.isMerge ? [.array(inputs)] : .array(inputs)
                return ["args": args, "kwargs": [:]]
            }
            return ["module": .string(l.keras!.module), "class_name": .string(l.keras!.className), "registered_name": l.keras!.registeredName,
                    "name": .string(l.name), "config": .object(l.keras!.config), "inbound_nodes": .array(nodes)]
        }
        let ref = { (n: Int) -> JSONValue in [.string(owner[n]!.name), .int(owner[n]!.application), 0] }
        return ["module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
                "config": ["name": .string(name), "trainable": true, "layers": .array(entries),
                           "input_layers": .array(graph.inputIndices.map(ref)), "output_layers": .array(graph.outputIndices.map(ref))],
                "build_config": ["input_shape": nil], "compile_config": nil]
    }

    /// Writes `path`: `.h5` → legacy HDF5 model, anything else → `.keras` archive.
    /// - Throws: `KerasExportError` for a layer Keras 3 cannot express;
    ///   `EngineError` when a node's output shape cannot be computed; `HDF5Error` or
    ///   `FileError` when a file cannot be written (the old `path` is then kept).
    public func write(to path: String) throws {
        let layers = try exportLayers()
        let config = try modelConfig(layers)
        try writeAtomically(path) { temp in
            if path.hasSuffix(".h5") {
                try writeLegacy(layers, config: config, to: temp)
            } else {
                try writeArchive(layers, config: config, to: temp)
            }
        }
    }

    private func writeArchive(_ layers: [ExportLayer], config: JSONValue, to path: String) throws {
        let weights = try ScratchFile()
        try weights.withPath { try writeVars(layers, to: $0) }
        let archive: Archive
        do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create) } catch {
            throw FileError(file: path, "cannot create the archive: \(error.localizedDescription)")
        }
        let metadataJSON: JSONValue = ["keras_version": .string(Self.kerasVersion), "date_saved": .string(ISO8601DateFormatter().string(from: Date())),
                                       "writer": "segkit"]
        var entries: [(String, Data)] = [("metadata.json", Data(metadataJSON.jsonText.utf8)), ("config.json", Data(config.jsonText.utf8))]
        entries += sideTexts.map { ($0.entry, Data($0.text.utf8)) }
        // Stored, not deflated, as Keras's saving_lib writes its archives
        // (zipfile's default): float weights barely compress, and deflating a
        // ResNet's 100 MB made every checkpoint of a training run seconds slower.
        do {
            for (entry, data) in entries {
                try archive.addEntry(with: entry, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .none) { position, size in
                    data.subdata(in: Int(position)..<Int(position) + size)
                }
            }
            for (entry, file) in [("model.weights.h5", weights)] + extraFiles.sorted(by: { $0.key < $1.key }) {
                try archive.addEntry(with: entry, type: .file, uncompressedSize: Int64(file.size), compressionMethod: .none) { position, size in
                    try file.read(offset: Int(position), count: size)
                }
            }
        } catch {
            throw FileError(file: path, "cannot write the archive: \(error.localizedDescription)")
        }
    }

    /// Keras 3's weights layout: `layers/<snake_case class>[_n]/vars/<i>`.
    private func writeVars(_ layers: [ExportLayer], to path: String) throws {
        let file = try HDF5File(creating: path)
        let root = try file.root
        let group = try root.createGroup("layers")
        try root.createGroup("vars")
        var keys = Keras3WeightKeys()
        for l in layers {
            let key = keys.next(className: l.keras?.className ?? "InputLayer")
            let vars = try group.createGroup(key).createGroup("vars")
            for (i, p) in l.layer.parameters.enumerated() {
                try vars.writeDataset(String(i), shape: p.value.shape, floats: p.value.scalars)
            }
        }
        try file.flush()
    }

    /// The legacy HDF5 model: `model_config` + `model_weights/<layer>/<layer>/<weight>`.
    private func writeLegacy(_ layers: [ExportLayer], config: JSONValue, to path: String) throws {
        let file = try HDF5File(creating: path)
        let root = try file.root
        try root.writeStringAttribute("model_config", config.jsonText)
        try root.writeStringAttribute("keras_version", Self.kerasVersion)
        try root.writeStringAttribute("backend", "tensorflow")
        for side in sideTexts { try root.writeStringAttribute(side.attribute, side.text) }
        let weights = try root.createGroup("model_weights")
        try weights.writeStringsAttribute("layer_names", layers.map(\.name))
        try weights.writeStringAttribute("keras_version", Self.kerasVersion)
        try weights.writeStringAttribute("backend", "tensorflow")
        for l in layers {
            let g = try weights.createGroup(l.name)
            try g.writeStringsAttribute("weight_names", l.layer.parameters.map { "\(l.name)/\($0.name)" })
            guard !l.layer.parameters.isEmpty else { continue }
            let inner = try g.createGroup(l.name)
            for p in l.layer.parameters {
                try inner.writeDataset(p.name, shape: p.value.shape, floats: p.value.scalars)
            }
        }
        try file.flush()
    }
}

