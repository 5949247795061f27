import Foundation
import Testing
@testable import SegKit

/// The images under Tests/Fixtures/data (make_data_fixtures.py, written by Pillow).
let dataFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/data").path

@Suite struct JPEGTests {
    /// `NAME.jpg` decoded by SegKit against Pillow's decode of it (saved losslessly as `NAME.expected.png`).
    func compare(_ name: String) throws -> (mine: DecodedImage, pillow: DecodedImage, maxDifference: Float) {
        let mine = try ImageFile.readImage("\(dataFixtures)/jpeg/\(name).jpg")
        let pillow = try ImageFile.readImage("\(dataFixtures)/jpeg/\(name).expected.png")
        #expect((mine.width, mine.height, mine.channels) == (pillow.width, pillow.height, pillow.channels))
        let d = zip(mine.pixels, pillow.pixels).map { abs($0 - $1) }.max() ?? .infinity
        return (mine, pillow, d)
    }

    @Test(arguments: ["baseline_rgb", "baseline_444", "grey"])
    func baselineJPEGsDecodeToPillowsPixelsExactly(_ name: String) throws {
        #expect(try compare(name).maxDifference == 0)
    }

    @Test func progressiveJPEGsDecodeWithinOneLevelOfPillow() throws {
        let r = try compare("progressive_rgb")
        #expect(r.maxDifference <= 1)
        #expect(try JPEGImage(path: "\(dataFixtures)/jpeg/progressive_rgb.jpg").isProgressive)
    }

    @Test(arguments: 2...8)
    func theEXIFOrientationIsAppliedAsPillowsExifTransposeDoes(_ orientation: Int) throws {
        let r = try compare("orient_\(orientation)")
        #expect(r.maxDifference == 0)
        #expect(try JPEGImage(path: "\(dataFixtures)/jpeg/orient_\(orientation).jpg").orientation == orientation)
        // The header alone gives the display size.
        let h = try ImageFile.imageHeader("\(dataFixtures)/jpeg/orient_\(orientation).jpg")
        #expect((h.width, h.height) == (orientation >= 5 ? (12, 20) : (20, 12)))
    }

    @Test(arguments: [("cmyk", "CMYK"), ("truncated", "corrupt JPEG"), ("not_a_jpeg", "neither a PNG nor a JPEG")])
    func cmykDamagedAndFakeFilesAreRefusedNamingTheFile(_ name: String, _ reason: String) throws {
        #expect { try ImageFile.readImage("\(dataFixtures)/jpeg/\(name).jpg") } throws: {
            "\($0)".contains("\(name).jpg") && "\($0)".contains(reason)
        }
    }

    @Test func aJPEGMaskIsRefusedBecauseCompressionInventsClassIds() throws {
        #expect { try DataSource.parse("\(dataFixtures)/jpeg_mask_folder").open(DataRequest()) } throws: {
            "\($0)".hasPrefix("masks/a.jpg: is a JPEG mask") && "\($0)".contains("lossless")
        }
    }
}
