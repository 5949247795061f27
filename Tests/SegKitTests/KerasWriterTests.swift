import Foundation
import Testing
import HDF5
import SegKitEngine
import SegKitKeras
import TestFixtures
@testable import SegKit

@Suite struct KerasWriterTests {
    func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("segkit-\(UUID().uuidString)-\(name)").path
    }

    /// Keras pairs a legacy .h5's weights with `model.layers` by position, in its
    /// `map_graph` order: deepest first. An FCN fusion that crops its skip puts the
    /// skip's score layer one level deeper than the upsampling beside it, so Keras
    /// lists `score_s1` before `upscore2` (keras-check found SegKit writing them
    /// the other way round, and Keras refusing the file).
    @Test func legacyH5LayersAreListedInKerasOwnModelOrder() throws {
        let (seg, _) = try build("fcn-8s", "vgg.k2.h5")
        #expect(seg.graph.nodes.contains { $0.layer is Cropping2D })
        let path = scratch("order.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try KerasWriter(graph: seg.graph, name: "fcn8s", metadata: ["recipe": "fcn-8s"]).write(to: path)
        let names = try HDF5File(readingFrom: path).root.group("model_weights").stringsAttribute("layer_names")
        let position = { (n: String) in names.firstIndex(of: n) ?? -1 }
        #expect(position("score_s1") >= 0 && position("score_s1") < position("upscore2"), "\(names)")
        #expect(names.first == "input_1" || names.first?.hasPrefix("input") == true, "\(names)")
    }

    @Test(arguments: ["fcn.keras", "fcn.h5"])
    func segkitReadsItsOwnConvolutionalizedFilesBackUnchanged(_ name: String) throws {
        let model = try KerasModel.load(Fixtures.path("residual.k2.h5"))
        let fcn = try convolutionalize(model.graph)
        let path = scratch(name)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try KerasWriter(graph: fcn, name: "residual_fcn", metadata: ["recipe": "none"]).write(to: path)
        let back = try KerasModel.load(path)
        var rng = SeededGenerator(seed: 9)
        let x = Tensor.randomUniform(shape: [1, 28, 36, 3], low: 0, high: 1, using: &rng)
        let a = try fcn.forward([x]).outputs(of: fcn)[0]
        let b = try back.graph.forward([x]).outputs(of: back.graph)[0]
        #expect(a == b)
        #expect(back.totalParameters == model.totalParameters)
        #expect(back.trainableParameters == model.trainableParameters)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".tmp") && $0.contains(name) }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test func frozenFlagsAndSharedNestedNamesSurviveTheRoundTrip() throws {
        let vgg = try KerasModel.load(Fixtures.path("vgg.k3.keras"))
        let nested = try KerasModel.load(Fixtures.path("nested.k3.keras"))
        for (model, name) in [(vgg, "vgg.keras"), (nested, "nested.keras")] {
            let path = scratch(name)
            defer { try? FileManager.default.removeItem(atPath: path) }
            try KerasWriter(graph: model.graph, name: model.name).write(to: path)
            let back = try KerasModel.load(path)
            #expect(back.trainableParameters == model.trainableParameters)
            #expect(back.graph.nodes.map(\.name) == model.graph.nodes.map { KerasWriter.kerasName($0.name) })
        }
    }

    @Test func anActivationKeras3CannotNameIsAnErrorNotAnApproximation() throws {
        let g = Graph()
        let x = try g.addInput(name: "in", shape: [nil, nil, nil, 1])
        g.outputIndices = [try g.add(ActivationLayer(name: "hs", .hardSigmoid(slope: 0.2)), inputs: [x])]
        let path = scratch("bad.keras")
        #expect(throws: KerasExportError.self) { try KerasWriter(graph: g, name: "m").write(to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
