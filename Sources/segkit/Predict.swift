import SegKitSupport
import ArgumentParser
import Foundation
import SegKit
import SegKitEngine

/// `segkit predict`: a class-id mask PNG and a colour overlay PNG per image.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Segment PNG or JPEG images: NAME_mask.png (class ids), NAME_overlay.png, legend.txt/legend.png.")

    @Argument(help: "The segmenter (.keras or .h5).") var segmenter: String
    @Argument(help: "A PNG or JPEG image, or a folder of them.") var images: String
    @Option(help: "Output folder.") var out: String
    @Option(parsing: .unconditional, help: "Images larger than this (either side) are segmented tile by tile (overlap-tile).") var tile: Int = 512
    @Option(parsing: .unconditional, help: "Mirrored margin around each tile, ≥ the receptive-field radius.") var margin: Int = 32
    @Option(help: "unit, raw, symmetric or mean-std:M,S (default: the segmenter's).") var inputScale: String?
    @Flag(help: "Skip images that cannot be read (and say which) instead of stopping at the first.") var skipBad = false

    func validate() throws {
        try require(tile, in: 16...65_536, "--tile")
        try require(margin, in: 0...4096, "--margin")
        try checkSpec { if let inputScale { _ = try InputScaling(parsing: inputScale) } }
    }

    func run() throws {
        let file = try SegmenterFile(segmenter)
        let (classes, names) = (file.classes, file.classNames)
        let scale = try file.inputScaling(override: inputScale)
        let runner = file.runner
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: images, isDirectory: &isFolder) else { throw ValidationError("\(images): no such file or folder") }
        let files = isFolder.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: images)
                .filter { !$0.hasPrefix(".") && ImageFile.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .sorted().map { images + "/" + $0 }
            : [images]
        guard !files.isEmpty else { throw ValidationError("\(images): no PNG or JPEG images") }
        let channels = inputChannels(of: file.model.graph)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let palette = ClassPalette(classes: classes, background: file.stored.background ?? classes - 1)
        var skipped: [String] = []
        for file in files {
            var image: DecodedImage
            do { image = try ImageFile.readImage(file) } catch let e as DataError where skipBad {
                skipped.append("\(e)")
                continue
            }
            if image.channels == 1 && channels == 3 { image = image.replicatedToRGB() }
            if let channels, image.channels != channels {
                throw ValidationError("\(file): a colour image, and this segmenter takes grey images (1 channel); build it with --input-channels 3")
            }
            let pixels = image.pixels
            let x = try Tensor(shape: [1, image.height, image.width, image.channels], scalars: pixels.map(scale.apply))
            let scores = max(image.width, image.height) > tile ? try runner.tiledScores(x, tile: tile, margin: margin) : try runner.scores(x)
            let labels = argmax(scores)
            let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            try writeAtomically("\(out)/\(stem)_mask.png") { try PNGImage.write($0, width: image.width, height: image.height, channels: 1, pixels: labels.map { UInt8(clamping: $0) }) }
            try writeAtomically("\(out)/\(stem)_overlay.png") {
                try PNGImage.write($0, width: image.width, height: image.height, channels: 3,
                                   pixels: palette.overlay(pixels: pixels, channels: image.channels, labels: labels))
            }
            print("\(file): \(image.width)x\(image.height) → \(out)/\(stem)_mask.png, \(stem)_overlay.png")
        }
        try palette.writeLegend(folder: out, names: names)
        if !skipped.isEmpty {
            FileHandle.standardError.write(Data("skipped \(skipped.count) image(s) that could not be read:\n  \(skipped.prefix(10).joined(separator: "\n  "))\n".utf8))
        }
    }
}

func argmax(_ scores: Tensor) -> [Int] {
    let k = scores.shape.last!
    return (0..<(scores.count / k)).map { p in
        var best = 0
        for c in 1..<k where scores.scalars[p * k + c] > scores.scalars[p * k + best] { best = c }
        return best
    }
}
