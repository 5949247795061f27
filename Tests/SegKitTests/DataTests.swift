import Foundation
import Testing
import HDF5
@testable import SegKit

@Suite struct FashionCanvasTests {
    @Test func canvasesAreReproducibleAndMasksFollowTheItems() throws {
        var spec = FashionCanvas()
        spec.canvasSize = 64
        spec.count = 4
        spec.seed = 3
        let a = try spec.generate(), b = try spec.generate()
        #expect(a.pixels == b.pixels && a.masks == b.masks)
        #expect(a.count == 4 && a.height == 64 && a.channels == 1)
        // Wherever the mask names an item, the pixel is brighter than the threshold; elsewhere not.
        for i in 0..<a.masks.count {
            if a.masks[i] == FashionCanvas.background { #expect(a.pixels[i] <= 32) } else { #expect(a.pixels[i] > 32) }
        }
        #expect(Set(a.masks).count > 1, "no item was pasted")
        spec.split = .test
        let c = try spec.generate()
        #expect(c.pixels != a.pixels, "test canvases must use test items")
        _ = try LoadedData.inMemory(a, request: DataRequest(classes: 11))
    }

    @Test func crowdedCanvasesKeepItemsApart() throws {
        // Four items on a 56x56 canvas: without overlap each lands in its own 28x28 spot,
        // so the mask's labelled pixels never exceed the items' own bright pixels.
        var spec = FashionCanvas()
        spec.canvasSize = 56
        spec.minItems = 4
        spec.maxItems = 4
        spec.count = 3
        let d = try spec.generate()
        for i in 0..<d.masks.count { #expect((d.masks[i] == FashionCanvas.background) == (d.pixels[i] <= 32)) }
    }

    @Test func theHDF5FormRoundTripsAndBadMasksAreNamed() throws {
        var spec = FashionCanvas()
        spec.canvasSize = 32
        spec.count = 2
        let d = try spec.generate()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-\(UUID()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try d.writeHDF5(path)
        let back = try SegmentationDataset.readHDF5(path)
        #expect(back.pixels == d.pixels && back.masks == d.masks && back.height == 32)
        // Written as uint8, read back byte-valued: training scales it as it scales the canvases it came from
        // (as float32 it was read as already scaled, and trained on 0…255).
        #expect(d.isByteValued && back.isByteValued)
        #expect(try HDF5File(readingFrom: path).root.dataset("images").elementClass() == .integer)
        #expect { try LoadedData.inMemory(back, request: DataRequest(classes: 5)) } throws: {
            "\($0)".contains("\((path as NSString).lastPathComponent) sample 0") && "\($0)".contains("(0 to 4)") && "\($0)".contains("--ignore-label")
        }
    }
}
