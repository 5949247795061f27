import SegKitSupport
import Foundation
import HDF5
import SegKitEngine

/// A Keras classifier (or any supported model) imported into an engine graph,
/// with the weights of the file and Keras's layer names.
public struct KerasModel {
    /// The model's name in its config (`config.name`, e.g. "resnet50").
    public let name: String
    /// The engine graph: nested models flattened into it (nodes "outer/inner"),
    /// a shared layer one engine layer at nodes "name", "name@1", …; weights loaded.
    public let graph: Graph
    /// "2.21.0", "3.15.1", … as the file says; the major version decides a few defaults.
    public let kerasVersion: String
    /// Which of Keras's file layouts it came from.
    public let format: KerasFormat
    /// Keras's top-level layer name → the graph node of its output (first application).
    public let layerOutputs: [String: Int]
    /// The top-level Keras layers in config order, for summaries.
    public let summaryRows: [SummaryRow]
    /// Reduced-precision dtype policies in the file (e.g. "mixed_float16"): SegKit
    /// runs the model in float32 with the file's weights.
    public var dtypePolicies: [String] = []
    /// The side files asked for at `load` that the file holds (another tool's
    /// parts, which Keras ignores: SegKit's `segkit.json`, a checkpoint's state).
    public var sideFiles = SideFiles()

    /// One top-level Keras layer (or nested model) as `inspect` lists it.
    public struct SummaryRow {
        /// The Keras layer name.
        public let name: String
        /// The Keras class ("Conv2D"; a model class such as "Functional" for a nested model).
        public let className: String
        /// The output shape of its first application, batch axis first (nil: any
        /// size); [] when no node of the graph is its output.
        public let outputShape: StaticShape
        /// Weight elements (float32 scalars) of the layer, or of all a nested model's layers.
        public let parameterCount: Int
        /// Those of `parameterCount` that training may change.
        public let trainableCount: Int
        /// Layers whose Keras `trainable` flag is on, and all layers with weights.
        public let trainableLayers: Int
        /// Engine layers with at least one weight: 0 or 1 for a layer, any number for a nested model.
        public let layersWithWeights: Int
        /// Whether the row is a nested model used as a layer.
        public let isModel: Bool
    }

    /// Loads `path` (`.h5`, `.keras` or `.weights.h5`); `configPath` gives the
    /// architecture for a weights-only file (a `to_json()` file, a `config.json`
    /// or a `.keras` archive).
    /// - Throws: `KerasImportError` for an unknown layout, an unsupported layer or
    ///   option, a malformed config or missing or misshapen weights; `HDF5Error`
    ///   for an unreadable HDF5 file or weight; `FileError` for a config that is not
    ///   JSON (or is too large or deep); `EngineError` when a
    ///   layer refuses its options (e.g. Permute dims that are no permutation).
    public static func load(_ path: String, configPath: String? = nil, sideFiles names: SideFileNames = SideFileNames()) throws -> KerasModel {
        guard FileManager.default.fileExists(atPath: path) else {
            throw KerasImportError.unknownFormat(file: path, message: "no such file")
        }
        if KerasArchive.isZip(path) {
            let archive = try KerasArchive(path: path, sideEntries: names.entries)
            let config = try JSONValue.parse(archive.config, source: path + " config.json")
            let version = archive.metadata.flatMap { try? JSONValue.parse($0, source: path) }?["keras_version"]?.string ?? "3"
            let weights = try archive.weights.withPath { try HDF5File(readingFrom: $0, reportedAs: path + " model.weights.h5") }
            var model = try assemble(config: config, version: version, format: .kerasArchive, file: path) { reader, records in
                try reader.readVars(try weights.root, records: records)
            }
            model.sideFiles.entries = archive.sideEntries
            return model
        }
        let file = try HDF5File(readingFrom: path)
        let root = try file.root
        if root.hasAttribute("model_config") {
            let config = try JSONValue.parse(Data(try root.stringAttribute("model_config").utf8), source: path + " model_config")
            let version = (try? root.stringAttribute("keras_version")) ?? "2"
            let weights = root.contains("model_weights") ? try root.group("model_weights") : root
            var model = try assemble(config: config, version: version, format: .legacyModel, file: path) { reader, records in
                try reader.readLegacy(weights, records: records)
            }
            for name in names.attributes where root.hasAttribute(name) {
                model.sideFiles.attributes[name] = try root.stringAttribute(name)
            }
            return model
        }
        let legacyWeights = root.hasAttribute("layer_names") || root.hasAttribute("layer_names0")
        guard legacyWeights || root.contains("layers") else {
            throw KerasImportError.unknownFormat(file: path, message: "is HDF5 but not a Keras model or weights file (no model_config, layer_names or layers group)")
        }
        let format: KerasFormat = legacyWeights ? .legacyWeights : .kerasWeights
        guard let configPath else { throw KerasImportError.configRequired(file: path, format: format.description) }
        let (config, configVersion) = try readConfig(configPath)
        let version = legacyWeights ? ((try? root.stringAttribute("keras_version")) ?? configVersion) : configVersion
        return try assemble(config: config, version: version, format: format, file: path) { reader, records in
            if legacyWeights { try reader.readLegacy(root, records: records) } else { try reader.readVars(root, records: records) }
        }
    }

