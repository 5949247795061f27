import Foundation
import Testing
import SegKitEngine
import SegKitKeras
import TestFixtures
@testable import SegKit

let recipeFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Recipes").path

func build(_ name: String, _ classifier: String? = "plain_cnn.k3.keras", _ overrides: [String] = []) throws -> (BuiltSegmenter, KerasModel?) {
    let recipe = try Recipe.load(name, overrides: overrides, recipeFolder: recipeFolder)
    let model = try classifier.map { try KerasModel.load(Fixtures.path($0)) }
    return (try SegmenterBuilder(recipe: recipe).build(classifier: model?.graph), model)
}

func randomImages(_ shape: [Int], seed: UInt64 = 1) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    return Tensor.randomUniform(shape: shape, low: 0, high: 1, using: &rng)
}

@Suite struct RecipeTests {
    static let classifierRecipes = ["heatmap-bilinear", "heatmap-nearest", "transposed", "transposed-skips",
                                    "fcn-32s", "fcn-16s", "fcn-8s", "unet-pretrained"]

    @Test(arguments: classifierRecipes)
    func eachRecipeBuildsAMapOfTheInputSizeWithKChannels(_ name: String) throws {
        let (seg, _) = try build(name)
        #expect(seg.totalStride == 8 && seg.classes == 11)
        let y = try seg.graph.forward([randomImages([2, 32, 40, 1])]).outputs(of: seg.graph)[0]
        #expect(y.shape == [2, 32, 40, 11])
    }

    @Test(arguments: classifierRecipes)
    func frozenParametersAreExactlyTheImportedOnes(_ name: String) throws {
        let (seg, model) = try build(name)
        let importedByName = Dictionary(uniqueKeysWithValues: model!.graph.layers.map { ($0.name, $0) })
        var expectedFrozen = 0
        for layer in seg.graph.layers where !layer.parameters.isEmpty {
            guard let original = importedByName[layer.name] else {
                #expect(layer.parameters.allSatisfy { $0.isTrainable || !$0.canTrain }, "new layer \(layer.name) is frozen")
                continue
            }
            expectedFrozen += original.parameterCount
            #expect(!layer.isTrainable, "imported layer \(layer.name) is trainable")
            // Same weights: the kept head is rebuilt without its softmax, and a Dense
            // kernel (in, out) is the 1x1 kernel (1, 1, in, out), so compare values.
            #expect(layer.parameters.map(\.value.scalars) == original.parameters.map(\.value.scalars), "\(layer.name) weights changed")
        }
        #expect(seg.graph.parameters.filter { !$0.isTrainable }.reduce(0) { $0 + $1.value.count } == expectedFrozen)
    }

    @Test func fcnUpsamplingKernelsAreTheBilinearFormula() throws {
        let (seg, _) = try build("fcn-8s")
        let up = try #require(seg.graph.layers.first { $0.name == "upscore_final" } as? Conv2DTranspose)
        // Stride 2 left after two fusions on a stride-8 encoder: kernel 4, w = [1, 3, 3, 1] / 4.
        #expect(up.kernelSize == (4, 4) && up.strides == (2, 2))
        let w: [Float] = [0.25, 0.75, 0.75, 0.25]
        for y in 0..<4 { for x in 0..<4 { for c in 0..<11 { for d in 0..<11 {
            let v = up.kernel.value.scalars[((y * 4 + x) * 11 + c) * 11 + d]
            #expect(v == (c == d ? w[y] * w[x] : 0))
        } } } }
        #expect(Initializer.bilinear(size: 3, channels: 1).scalars == [0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25])
        // The transposed decoder starts as linear interpolation of the class scores too.
        let (transposed, _) = try build("transposed")
        let up1 = try #require(transposed.graph.layers.first { $0.name == "up1" } as? Conv2DTranspose)
        #expect(up1.kernel.value == Initializer.bilinear(size: 3, channels: 11))
    }

