import Foundation
import Testing
import SegKitEngine
import SegKitKeras
import TestFixtures
@testable import SegKit

/// Every built-in recipe on classifiers shaped as users write them (written by
/// real Keras, Tests/Fixtures/make_fixtures.py): valid padding, odd strides, 3x3/3
/// pooling, Dense → Activation, all-convolutional, BatchNormalization, sigmoid,
/// two-output and Keras Applications heads.
@Suite struct RealClassifierRecipeTests {
    struct Net: CustomStringConvertible, Sendable {
        let file: String
        let channels: Int
        let size: Int
        let classes: Int
        var output: String? = nil
        var description: String { file }
    }

    static let nets = [
        Net(file: "mnist_convnet.k3.keras", channels: 1, size: 28, classes: 10),
        Net(file: "vgg_valid.k2.h5", channels: 3, size: 150, classes: 3),
        Net(file: "pool3.k3.keras", channels: 3, size: 54, classes: 4),
        Net(file: "mini_xception.k2.h5", channels: 1, size: 48, classes: 7),
        Net(file: "bn_head.k3.keras", channels: 3, size: 32, classes: 5),
        Net(file: "binary_sigmoid.k2.h5", channels: 3, size: 32, classes: 2),
        Net(file: "two_outputs.k3.keras", channels: 3, size: 32, classes: 4, output: "main"),
        Net(file: "mobilenet_v1.k3.keras", channels: 3, size: 64, classes: 5),
    ]
    /// Keras Applications with tens of millions of multiply-adds per pixel: fewer sizes in a debug build.
    static let applications = [
        Net(file: "resnet50v2.k3.keras", channels: 3, size: 64, classes: 5),
        Net(file: "inception_v3.k2.h5", channels: 3, size: 75, classes: 5),
    ]

    /// The importer issue's applications: squeeze-and-excitation, hard-swish arithmetic, LayerScale.
    static let importedApplications = [
        Net(file: "efficientnet_b0.k3.keras", channels: 3, size: 64, classes: 5),
        Net(file: "mobilenet_v3_small.k2.h5", channels: 3, size: 64, classes: 5),
        Net(file: "convnext_tiny.k3.keras", channels: 3, size: 32, classes: 5),
    ]

    static func build(_ recipe: String, on net: Net, overrides: [String] = []) throws -> (BuiltSegmenter, KerasModel) {
        let sets = overrides + (net.output.map { ["output=\($0)"] } ?? [])
        let r = try Recipe.load(recipe, overrides: sets, recipeFolder: recipeFolder)
        let model = try KerasModel.load(Fixtures.path(net.file))
        return (try SegmenterBuilder(recipe: r).build(classifier: model.graph), model)
    }

