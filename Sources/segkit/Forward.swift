import SegKitSupport
import ArgumentParser
import Foundation
import HDF5
import SegKit
import SegKitEngine

/// `segkit forward`: the model's output (and named layers' outputs) for an HDF5
/// input, in inference mode: the contract tests and other tools compare with Keras.
/// For a segmenter SegKit built, `output` is the segmentation at the input's own
/// height and width (`SizeRule`, as in predict and eval).
struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on dataset 'input' (N,H,W,C float32) of an HDF5 file; write 'output' and chosen layers' outputs.")

    @OptionGroup var model: ModelOptions

    @Option(help: "HDF5 file with dataset 'input'.")
    var input: String

    @Option(help: "HDF5 file to write ('output', and one dataset per --layers name).")
    var output: String

    @Option(help: "Comma-separated layer names whose outputs to write too.")
    var layers: String?

    @Flag(help: "Run a segmenter's graph as Keras does, at the input's size (no mirror padding and cropping).")
    var raw = false

    @Option(help: "Images per forward pass: memory holds one batch, whatever the number of images.")
    var batch: Int = 8

    func validate() throws { try require(batch, in: 1...65_536, "--batch") }

    func run() throws {
        let m = try model.load()
        let names = layers.map { $0.split(separator: ",").map(String.init) } ?? []
        var keep: [String: Int] = [:]
        for name in names {
            guard let node = m.layerOutputs[name] ?? m.graph.index(of: name) else {
                throw ValidationError("model '\(m.name)' has no layer '\(name)'")
            }
            keep[name] = node
        }
        let file = try HDF5File(readingFrom: input)
        let dataset = try file.root.dataset("input")
        let shape = try dataset.shape()
        guard let count = shape.first else { throw ValidationError("\(input): dataset 'input' has no batch axis (shape \(shape))") }
        let runner = try shape.count == 4 && !raw ? try storedRunner(m, file: model.model) : nil
        // A batch at a time, each written where it belongs: memory holds one
        // batch of inputs, outputs and activations, whatever the file's count.
        try writeAtomically(output) { path in
            let out = try HDF5File(creating: path).root
            var datasets: [HDF5Dataset] = []
            for start in stride(from: 0, to: max(count, 1), by: batch) {
                let rows = start..<min(count, start + batch)
                let x = try Tensor(shape: [rows.count] + shape.dropFirst(), scalars: try dataset.readFloats(rows: rows))
                // A segmenter runs by the size rule of predict and eval: its output has the
                // input's height and width; named layers are those of the padded input.
                let placement = try runner.map { try $0.sizeRule.placement(height: x.shape[1], width: x.shape[2]) }
                let pass = try m.graph.forward([placement?.padded(x) ?? x], mode: .inference, keep: Set(keep.values))
                var results: [(String, Tensor)] = pass.outputs(of: m.graph).enumerated().map { i, t in (i == 0 ? "output" : "output_\(i)", t) }
                if let placement { results[0].1 = try placement.imageScores(results[0].1, height: x.shape[1], width: x.shape[2]) }
                results += names.map { ($0, pass.values[keep[$0]!]!) }
                if datasets.isEmpty {
                    datasets = try results.map { name, t in
                        try out.createFloatDataset(name, shape: [count] + (t.rank > 0 ? Array(t.shape.dropFirst()) : []))
                    }
                }
                for (k, (name, t)) in results.enumerated() {
                    guard t.rank > 0, t.shape[0] == rows.count else {
                        throw ValidationError("output '\(name)' of shape \(t.shape) has no batch axis of \(rows.count) images")
                    }
                    try datasets[k].writeFloats(rows: rows, t.scalars)
                }
            }
        }
    }
}