    @Test func zeroInitialisedScoreLayersLeaveTheCoarsePredictionUnchanged() throws {
        for name in ["fcn-8s", "transposed-skips"] {
            let (seg, _) = try build(name)
            let g = seg.graph
            let adds = g.nodes.indices.filter { g.nodes[$0].layer is ElementwiseMerge }
            #expect(adds.count == (name == "fcn-8s" ? 2 : 3))
            let watched = Set(adds.flatMap { g.nodes[$0].inputs + [$0] })
            let pass = try g.forward([randomImages([1, 24, 32, 1])], keep: watched)
            for a in adds {
                let (upsampled, skip) = (g.nodes[a].inputs[0], g.nodes[a].inputs[1])
                #expect(pass.values[skip]!.scalars.allSatisfy { $0 == 0 }, "\(name): skip \(g.nodes[skip].name) is not zero at step 0")
                #expect(pass.values[a]! == pass.values[upsampled]!, "\(name): \(g.nodes[a].name) changed the coarse path")
            }
        }
    }

    @Test func anyInputSizeIsPaddedAndCroppedBack() throws {
        let (seg, _) = try build("transposed-skips")
        let runner = Segmenter(graph: seg.graph, totalStride: seg.totalStride)
        for (h, w) in [(100, 100), (128, 96), (37, 5)] {
            let y = try runner.scores(randomImages([1, h, w, 1]))
            #expect(y.shape == [1, h, w, 11])
        }
        // A multiple of the stride runs unpadded: the same as the graph itself.
        let x = randomImages([1, 64, 48, 1])
        #expect(try runner.scores(x) == seg.graph.forward([x]).outputs(of: seg.graph)[0])
    }

    @Test func aNewHeadGivesKClassesAndTheHeatmapRefusesOne() throws {
        let (seg, _) = try build("transposed", "plain_cnn.k3.keras", ["classes=4"])
        #expect(seg.classes == 4)
        #expect(try seg.graph.staticShapes().last!.last == 4)
        #expect(throws: RecipeError.self) { try build("heatmap-bilinear", "plain_cnn.k3.keras", ["head=new", "classes=4"]) }
    }

    @Test func theUNetFromScratchHasThePaperShape() throws {
        let (seg, _) = try build("unet-scratch", nil, ["classes=11", "input_channels=1"])
        #expect(seg.totalStride == 16)
        let names = seg.graph.nodes.map(\.name)
        #expect(names.contains("bottleneck_dropout") && names.contains("concat0"))
        let conv = seg.graph.layers.compactMap { $0 as? Conv2D }
        #expect(conv.first { $0.name == "bottleneck_a" }?.filters == 256)
        #expect(conv.first { $0.name == "enc0_a" }?.filters == 16)
        #expect(try seg.graph.forward([randomImages([1, 32, 48, 1])]).outputs(of: seg.graph)[0].shape == [1, 32, 48, 11])
        // Valid padding: the paper's crop and copy, 572 → 388.
        #expect(try UNetScratch.validCrops(depth: 4).0 == [88, 40, 16, 4])
        let (valid, _) = try build("unet-scratch", nil, ["classes=2", "input_channels=1", "padding=valid"])
        #expect(try valid.graph.forward([randomImages([1, 188, 188, 1])]).outputs(of: valid.graph)[0].shape == [1, 4, 4, 2])
    }

    @Test func theUNetsInitialisationIsHeOrGlorotAsTheRecipeSays() throws {
        // enc0_a: a 3x3 kernel from 1 channel to 16. Glorot uniform is bounded by
        // √(6 / (9·1 + 9·16)) ≈ 0.198; He normal's σ = √(2/9) ≈ 0.47 exceeds that bound.
        func kernel(_ sets: [String]) throws -> [Float] {
            let (seg, _) = try build("unet-scratch", nil, ["classes=3", "input_channels=1"] + sets)
            return try #require(seg.graph.layers.first { $0.name == "enc0_a" } as? Conv2D).kernel.value.scalars
        }
        let limit = Float(6.0 / 153.0).squareRoot()
        #expect(try kernel(["init=glorot"]).allSatisfy { abs($0) <= limit })
        #expect(try kernel([]).contains { abs($0) > limit }, "He normal is the default")
        let keras = try build("unet-scratch", nil, ["classes=3", "input_channels=1", "init=glorot,dropout=0"]).0
        #expect(!keras.graph.nodes.map(\.name).contains("bottleneck_dropout"), "Keras's usual U-Net is one --set away")
        #expect { try Recipe.load("unet-scratch", overrides: ["init=lecun"], recipeFolder: recipeFolder) } throws: { "\($0)".contains("init") }
    }