    /// A `to_json()` file, a `config.json`, or a `.keras` archive's config.
    private static func readConfig(_ path: String) throws -> (JSONValue, String) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw KerasImportError.invalidConfig(file: path, message: "no such config file")
        }
        if KerasArchive.isZip(path) {
            let archive = try KerasArchive(path: path)
            let version = archive.metadata.flatMap { try? JSONValue.parse($0, source: path) }?["keras_version"]?.string ?? "3"
            return (try JSONValue.parse(archive.config, source: path + " config.json"), version)
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw KerasImportError.invalidConfig(file: path, message: "cannot be read: \(error.localizedDescription)")
        }
        let json = try JSONValue.parse(data, source: path)
        // Keras 2's to_json() records its version; Keras 3's configs do not.
        return (json, json["keras_version"]?.string ?? "3")
    }

    private static func assemble(
        config: JSONValue, version: String, format: KerasFormat, file: String,
        readWeights: (KerasWeightReader, [LayerRecord]) throws -> Void
    ) throws -> KerasModel {
        let spec = try ModelSpecParser(file: file).parseModel(config)
        let major = Int(version.split(separator: ".").first ?? "3") ?? 3
        var builder = KerasGraphBuilder(file: file, kerasMajor: major)
        let records = try builder.buildTopLevel(spec)
        try readWeights(KerasWeightReader(file: file), records)
        let shapes = builder.shapes
        let rows = records.map { r -> SummaryRow in
            let layers = r.allLayers
            // A layer shared inside a nested model counts once, as Keras counts it.
            var seen = Set<ObjectIdentifier>()
            let all = layers.flatMap(\.parameters).filter { seen.insert(ObjectIdentifier($0)).inserted }
            let node = builder.layerOutputs[r.spec.name]
            return SummaryRow(name: r.spec.name, className: r.spec.className,
                              outputShape: node.map { shapes[$0] } ?? [],
                              parameterCount: all.reduce(0) { $0 + $1.value.count },
                              trainableCount: all.filter(\.isTrainable).reduce(0) { $0 + $1.value.count },
                              trainableLayers: layers.filter { !$0.parameters.isEmpty && $0.isTrainable }.count,
                              layersWithWeights: layers.filter { !$0.parameters.isEmpty }.count,
                              isModel: r.spec.nested != nil)
        }
        var model = KerasModel(name: spec.name, graph: builder.graph, kerasVersion: version, format: format,
                               layerOutputs: builder.layerOutputs, summaryRows: rows)
        model.dtypePolicies = builder.factory.policies.names.sorted()
        return model
    }

    /// Whether a Keras class is imported as the identity (augmentation and noise layers).
    public static func isIdentityAtInference(_ className: String) -> Bool {
        KerasDropoutAndIdentityLayers.identityAtInference.contains(className)
    }

    /// Weight elements (float32 scalars) in the whole graph.
    public var totalParameters: Int { graph.parameters.reduce(0) { $0 + $1.value.count } }
    /// Weight elements training may change (frozen layers' excluded).
    public var trainableParameters: Int { graph.trainableParameters.reduce(0) { $0 + $1.value.count } }
}

/// Which of Keras's file layouts a model came from: the HDF5 model (Keras 2
/// hdf5_format, Keras 3 legacy_h5_format), Keras 2's HDF5 weights, the Keras 3
/// `.keras` archive and the Keras 3 `.weights.h5` (both Keras 3 saving_lib).
public enum KerasFormat: Sendable, CustomStringConvertible {
    case legacyModel, legacyWeights, kerasArchive, kerasWeights

    /// The layout named for people, with its extension and what marks it.
    public var description: String {
        switch self {
        case .legacyModel: return "Keras HDF5 model (.h5, model_config + model_weights)"
        case .legacyWeights: return "Keras 2 HDF5 weights file (layer_names / weight_names)"
        case .kerasArchive: return "Keras 3 archive (.keras)"
        case .kerasWeights: return "Keras 3 weights file (.weights.h5)"
        }
    }
}
