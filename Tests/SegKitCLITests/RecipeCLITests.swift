import Foundation
import Testing
import HDF5
import SegKit

/// The recipes issue's command-line failures: every command serves any image
/// size, and errors name the file and what to do.
@Suite struct RecipeCLITests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-recipes-\(UUID().uuidString)").path

    init() throws { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }

    func build(_ recipe: String, _ classifier: String, _ extra: [String] = []) throws -> String {
        let out = "\(folder)/\(recipe).keras"
        let r = try CLI.run(["build", "--recipe", recipe, "--classifier", CLI.fixture(classifier), "--out", out] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return out
    }

    func input(_ shape: [Int]) throws -> String {
        let path = "\(folder)/input-\(shape.map(String.init).joined(separator: "x")).h5"
        let count = shape.reduce(1, *)
        try HDF5File(creating: path).root.writeDataset("input", shape: shape, floats: (0..<count).map { Float($0 % 97) / 97 })
        return path
    }

    func outputShape(_ path: String) throws -> [Int] { try HDF5File(readingFrom: path).root.dataset("output").shape() }

    /// Was: a heatmap gave 104x104 for 100x100, and skip decoders failed in the graph.
    @Test(arguments: ["heatmap-bilinear", "transposed-skips", "fcn-8s"])
    func forwardOnASegmenterGivesTheInputsHeightAndWidth(_ recipe: String) throws {
        let seg = try build(recipe, "plain_cnn.k3.keras")
        let out = "\(folder)/out-\(recipe).h5"
        let r = try CLI.run(["forward", seg, "--input", try input([1, 100, 100, 1]), "--output", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try outputShape(out) == [1, 100, 100, 11])
        // --raw runs the graph as Keras does, at the size it is given.
        let raw = try CLI.run(["forward", seg, "--raw", "--input", try input([1, 32, 40, 1]), "--output", out])
        #expect(raw.status == 0, "\(raw.stderr)")
    }

    /// Was: predict blamed "a valid-padding U-Net" for a transposed-skips segmenter on the MNIST convnet.
    @Test func predictOnAValidPaddingSegmenterWritesAMaskOfTheImagesSize() throws {
        let seg = try build("transposed-skips", "mnist_convnet.k3.keras")
        let image = "\(folder)/digit.png"
        try PNGImage.write(image, width: 28, height: 28, channels: 1, pixels: (0..<784).map { UInt8($0 % 251) })
        let r = try CLI.run(["predict", seg, image, "--out", "\(folder)/masks"])
        #expect(r.status == 0, "\(r.stderr)")
        let mask = try PNGImage(path: "\(folder)/masks/digit_mask.png")
        #expect(mask.width == 28 && mask.height == 28)
    }

    @Test func inspectShowsStrideOffsetAndReceptiveFieldPerStage() throws {
        let r = try CLI.run(["inspect", CLI.fixture("mnist_convnet.k3.keras")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("receptive field"))
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.contains(["1/4", "max_pooling2d_1", "6x6x64", "4.5", "10"]), "\(r.stdout)")
    }

    /// Was: no way to choose, and a message naming neither the file nor the outputs.
    @Test func aTwoOutputClassifierIsRefusedNamingTheFileAndItsOutputsUntilOutputPicksOne() throws {
        let out = "\(folder)/two.keras"
        let r = try CLI.run(["build", "--recipe", "transposed", "--classifier", CLI.fixture("two_outputs.k3.keras"), "--out", out])
        #expect(r.status == 1)
        #expect(r.stderr.contains("two_outputs.k3.keras") && r.stderr.contains("main, aux") && r.stderr.contains("--output"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        _ = try build("transposed", "two_outputs.k3.keras", ["--output", "aux"])
    }

    /// A head SegKit cannot convert is refused at build, naming the file and the layer.
    @Test func aModelWithoutAClassifierHeadIsRefusedAtBuildNamingTheFile() throws {
        let seg = try build("transposed", "plain_cnn.k3.keras")
        let r = try CLI.run(["build", "--recipe", "fcn-8s", "--classifier", seg, "--out", "\(folder)/again.keras"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("transposed.keras") && r.stderr.contains("cannot"), "\(r.stderr)")
    }
}