    @Test func oneSetMayCarrySeveralSettingsButAListValueStaysWhole() throws {
        let spec = OptionSpec("--set", "")
        #expect(try spec.settings("init=glorot,dropout=0").map(\.key) == ["init", "dropout"])
        #expect(try spec.settings("stages=[block1,block2]").map(\.value) == ["[block1,block2]"])
        #expect(try spec.settings("unfreeze=a,b").map(\.value) == ["a,b"])
        #expect(throws: SpecError.self) { try spec.settings("=3") }
    }

    @Test func greyDataOnAColourClassifierSumsTheFirstKernel() throws {
        let colour = try KerasModel.load(Fixtures.path("residual.k3.keras"))
        let stem = try #require(colour.graph.layers.first { $0.name == "stem" } as? Conv2D)
        let original = stem.kernel.value
        let (seg, _) = try build("transposed", "residual.k3.keras", ["input_channels=1"])
        let adapted = try #require(seg.graph.layers.first { $0.name == "stem" } as? Conv2D)
        #expect(adapted.kernel.value.shape == [3, 3, 1, 8])
        let sum = (0..<3).reduce(Float(0)) { $0 + original.scalars[$1 * 8] }
        #expect(abs(adapted.kernel.value.scalars[0] - sum) < 1e-6)
    }

    @Test func badRecipesAndOverridesAreClearErrors() throws {
        #expect { try Recipe.load("no-such-recipe", recipeFolder: recipeFolder) } throws: {
            "\($0)".contains("built-in recipes: fcn-16s")
        }
        #expect { try Recipe.load("fcn-8s", overrides: ["fcn=4s"], recipeFolder: recipeFolder) } throws: { "\($0)".contains("fcn must be") }
        #expect { try Recipe.load("fcn-8s", overrides: ["colour=red"], recipeFolder: recipeFolder) } throws: { "\($0)" == "--set 'colour=red': 'colour' is no recipe option" }
        #expect(try Recipe.load("unet-pretrained", overrides: ["unfreeze={stages: 1}"], recipeFolder: recipeFolder).unfreezeStages == 1)
    }

    @Test(arguments: classifierRecipes)
    func buildingLeavesTheClassifierAsItWasAndSharesNoParameterWithIt(_ name: String) throws {
        let model = try KerasModel.load(Fixtures.path("plain_cnn.k3.keras"))
        let flags = model.graph.parameters.map(\.isTrainable)
        let values = model.graph.parameters.map(\.value.scalars)
        let recipe = try Recipe.load(name, overrides: ["unfreeze={stages: 1}"], recipeFolder: recipeFolder)
        // Two builds from one import, as `compare` does.
        for _ in 0..<2 {
            let seg = try SegmenterBuilder(recipe: recipe).build(classifier: model.graph)
            let imported = Set(model.graph.parameters.map(ObjectIdentifier.init))
            #expect(seg.graph.parameters.allSatisfy { !imported.contains(ObjectIdentifier($0)) })
            for p in seg.graph.parameters { p.value.scalars[0] += 1 }   // as training would
            for l in seg.graph.layers { l.isTrainable.toggle() }
        }
        #expect(model.graph.parameters.map(\.isTrainable) == flags)
        #expect(model.graph.parameters.map(\.value.scalars) == values)
    }

    @Test func unfreezingTheTopStageMakesOnlyItTrainable() throws {
        let (seg, _) = try build("unet-pretrained", "plain_cnn.k3.keras", ["unfreeze={stages: 1}"])
        let conv3 = try #require(seg.graph.layers.first { $0.name == "conv3" })
        let conv1 = try #require(seg.graph.layers.first { $0.name == "conv1" })
        #expect(conv3.isTrainable && !conv1.isTrainable)
    }
}
