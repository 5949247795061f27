import CHDF5
import Foundation
import Testing
@testable import HDF5

func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("segkit-\(UUID().uuidString)-\(name)").path
}

@Suite struct HDF5RoundTripTests {
    @Test func datasetsAndAttributesSurviveAWriteAndARead() throws {
        let path = temporaryPath("roundtrip.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let file = try HDF5File(creating: path)
            let root = try file.root
            try root.writeStringAttribute("model_config", "{\"class_name\": \"Sequential\"}")
            try root.writeStringsAttribute("layer_names", ["conv1", "dense_1"])
            let g = try root.createGroup("model_weights")
            let conv = try g.createGroup("conv1")
            try conv.writeDataset("kernel:0", shape: [3, 3, 1, 2], floats: (0..<18).map(Float.init))
            try conv.writeDataset("steps", shape: [2], int64s: [7, -3])
        }
        let file = try HDF5File(readingFrom: path)
        let root = try file.root
        #expect(try root.stringAttribute("model_config") == "{\"class_name\": \"Sequential\"}")
        #expect(try root.stringsAttribute("layer_names") == ["conv1", "dense_1"])
        #expect(try root.childNames() == ["model_weights"])
        #expect(try root.isGroup("model_weights"))
        let kernel = try root.dataset(atPath: "model_weights/conv1/kernel:0")
        #expect(try kernel.shape() == [3, 3, 1, 2])
        #expect(try kernel.elementClass() == .float)
        #expect(try kernel.readFloats() == (0..<18).map(Float.init))
        #expect(try kernel.readDoubles()[17] == 17)
        #expect(try root.dataset(atPath: "model_weights/conv1/steps").readInt64s() == [7, -3])
        #expect(try root.dataset(atPath: "model_weights/conv1/steps").readFloats() == [7, -3])
    }

    @Test func aMissingObjectErrorNamesTheFileAndThePath() throws {
        let path = temporaryPath("missing.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try HDF5File(creating: path).root.createGroup("layers")
        let root = try HDF5File(readingFrom: path).root
        #expect {
            try root.dataset(atPath: "layers/conv1/vars/0")
        } throws: { error in
            let e = error as? HDF5Error
            return e?.file == path && e?.object == "/layers/conv1" && e?.message == "is missing"
        }
        #expect(throws: HDF5Error.self) { try root.stringAttribute("keras_version") }
    }

    @Test func nonHDF5AndTruncatedFilesAreClearErrors() throws {
        let text = temporaryPath("text.h5")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: text))
        defer { try? FileManager.default.removeItem(atPath: text) }
        #expect { try HDF5File(readingFrom: text) } throws: { ($0 as? HDF5Error)?.message.contains("not an HDF5 file") == true }

        let full = temporaryPath("full.h5")
        let cut = temporaryPath("cut.h5")
        defer { for p in [full, cut] { try? FileManager.default.removeItem(atPath: p) } }
        do {
            let root = try HDF5File(creating: full).root
            try root.createGroup("g").writeDataset("d", shape: [4096], floats: [Float](repeating: 1, count: 4096))
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        #expect(throws: HDF5Error.self) {
            let root = try HDF5File(readingFrom: cut).root
            _ = try root.dataset(atPath: "g/d").readFloats()
        }
        #expect(throws: HDF5Error.self) { try HDF5File(readingFrom: temporaryPath("absent.h5")) }
    }

    @Test func softAndExternalLinksAreRefusedByPath() throws {
        let path = temporaryPath("links.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let file = try HDF5File(creating: path)
            let root = try file.root
            try root.createGroup("real").writeDataset("w", shape: [1], floats: [1])
            #expect(H5Lcreate_soft("/real/w", root.objectID, "soft", segkit_h5p_default(), segkit_h5p_default()) >= 0)
            #expect(H5Lcreate_external("/etc/passwd", "/x", root.objectID, "outside", segkit_h5p_default(), segkit_h5p_default()) >= 0)
        }
        let root = try HDF5File(readingFrom: path).root
        #expect(try root.linkKind("soft") == .soft)
        #expect { try root.dataset("soft") } throws: { ($0 as? HDF5Error)?.object == "/soft" }
        #expect { try root.dataset("outside") } throws: { ($0 as? HDF5Error)?.message.contains("external link") == true }
    }

    @Test func anOversizedDeclaredShapeIsRefusedBeforeAllocating() throws {
        let path = temporaryPath("big.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try HDF5File(creating: path).root.writeDataset("w", shape: [10, 10], floats: [Float](repeating: 0, count: 100))
        let d = try HDF5File(readingFrom: path).root.dataset("w")
        #expect { try d.readFloats(limit: 50) } throws: { ($0 as? HDF5Error)?.message.contains("over the limit") == true }
    }
}
