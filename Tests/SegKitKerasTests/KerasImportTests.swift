import Foundation
import Testing
import SegKitEngine
@testable import SegKitKeras
import TestFixtures

@Suite struct KerasImportTests {
    @Test(arguments: Fixtures.cases)
    func outputsEqualKerasOwnForEveryFormat(_ c: Fixtures.Case) throws {
        let model = try Fixtures.load(c)
        let expected = try Fixtures.expected(c)
        var keep: [String: Int] = [:]
        for name in expected.outputs.keys where name != "output" {
            keep[name] = try #require(model.layerOutputs[name], "no layer \(name)")
        }
        let pass = try model.graph.forward([expected.input], keep: Set(keep.values))
        let output = pass.outputs(of: model.graph)[0]
        func bound(_ t: Tensor) -> Float { c.isRelative ? c.tolerance * max(1, t.scalars.map(abs).max() ?? 0) : c.tolerance }
        let error = maxAbsDifference(output, expected.outputs["output"]!)
        #expect(error <= bound(expected.outputs["output"]!), "\(c): output differs from Keras by \(error)")
        for (name, node) in keep {
            let e = maxAbsDifference(pass.values[node]!, expected.outputs[name]!)
            #expect(e <= bound(expected.outputs[name]!), "\(c): layer \(name) differs from Keras by \(e)")
        }
    }

    @Test(arguments: Fixtures.cases)
    func aCopyOfEveryImportedModelGivesItsOutputsAndSharesNoParameter(_ c: Fixtures.Case) throws {
        let model = try Fixtures.load(c)
        let expected = try Fixtures.expected(c)
        let copy = try model.graph.copy()
        #expect(zip(copy.layers, model.graph.layers).allSatisfy { $0.kind == $1.kind && $0.name == $1.name && $0 !== $1 })
        #expect(copy.parameters.map(\.isTrainable) == model.graph.parameters.map(\.isTrainable))
        let mine = Set(model.graph.parameters.map(ObjectIdentifier.init))
        #expect(copy.parameters.allSatisfy { !mine.contains(ObjectIdentifier($0)) })
        let original = try model.graph.forward([expected.input]).outputs(of: model.graph)
        #expect(try copy.forward([expected.input]).outputs(of: copy).map(\.scalars) == original.map(\.scalars), "\(c)")
    }

    @Test(arguments: Fixtures.cases)
    func parameterCountsEqualKeras(_ c: Fixtures.Case) throws {
        let model = try Fixtures.load(c)
        let expected = try Fixtures.expected(c)
        #expect(model.totalParameters == expected.total)
        #expect(model.trainableParameters == expected.trainable)
        #expect(model.totalParameters - model.trainableParameters == expected.nonTrainable)
    }

    @Test func frozenLayersStayFrozenAndModelsNestedInModelsAreFlattened() throws {
        let vgg = try KerasModel.load(Fixtures.path("vgg.k3.keras"))
        let first = try #require(vgg.graph.layers.first { $0.name == "block1_conv1" })
        #expect(!first.isTrainable)
        let nested = try KerasModel.load(Fixtures.path("nested.k2.h5"))
        #expect(nested.graph.index(of: "backbone/bb_conv1") != nil)
        #expect(nested.summaryRows.map(\.className) == ["InputLayer", "Functional", "GlobalAveragePooling2D", "Dense"])
    }

    @Test func snakeCaseFollowsKerasNaming() {
        #expect(snakeCase("Conv2D") == "conv2d")
        #expect(snakeCase("Conv2DTranspose") == "conv2d_transpose")
        #expect(snakeCase("BatchNormalization") == "batch_normalization")
        #expect(snakeCase("LeakyReLU") == "leaky_re_lu")
        #expect(snakeCase("ReLU") == "re_lu")
        #expect(snakeCase("GlobalMaxPooling2D") == "global_max_pooling2d")
        #expect(snakeCase("SpatialDropout2D") == "spatial_dropout2d")
        #expect(snakeCase("ELU") == "elu")
    }
}
