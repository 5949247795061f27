import ArgumentParser
import Foundation
import HDF5
import SegKit
import SegKitKeras

/// `segkit data fashion-canvas`: writes the running example as an HDF5 file.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Generate the running example's data as HDF5.")

    @Argument(help: "fashion-canvas[:settings], as --data takes it.") var source: String
    @Option(help: "Where Fashion-MNIST's IDX files are.") var fashionDir: String?
    @Flag(help: "Write classifier training data instead: one item per canvas, datasets images and labels.") var classifier = false
    @Option var out: String

    func run() throws {
        guard case let .fashionCanvas(spec) = try DataSource.parse(source, fashionFolder: fashionDir) else {
            throw ValidationError("segkit data generates fashion-canvas data only")
        }
        if classifier {
            let (pixels, labels) = try spec.classifierSamples()
            try writeAtomically(out) { path in
                let root = try HDF5File(creating: path).root
                try root.writeDataset("images", shape: [spec.count, spec.canvasSize, spec.canvasSize, 1], floats: pixels)
                try root.writeDataset("labels", shape: [spec.count], int64s: labels.map(Int64.init))
            }
        } else {
            try spec.generate().writeHDF5(out)
        }
        print("wrote \(out): \(spec.count) \(spec.split.rawValue) canvas(es) of \(spec.canvasSize)x\(spec.canvasSize)" + (classifier ? " for classifier training" : ""))
    }
}
