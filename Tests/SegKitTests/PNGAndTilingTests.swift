import Foundation
import Testing
import SegKitEngine
import TestFixtures
@testable import SegKit

func scratchFolder() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct PNGTests {
    @Test func greyAndRGBImagesRoundTripThroughLibpng() throws {
        let dir = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let grey = (0..<12).map { UInt8($0 * 20) }
        try PNGImage.write(dir + "/g.png", width: 4, height: 3, channels: 1, pixels: grey)
        let g = try PNGImage(path: dir + "/g.png")
        #expect((g.width, g.height, g.channels, g.bitDepth) == (4, 3, 1, 8))
        #expect(g.decodedImage.pixels == grey.map(Float.init))
        #expect(try MaskFile(path: dir + "/g.png", encoding: .classIds).labels == grey.map(Int32.init))
        let rgb = (0..<18).map { UInt8($0 * 10) }
        try PNGImage.write(dir + "/c.png", width: 3, height: 2, channels: 3, pixels: rgb)
        let c = try PNGImage(path: dir + "/c.png")
        #expect(c.decodedImage.channels == 3 && c.decodedImage.pixels == rgb.map(Float.init))
        #expect { try MaskFile(path: dir + "/c.png", encoding: .classIds) } throws: { "\($0)".contains("RGB mask") && "\($0)".contains("--mask-colors") }
    }

    /// Found by a read of the decoder: 1-bit grey images reached the network as 0 and 1.
    @Test(arguments: [1, 2, 4])
    func lowBitGreyImagesAreScaledToPillowsLevelsAndMasksKeepTheirIds(_ bits: Int) throws {
        let path = "\(dataFixtures)/low_bit/grey\(bits).png"
        let mine = try ImageFile.readImage(path)
        let pillow = try ImageFile.readImage("\(dataFixtures)/low_bit/grey\(bits).expected.png")
        #expect((mine.width, mine.height, mine.channels) == (24, 16, 1))
        #expect(mine.pixels == pillow.pixels)
        let levels = Set(try MaskFile(path: path, encoding: .classIds).labels)
        #expect(levels == Set(0...Int32((1 << bits) - 1)), "a mask's ids are the stored levels")
    }

    @Test func corruptTruncatedAndNonPNGFilesAreClearErrors() throws {
        let dir = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PNGImage.write(dir + "/ok.png", width: 64, height: 64, channels: 1, pixels: [UInt8](repeating: 7, count: 64 * 64))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/ok.png"))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.png"))
        try Data("GIF89a".utf8).write(to: URL(fileURLWithPath: dir + "/fake.png"))
        #expect { try PNGImage(path: dir + "/cut.png") } throws: { "\($0)".contains("cut.png") }
        #expect { try PNGImage(path: dir + "/fake.png") } throws: { "\($0)".contains("not a PNG file") }
        #expect { try PNGImage(path: dir + "/missing.png") } throws: { "\($0)".contains("missing.png") }
    }

    @Test func aFolderPairsImagesAndMasksByNameAndNamesBadPairs() throws {
        let dir = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        for name in ["a", "b"] {
            try PNGImage.write("\(dir)/images/\(name).png", width: 4, height: 4, channels: 1, pixels: [UInt8](repeating: 100, count: 16))
            try PNGImage.write("\(dir)/masks/\(name).png", width: 4, height: 4, channels: 1, pixels: [UInt8](repeating: 1, count: 16))
        }
        try PNGImage.write("\(dir)/images/c.png", width: 4, height: 4, channels: 1, pixels: [UInt8](repeating: 0, count: 16))
        try PNGImage.write("\(dir)/masks/c.png", width: 5, height: 4, channels: 1, pixels: [UInt8](repeating: 0, count: 20))
        #expect { try DataSource.folder(dir).open(DataRequest()) } throws: { "\($0)".contains("masks/c.png") && "\($0)".contains("5x4") }
        let loaded = try DataSource.folder(dir).open(DataRequest(skipBad: true))
        #expect(loaded.samples.count == 2 && loaded.skipped.count == 1)
        #expect { try DataSource.folder(dir).open(DataRequest(classes: 1)) } throws: { "\($0)".hasPrefix("masks/a.png: class id 1 at (row 0, column 0)") }
    }
}

@Suite struct TilingTests {
    @Test func overlapTilePredictionEqualsTheWholeImage() throws {
        let (seg, _) = try build("transposed-skips")
        let runner = Segmenter(graph: seg.graph, totalStride: seg.totalStride)
        let x = randomImages([1, 100, 130, 1], seed: 8)
        let margin = 32
        let tiled = try runner.tiledScores(x, tile: 96, margin: margin)   // 32x32 kept per tile
        // The whole image, mirror-padded the same way, run at once, cropped.
        let padded = reflectPad(x, top: margin, bottom: margin, left: margin, right: margin)
        let reference = crop(try runner.scores(padded), y: margin, x: margin, height: 100, width: 130)
        #expect(tiled.shape == [1, 100, 130, 11])
        #expect(maxAbsDifference(tiled, reference) <= 1e-5)
    }

    /// A valid-padding encoder's windows lose their margins and sit on its own grid.
    @Test(arguments: ["transposed-skips", "unet-pretrained", "heatmap-bilinear"])
    func overlapTilePredictionEqualsTheWholeImageOnAValidPaddingEncoder(_ recipe: String) throws {
        let (seg, _) = try RealClassifierRecipeTests.build(recipe, on: RecipeFailureTests.mnist)
        let runner = seg.runner
        let x = randomImages([1, 70, 53, 1], seed: 3)
        let margin = 40
        let tiled = try runner.tiledScores(x, tile: 48, margin: margin)
        let padded = reflectPad(x, top: margin, bottom: margin, left: margin, right: margin)
        let reference = crop(try runner.scores(padded), y: margin, x: margin, height: 70, width: 53)
        #expect(tiled.shape == [1, 70, 53, 10])
        #expect(maxAbsDifference(tiled, reference) <= 1e-5)
    }
}
