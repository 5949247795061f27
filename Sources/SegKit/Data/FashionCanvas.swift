import Foundation
import SegKitEngine

/// The running example: Fashion-MNIST items pasted on an empty canvas. Each
/// 28x28 item lands at a random position (not overlapping another, by default);
/// the mask is the item's class where its pixel intensity is above `threshold`,
/// and the background class (10) everywhere else. Training canvases use
/// training items, test canvases test items; everything follows from the seed.
public struct FashionCanvas: Sendable {
    public static let classNames = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                                    "bag", "ankle boot", "background"]
    public static let background: Int32 = 10
    public static let classes = 11

    public enum Split: String, Sendable { case train, test }

    public var canvasSize = 128
    public var minItems = 1
    public var maxItems = 3
    public var count = 256
    public var split: Split = .train
    public var seed: UInt64 = 0
    public var allowOverlap = false
    /// Pixels with intensity above this (of 255) belong to the item: Fashion-MNIST
    /// items fade into their black background, and 32 keeps the soft edge out.
    public var threshold: UInt8 = 32
    public var folder: String?

    public init() {}

    /// Where Debian's `dataset-fashion-mnist` put the IDX files: its file list, then the usual path.
    public static func defaultFolder() -> String? {
        let list = "/var/lib/dpkg/info/dataset-fashion-mnist.list"
        if let text = try? String(contentsOfFile: list, encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasSuffix("train-images-idx3-ubyte.gz") }) {
            return (String(line) as NSString).deletingLastPathComponent
        }
        let usual = "/usr/share/datasets/fashion-mnist"
        return FileManager.default.fileExists(atPath: usual) ? usual : nil
    }

    func items() throws -> (images: IDXFile, labels: IDXFile) {
        guard let folder = folder ?? Self.defaultFolder() else {
            throw DataError.notFound("Fashion-MNIST not found: install Debian's dataset-fashion-mnist (make deps) or give --fashion-dir")
        }
        let prefix = split == .train ? "train" : "t10k"
        let images = try IDXFile(path: "\(folder)/\(prefix)-images-idx3-ubyte.gz")
        let labels = try IDXFile(path: "\(folder)/\(prefix)-labels-idx1-ubyte.gz")
        guard images.dimensions.count == 3, images.dimensions[1] == 28, images.dimensions[2] == 28,
              labels.dimensions == [images.dimensions[0]] else {
            throw DataError.badFile(folder, "Fashion-MNIST files with shapes \(images.dimensions) and \(labels.dimensions)")
        }
        return (images, labels)
    }

    /// Generates `count` canvases (grey, one channel, 0…255).
    public func generate() throws -> SegmentationDataset {
        guard canvasSize >= 28, minItems >= 1, maxItems >= minItems, count >= 1 else {
            throw DataError.badSample("fashion-canvas", "canvas \(canvasSize) must be ≥ 28 and items \(minItems)…\(maxItems) ≥ 1")
        }
        let (images, labels) = try items()
        let n = canvasSize
        var pixels = [Float](repeating: 0, count: count * n * n)
        var masks = [Int32](repeating: Self.background, count: count * n * n)
        var rng = SeededGenerator(seed: seed ^ (split == .train ? 0 : 0x5EED))
        let available = images.dimensions[0]
        for c in 0..<count {
            let wanted = Int.random(in: minItems...maxItems, using: &rng)
            var placed: [(Int, Int)] = []
            for _ in 0..<wanted {
                // Up to 50 tries for a free spot; a crowded canvas just gets fewer items.
                var spot: (Int, Int)?
                for _ in 0..<50 {
                    let y = Int.random(in: 0...(n - 28), using: &rng), x = Int.random(in: 0...(n - 28), using: &rng)
                    if allowOverlap || placed.allSatisfy({ abs($0.0 - y) >= 28 || abs($0.1 - x) >= 28 }) { spot = (y, x); break }
                }
                guard let (y0, x0) = spot else { break }
                placed.append((y0, x0))
                let item = Int.random(in: 0..<available, using: &rng)
                let label = Int32(labels.bytes[item])
                for r in 0..<28 {
                    for col in 0..<28 {
                        let v = images.bytes[item * 784 + r * 28 + col]
                        let p = (c * n + y0 + r) * n + x0 + col
                        if v > 0 { pixels[p] = max(pixels[p], Float(v)) }
                        if v > threshold { masks[p] = label }
                    }
                }
            }
        }
        return SegmentationDataset(count: count, height: n, width: n, channels: 1, pixels: pixels, masks: masks, isByteValued: true)
    }

    /// Classifier training data: one item per canvas, the label its class;
    /// empty canvases (class 10) make up one sample in eleven.
    public func classifierSamples() throws -> (pixels: [Float], labels: [Int32]) {
        var one = self
        one.minItems = 1
        one.maxItems = 1
        let data = try one.generate()
        var labels: [Int32] = []
        var pixels = data.pixels
        var rng = SeededGenerator(seed: seed &+ 77)
        for i in 0..<data.count {
            if Int.random(in: 0..<11, using: &rng) == 0 {
                for k in 0..<data.labelsPerImage { pixels[i * data.labelsPerImage + k] = 0 }
                labels.append(Self.background)
            } else {
                let mask = data.masks[(i * data.labelsPerImage)..<((i + 1) * data.labelsPerImage)]
                labels.append(mask.first { $0 != Self.background } ?? Self.background)
            }
        }
        return (pixels, labels)
    }
}
