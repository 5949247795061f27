import Foundation
import Testing
@testable import SegKit

@Suite struct DatasetLayoutTests {
    @Test func vocReadsItsSplitListsPaletteMasksAndIgnoresTheVoidBorder() throws {
        let train = try DataSource.parse("voc:\(dataFixtures)/voc").open(DataRequest(classes: 21))
        let val = try DataSource.parse("voc:\(dataFixtures)/voc/VOC2012:val").open(DataRequest(classes: 21))
        #expect(train.samples.count == 6 && val.samples.count == 2, "the image listed in no split must be left out")
        #expect(train.classes?.names.count == 21 && train.classes?.names[15] == "person" && train.classes?.background == 0)
        #expect(train.ignoreLabel == 255)
        #expect(train.samples.uniformSize == nil && train.samples.sizeCounts.count == 6)
        let s = try train.samples.sample(0)
        #expect(s.name == "JPEGImages/2007_000032.jpg" && (s.width, s.height, s.channels) == (48, 36, 3))
        #expect(Set(s.mask).isSubset(of: [0, 1, 7, 15, 255]) && s.mask.contains(255))
        // A segmenter with fewer classes is told which file, pixel and value, and what to do.
        #expect { try DataSource.parse("voc:\(dataFixtures)/voc").open(DataRequest(classes: 3, ignoreLabel: 255)) } throws: {
            "\($0)".hasPrefix("SegmentationClass/2007_000032.png: class id") && "\($0)".contains("(0 to 2)")
        }
        #expect { try DataSource.parse("voc:\(dataFixtures)/voc:training").open(DataRequest()) } throws: { "\($0)".contains("train, val or trainval") }
    }

    @Test func petsTrimapsMapToPetAndBackgroundWithTheBorderAsAsked() throws {
        let pets = try DataSource.parse("pets:\(dataFixtures)/pets").open(DataRequest(classes: 2, channels: 3))
        #expect(pets.samples.count == 4 && pets.classes?.names == ["pet", "background"] && pets.ignoreLabel == 255)
        #expect(pets.notes.contains { $0.contains("1 grey image(s) repeated into 3 channels") })
        let masks = try (0..<4).flatMap { try pets.samples.mask($0) }
        #expect(Set(masks) == [0, 1, 255])
        // The EXIF-rotated image is read in display orientation, the size of its trimap.
        let rotated = try (0..<4).map { try pets.samples.sample($0) }.first { $0.name.hasSuffix("Bengal_3.jpg") }
        #expect(rotated?.width == 44 && rotated?.height == 60)
        let threeClasses = try DataSource.parse("pets:\(dataFixtures)/pets:test:border=class").open(DataRequest(classes: 3))
        #expect(threeClasses.samples.count == 2 && threeClasses.classes?.names == ["pet", "border", "background"] && threeClasses.ignoreLabel == nil)
        #expect(Set(try threeClasses.samples.mask(0)) == [0, 1, 2])
        #expect { try DataSource.parse("pets:\(dataFixtures)/pets:border=outline") } throws: { "\($0)".contains("border=outline") }
    }

    @Test func colourCodedMasksMapThroughTheColourTable() throws {
        var request = DataRequest(classes: 3)
        request.maskColours = "\(dataFixtures)/colour_masks/colors.txt"
        let data = try DataSource.parse("\(dataFixtures)/colour_masks").open(request)
        #expect(data.classes?.names == ["road", "tree", "background"] && data.classes?.background == 2)
        #expect(Set(try data.samples.mask(0)).isSubset(of: [0, 1, 2]))
        #expect { try DataSource.parse("\(dataFixtures)/colour_masks").open(DataRequest(classes: 3)) } throws: { "\($0)".contains("--mask-colors") }
    }

    @Test func aColourTableWithARepeatedColourIsRefusedWithTheLine() throws {
        let dir = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "1,2,3 a\n# comment\n1,2,3 b\n".write(toFile: dir + "/c.txt", atomically: true, encoding: .utf8)
        #expect { try MaskColours(path: dir + "/c.txt") } throws: { "\($0)".contains("line 3") && "\($0)".contains("already class 0 (a)") }
        try "1,2 a\n".write(toFile: dir + "/d.txt", atomically: true, encoding: .utf8)
        #expect { try MaskColours(path: dir + "/d.txt") } throws: { "\($0)".contains("line 1") && "\($0)".contains("R,G,B name") }
    }

    @Test func aColourImageForAGreySegmenterNamesTheFileAndTheBuildOption() throws {
        #expect { try DataSource.parse("\(dataFixtures)/jpeg_folder").open(DataRequest(classes: 3, channels: 1)) } throws: {
            "\($0)".hasPrefix("images/img_00.jpg: is a colour image") && "\($0)".contains("--input-channels 3")
        }
    }

    @Test func skipBadSkipsAMaskWithAnOutOfRangeClassIdAndCountsIt() throws {
        let dir = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        for (name, id) in [("a", 1), ("b", 7), ("c", 2)] {
            try PNGImage.write("\(dir)/images/\(name).png", width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 90, count: 64))
            var mask = [UInt8](repeating: 0, count: 64)
            mask[8 * 3 + 5] = UInt8(id)
            try PNGImage.write("\(dir)/masks/\(name).png", width: 8, height: 8, channels: 1, pixels: mask)
        }
        #expect { try DataSource.folder(dir).open(DataRequest(classes: 3)) } throws: {
            "\($0)" == "masks/b.png: class id 7 at (row 3, column 5) is not a class of this segmenter (0 to 2); "
                + "if 7 marks pixels to leave out (Pascal VOC's 255 does), give --ignore-label 7; "
                + "if it is a class, the segmenter needs at least 8 classes (segkit build --classes)"
        }
        let loaded = try DataSource.folder(dir).open(DataRequest(classes: 3, skipBad: true))
        #expect(loaded.samples.count == 2 && loaded.skipped.count == 1 && loaded.skipped[0].hasPrefix("masks/b.png"))
    }

    @Test func aFolderLargerThanItsMemoryBudgetIsReadLazilyWithTheSameSamples() throws {
        var small = DataRequest(classes: 3)
        small.memoryBudget = 1000
        let lazy = try DataSource.parse("\(dataFixtures)/mixed").open(small)
        let eager = try DataSource.parse("\(dataFixtures)/mixed").open(DataRequest(classes: 3))
        #expect((lazy.samples as? ImagePairSet)?.inMemory == false && (eager.samples as? ImagePairSet)?.inMemory == true)
        #expect(lazy.notes.contains { $0.contains("decoded as it is needed") })
        for i in 0..<5 {
            let a = try lazy.samples.sample(i), b = try eager.samples.sample(i)
            #expect(a.pixels == b.pixels && a.mask == b.mask && a.name == b.name)
        }
    }
}
