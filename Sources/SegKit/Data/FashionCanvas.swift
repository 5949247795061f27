import Foundation
import SegKitEngine

/// The running example: Fashion-MNIST items pasted on an empty canvas. Each
/// 28x28 item lands at a random position (not overlapping another, by default);
/// the mask is the item's class where its pixel intensity is above `threshold`,
/// and the background class (10) everywhere else. Training canvases use
/// training items, test canvases test items; everything follows from the seed.
public struct FashionCanvas: Sendable {
    /// Fashion-MNIST's ten item classes in label order (Xiao et al., 2017), then the background.
    public static let classNames = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                                    "bag", "ankle boot", "background"]
    /// The class of canvas pixels no item covers.
    public static let background: Int32 = 10
    /// Classes of a canvas mask: ten items and the background.
    public static let classes = 11

    /// Which Fashion-MNIST files the items come from: `train` (`train-*`, 60,000 items) or
    /// `test` (`t10k-*`, 10,000).
    public enum Split: String, Sendable { case train, test }

    /// Canvas height and width in pixels (square, at least 28).
    public var canvasSize = 128
    /// Fewest items per canvas; each canvas draws its count uniformly from `minItems`…`maxItems`.
    public var minItems = 1
    /// Most items per canvas (a crowded canvas gets fewer: 50 tries per item for a free spot).
    public var maxItems = 3
    /// Canvases to generate.
    public var count = 256
    /// The split the items come from.
    public var split: Split = .train
    /// Seed of the item counts, positions and choices (the test split mixes in a constant).
    public var seed: UInt64 = 0
    /// Whether items may overlap: the brighter pixel wins, and the later item's mask.
    public var allowOverlap = false
    /// Pixels with intensity above this (of 255) belong to the item: Fashion-MNIST
    /// items fade into their black background, and 32 keeps the soft edge out.
    public var threshold: UInt8 = 32
    /// Folder of the gzipped IDX files (`--fashion-dir`); nil: `defaultFolder()`.
    public var folder: String?

    /// The demo's settings: 256 training canvases of 128x128 pixels, 1–3 items each, seed 0.
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

    /// Generates `count` canvases (grey, one channel, 0…255): images
    /// [count, canvasSize, canvasSize, 1], byte-valued, and masks
    /// [count, canvasSize, canvasSize] of class ids 0…10.
    ///
    /// - Throws: `DataError.badSample` for settings out of range,
    ///   `DataError.notFound` when no Fashion-MNIST folder is found,
    ///   `DataError.badFile` for IDX files that cannot be read or are not
    ///   28x28 images with one label each.
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
    /// empty canvases (class 10) make up one sample in eleven. Pixels are
    /// [count, canvasSize, canvasSize, 1] values 0…255, labels [count].
    ///
    /// - Throws: what `generate()` throws (`DataError`).
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
