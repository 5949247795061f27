import Foundation
import HDF5
import SegKitEngine

/// Reads weights into the engine layers of an imported model, from either of
/// the two HDF5 layouts Keras writes:
/// - legacy (`model.save("m.h5")`, Keras 2 `save_weights`): a group per layer
///   named in `layer_names`, datasets named in its `weight_names`;
/// - Keras 3 (`.weights.h5`, `model.weights.h5` in `.keras`): `layers/<key>/vars/<i>`
///   where <key> is the layer's class in snake case, numbered in layer order
///   (`conv2d`, `conv2d_1`, …), and nested models have their own `layers/`.
/// Every shape is checked against the config before any data is read.
struct KerasWeightReader {
    let file: String
    /// No single weight may declare more elements than this (a hostile file
    /// claiming a huge tensor gets an error, not an allocation).
    static let elementLimit = 1 << 28

    // MARK: legacy layout

    func readLegacy(_ group: HDF5Group, records: [LayerRecord]) throws {
        let names = try chunkedStrings(group, "layer_names")
        let byName = Dictionary(records.map { ($0.spec.name, $0) }, uniquingKeysWith: { a, _ in a })
        var loaded = Set<String>()
        for name in names {
            guard let record = byName[name] else {
                throw KerasImportError.missingWeights(layer: name, file: file, message: "the weights file has a layer the config does not have")
            }
            let layerGroup = try group.group(name)
            let weightNames = try chunkedStrings(layerGroup, "weight_names")
            if record.children.isEmpty {
                guard let layer = record.layer else {
                    if weightNames.isEmpty { continue }
                    throw KerasImportError.missingWeights(layer: name, file: file, message: "has weights in the file but none in the config")
                }
                try assign(weightNames.map { ($0, try layerGroup.dataset(atPath: $0)) }, to: layer)
            } else {
                // A nested model's weights are named "<sublayer>/<weight>[:0]".
                let sublayers = Dictionary(record.allLayers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
                var perLayer: [String: [(String, HDF5Dataset)]] = [:]
                var order: [String] = []
                for w in weightNames {
                    let parts = w.split(separator: "/")
                    guard parts.count >= 2, sublayers[String(parts[parts.count - 2])] != nil else {
                        throw KerasImportError.missingWeights(layer: name, file: file, message: "weight '\(w)' names no layer of the nested model")
                    }
                    let sub = String(parts[parts.count - 2])
                    if perLayer[sub] == nil { order.append(sub) }
                    perLayer[sub, default: []].append((w, try layerGroup.dataset(atPath: w)))
                }
                for sub in order { try assign(perLayer[sub]!, to: sublayers[sub]!) }
                for l in record.allLayers where !l.parameters.isEmpty && perLayer[l.name] == nil {
                    throw KerasImportError.missingWeights(layer: l.name, file: file, message: "the weights file has no weights for it")
                }
            }
            loaded.insert(name)
        }
        for r in records where !loaded.contains(r.spec.name) && r.allLayers.contains(where: { !$0.parameters.isEmpty }) {
            throw KerasImportError.missingWeights(layer: r.spec.name, file: file, message: "the weights file has no weights for it")
        }
    }

    /// Keras 2 splits attributes over 64 KiB into `name0`, `name1`, … chunks.
    private func chunkedStrings(_ g: HDF5Group, _ name: String) throws -> [String] {
        if g.hasAttribute(name) { return try g.stringsAttribute(name) }
        var all: [String] = []
        var i = 0
        while g.hasAttribute("\(name)\(i)") {
            all += try g.stringsAttribute("\(name)\(i)")
            i += 1
        }
        guard i > 0 else {
            throw KerasImportError.missingWeights(layer: g.path, file: file, message: "attribute '\(name)' is missing: not a Keras weights group")
        }
        return all
    }

    /// Matches file weights to a layer's parameters by Keras weight name
    /// ("conv1/kernel:0" → "kernel"), falling back to order when names are generic.
    private func assign(_ weights: [(String, HDF5Dataset)], to layer: Layer) throws {
        let params = layer.parameters
        guard weights.count == params.count else {
            throw KerasImportError.missingWeights(
                layer: layer.name, file: file,
                message: "the config gives it \(params.count) weights (\(params.map(\.name).joined(separator: ", "))), the file \(weights.count) (\(weights.map(\.0).joined(separator: ", ")))")
        }
        let shortNames = weights.map { w -> String in
            let last = w.0.split(separator: "/").last.map(String.init) ?? w.0
            return last.split(separator: ":").first.map(String.init) ?? last
        }
        let byName = Set(shortNames) == Set(params.map(\.name)) && Set(shortNames).count == params.count
        for (i, p) in params.enumerated() {
            let k = byName ? shortNames.firstIndex(of: p.name)! : i
            try load(weights[k].1, into: p, layer: layer.name)
        }
    }

    // MARK: Keras 3 layout

    func readVars(_ root: HDF5Group, records: [LayerRecord]) throws {
        guard root.contains("layers") else {
            throw KerasImportError.unknownFormat(file: file, message: "has no 'layers' group: not a Keras 3 weights file")
        }
        try readLayers(try root.group("layers"), records: records)
    }

    private func readLayers(_ layersGroup: HDF5Group, records: [LayerRecord]) throws {
        var keys = Keras3WeightKeys()
        for record in records {
            let key = keys.next(className: record.spec.nested != nil ? record.spec.nested!.className : record.spec.className)
            if record.spec.nested != nil {
                guard layersGroup.contains(key) else {
                    throw KerasImportError.missingWeights(layer: record.spec.name, file: file, message: "no group '\(layersGroup.path)/\(key)' for this nested model")
                }
                try readLayers(try layersGroup.group(key).group("layers"), records: record.children)
                continue
            }
            guard let layer = record.layer, !layer.parameters.isEmpty else { continue }
            guard layersGroup.contains(key) else {
                throw KerasImportError.missingWeights(layer: record.spec.name, file: file, message: "no group '\(layersGroup.path)/\(key)' in the weights file")
            }
            let vars = try layersGroup.group(key).group("vars")
            let count = try vars.childNames().count
            guard count == layer.parameters.count else {
                throw KerasImportError.missingWeights(
                    layer: layer.name, file: file,
                    message: "the config gives it \(layer.parameters.count) weights (\(layer.parameters.map(\.name).joined(separator: ", "))), '\(vars.path)' holds \(count)")
            }
            for (i, p) in layer.parameters.enumerated() {
                try load(try vars.dataset(String(i)), into: p, layer: layer.name)
            }
        }
    }

    // MARK: shared

    /// Checks the declared shape, then reads. Shapes equal up to axes of size 1
    /// have the same memory layout and are accepted (Keras 2 stores
    /// Normalization's statistics as (1, 1, 1, C), Keras 3 as (C,)).
    private func load(_ dataset: HDF5Dataset, into p: Parameter, layer: String) throws {
        let shape = try dataset.shape()
        let expected = p.value.shape
        guard shape == expected || shape.filter({ $0 != 1 }) == expected.filter({ $0 != 1 }) else {
            throw KerasImportError.shapeMismatch(layer: layer, weight: p.name, expected: expected, found: shape, file: file)
        }
        let values = try dataset.readFloats(limit: Self.elementLimit)
        p.value = try Tensor(shape: expected, scalars: values)
    }
}
