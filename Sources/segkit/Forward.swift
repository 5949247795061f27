import ArgumentParser
import Foundation
import HDF5
import SegKit
import SegKitEngine
import SegKitKeras

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
        let x = try Tensor(shape: shape, scalars: try dataset.readFloats(limit: 1 << 30))
        // A segmenter runs by the size rule of predict and eval: its output has the
        // input's height and width; named layers are those of the padded input.
        let placement = try (x.rank == 4 && !raw ? try storedRunner(m, file: model.model) : nil).map { try $0.sizeRule.placement(height: x.shape[1], width: x.shape[2]) }
        let pass = try m.graph.forward([placement?.padded(x) ?? x], mode: .inference, keep: Set(keep.values))
        var results: [(String, Tensor)] = pass.outputs(of: m.graph).enumerated().map { i, t in (i == 0 ? "output" : "output_\(i)", t) }
        if let placement { results[0].1 = try placement.imageScores(results[0].1, height: x.shape[1], width: x.shape[2]) }
        results += names.map { ($0, pass.values[keep[$0]!]!) }
        try writeAtomically(output) { path in
            let out = try HDF5File(creating: path).root
            for (name, t) in results { try out.writeDataset(name, shape: t.shape, floats: t.scalars) }
        }
    }
}