    /// Every imported layer of the classifier's convolutional part is in the
    /// segmenter, frozen, with its own weights.
    static func expectEncoderKeptAndFrozen(_ seg: BuiltSegmenter, _ model: KerasModel, output: String? = nil, _ label: String) throws {
        let g = try output.map { try selectingOutput(model.graph, named: $0) } ?? model.graph
        let end = (try? ClassifierHead.find(in: g, shapes: try g.staticShapes()))?.encoderEnd ?? g.outputIndices[0]
        let byName = Dictionary(seg.graph.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var kept = 0
        for i in ancestors(of: [end], in: g) where !g.nodes[i].layer.parameters.isEmpty {
            let original = g.nodes[i].layer
            let layer = try #require(byName[original.name], "\(label): encoder layer \(original.name) is missing")
            #expect(!layer.isTrainable, "\(label): encoder layer \(original.name) is trainable")
            #expect(layer.parameters.map(\.value.scalars) == original.parameters.map(\.value.scalars), "\(label): \(original.name) changed")
            kept += 1
        }
        #expect(kept > 0, "\(label): no encoder layer with weights")
    }

    static func expectSizes(_ seg: BuiltSegmenter, _ net: Net, sizes: [(Int, Int)], _ label: String) throws {
        let runner = seg.runner
        for (h, w) in sizes {
            let y = try runner.scores(randomImages([1, h, w, net.channels], seed: UInt64(h * 1000 + w)))
            #expect(y.shape == [1, h, w, net.classes], "\(label) at \(h)x\(w)")
            #expect(y.scalars.allSatisfy { $0.isFinite }, "\(label) at \(h)x\(w): non-finite scores")
        }
    }

    /// fcn-16s and fcn-8s fuse finer stages than some encoders have; the README says they refuse then.
    static func refusedAsDocumented(_ error: Error, recipe: String) -> Bool {
        recipe.hasPrefix("fcn-") && "\(error)".contains("fuses")
    }

    @Test(arguments: nets, RecipeTests.classifierRecipes)
    func everyRecipeKeepsTheFrozenEncoderAndSegmentsEveryInputSize(_ net: Net, _ recipe: String) throws {
        let seg: BuiltSegmenter, model: KerasModel
        do {
            (seg, model) = try Self.build(recipe, on: net)
        } catch {
            #expect(Self.refusedAsDocumented(error, recipe: recipe), "\(net) \(recipe): \(error)")
            return
        }
        #expect(seg.classes == net.classes)
        try Self.expectEncoderKeptAndFrozen(seg, model, output: net.output, "\(net) \(recipe)")
        let s = net.size
        try Self.expectSizes(seg, net, sizes: [(s, s), (s * 3 / 2, s * 3 / 2), (101, 77)], "\(net) \(recipe)")
    }

    @Test(arguments: applications, RecipeTests.classifierRecipes)
    func everyRecipeOnAKerasApplicationSegmentsAnOddSize(_ net: Net, _ recipe: String) throws {
        let (seg, model) = try Self.build(recipe, on: net)
        #expect(seg.stages.map(\.stride) == [1, 2, 4, 8, 16, 32])
        try Self.expectEncoderKeptAndFrozen(seg, model, "\(net) \(recipe)")
        try Self.expectSizes(seg, net, sizes: [(101, 77)], "\(net) \(recipe)")
    }

    @Test(arguments: importedApplications, RecipeTests.classifierRecipes)
    func everyRecipeOnEfficientNetMobileNetV3AndConvNeXtSegmentsAnOddSize(_ net: Net, _ recipe: String) throws {
        let (seg, model) = try Self.build(recipe, on: net)
        try Self.expectEncoderKeptAndFrozen(seg, model, "\(net) \(recipe)")
        try Self.expectSizes(seg, net, sizes: [(45, 75)], "\(net) \(recipe)")
    }

    @Test(arguments: nets, ["transposed", "transposed-skips", "fcn-32s", "unet-pretrained"])
    func oneEpochOfTrainingRunsAtASizeThatIsNoMultipleOfTheStride(_ net: Net, _ recipe: String) throws {
        let (seg, _) = try Self.build(recipe, on: net)
        let (h, w) = (net.size + 5, net.size + 3)
        var rng = SeededGenerator(seed: 9)
        let masks = (0..<(2 * h * w)).map { _ in Int32.random(in: 0..<Int32(net.classes), using: &rng) }
        let data = SegmentationDataset(count: 2, height: h, width: w, channels: net.channels,
                                       pixels: randomImages([2, h, w, net.channels]).scalars, masks: masks, isByteValued: false)
        var config = TrainingConfig()
        config.epochs = 1
        config.batchSize = 2
        for cached in [true, false] {
            config.useCache = cached
            let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: config, runner: seg.runner)
            let history = try trainer.fit(train: data, val: data, observer: nil, checkpoint: { _ in }, improved: { _ in })
            #expect(history.count == 1 && history[0].loss.isFinite, "\(net) \(recipe) cached \(cached)")
            let (matrix, _) = try trainer.evaluate(data)
            // Every image pixel is scored once, and no padding pixel is.
            #expect(matrix.counts.joined().reduce(0, +) == 2 * h * w, "\(net) \(recipe)")
        }
    }
}
