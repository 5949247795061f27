import ArgumentParser
import SegKitEngine
import SegKit
import SegKitKeras

/// `segkit inspect`: a summary like Keras's `model.summary()`.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a Keras model: layers, output shapes, parameter counts, frozen or trainable.")

    @OptionGroup var model: ModelOptions

    func run() throws { try printSummary(try model.load()) }
}

/// Prints a Keras-style summary of an imported model (shared by inspect and demo).
func printSummary(_ m: KerasModel) throws {
    do {
        print("Model: \"\(m.name)\" — \(m.format), Keras \(m.kerasVersion)")
        if !m.dtypePolicies.isEmpty {
            print("dtype policy \(m.dtypePolicies.joined(separator: ", ")) in the file: SegKit computes in float32 with the file's weights")
        }
        // A summary shows what it can: a damaged segkit.json is for the commands that use it to refuse.
        if let document = try? SegmenterMetadata.document(in: m, file: ""),
           let meta = try? SegmenterMetadata(json: document, outputChannels: nil, file: ""), let recipe = meta.recipe {
            print("SegKit segmenter: recipe \(recipe), \(meta.classes) classes, output \(meta.output ?? "?"), inputs padded to multiples of \(meta.totalStride ?? 1)")
        }
        let rows = m.summaryRows.map { r -> [String] in
            let state = KerasModel.isIdentityAtInference(r.className) ? "identity at inference"
                : r.layersWithWeights == 0 ? "" : (r.trainableLayers == r.layersWithWeights ? "trainable"
                : r.trainableLayers == 0 ? "frozen" : "partly frozen")
            return ["\(r.name) (\(r.className))", describe(r.outputShape), "\(r.parameterCount)", state]
        }
        printTable(header: ["Layer (type)", "Output Shape", "Param #", "Training"], rows: rows, rightAligned: [2])
        let total = m.totalParameters, trainable = m.trainableParameters
        print("Total params: \(total)")
        print("Trainable params: \(trainable)")
        print("Non-trainable params: \(total - trainable)")
        if let stages = try? encoderStages(m.graph), !stages.isEmpty {
            let size = try referenceInputSize(m.graph)
            print("Encoder stages (skip sources by output stride; sizes at a \(size.height)x\(size.width) input, offsets and receptive fields in input pixels):")
            let rows = stages.map { s -> [String] in
                func offset(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v) }
                return ["1/\(s.stride)", s.name, "\(s.height)x\(s.width)x\(s.channels)",
                        s.offsetRows == s.offsetCols ? offset(s.offsetRows) : "\(offset(s.offsetRows)),\(offset(s.offsetCols))",
                        s.receptiveRows == s.receptiveCols ? "\(s.receptiveRows)" : "\(s.receptiveRows)x\(s.receptiveCols)"]
            }
            printTable(header: ["stride", "layer", "map", "offset", "receptive field"], rows: rows, rightAligned: [3, 4])
        }
    }
}

/// A plain-text table with a rule under the header.
func printTable(header: [String], rows: [[String]], rightAligned: Set<Int> = []) {
    let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return rightAligned.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    print(line(header))
    print(String(repeating: "─", count: widths.reduce(0, +) + 2 * (widths.count - 1)))
    rows.forEach { print(line($0)) }
}
