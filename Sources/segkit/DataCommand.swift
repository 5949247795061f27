import SegKitSupport
import ArgumentParser
import Foundation
import HDF5
import SegKit

/// `segkit data fashion-canvas`: writes the running example as an HDF5 file.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Generate the running example's data as HDF5.")

    @Argument(help: "fashion-canvas[:settings], as --data takes it.") var source: String
    @Option(help: "Where Fashion-MNIST's IDX files are.") var fashionDir: String?
    @Flag(help: "Write classifier training data instead: one item per canvas, datasets images and labels.") var classifier = false
    @Flag(help: "Write a folder of PNG pairs (OUT/images/NNNNNN.png, OUT/masks/NNNNNN.png), the layout --data reads, instead of HDF5.")
    var folder = false
    @Option var out: String

    func validate() throws {
        guard !(classifier && folder) else { throw ValidationError("--classifier and --folder: choose one (classifier data is HDF5 only)") }
        try checkSpec {
            guard case .fashionCanvas = try DataSource.parse(source) else { throw ValidationError("segkit data generates fashion-canvas data only, not '\(source)'") }
        }
    }

    func run() throws {
        guard case let .fashionCanvas(spec) = try DataSource.parse(source, fashionFolder: fashionDir) else {
            throw ValidationError("segkit data generates fashion-canvas data only")
        }
        if classifier {
            let (pixels, labels) = try spec.classifierSamples()
            try writeAtomically(out) { path in
                let root = try HDF5File(creating: path).root
                try root.writeDataset("images", shape: [spec.count, spec.canvasSize, spec.canvasSize, 1], bytes: pixels.map { UInt8(clamping: Int($0)) })
                try root.writeDataset("labels", shape: [spec.count], int64s: labels.map(Int64.init))
            }
        } else if folder {
            try writeFolder(spec)
        } else {
            try spec.generate().writeHDF5(out)
        }
        print("wrote \(out)\(folder ? "/" : ""): \(spec.count) \(spec.split.rawValue) canvas(es) of \(spec.canvasSize)x\(spec.canvasSize)" + (classifier ? " for classifier training" : ""))
    }

    /// Each canvas as images/NNNNNN.png (grey) and masks/NNNNNN.png (class ids),
    /// generated in chunks of 1,000 (chunk k with seed + k) so that memory holds
    /// one chunk, however many canvases are asked for.
    func writeFolder(_ spec: FashionCanvas) throws {
        let fm = FileManager.default
        for sub in ["images", "masks"] { try fm.createDirectory(atPath: "\(out)/\(sub)", withIntermediateDirectories: true) }
        for (k, start) in stride(from: 0, to: spec.count, by: 1000).enumerated() {
            var chunk = spec
            chunk.count = min(1000, spec.count - start)
            chunk.seed = spec.seed &+ UInt64(k)
            let data = try chunk.generate()
            for i in 0..<data.count {
                let name = String(format: "%06d.png", start + i)
                let s = try data.sample(i)
                try writeAtomically("\(out)/images/\(name)") {
                    try PNGImage.write($0, width: s.width, height: s.height, channels: 1, pixels: s.pixels.map { UInt8(clamping: Int($0)) })
                }
                try writeAtomically("\(out)/masks/\(name)") {
                    try PNGImage.write($0, width: s.width, height: s.height, channels: 1, pixels: s.mask.map { UInt8(clamping: $0) })
                }
            }
        }
    }
}
