import Foundation
import Testing
import SegKitEngine
import SegKitKeras
import TestFixtures
@testable import SegKit

/// One test per failure the recipes issue lists, each starting from what SegKit
/// printed or did before.
@Suite struct RecipeFailureTests {
    typealias Net = RealClassifierRecipeTests.Net
    static let mnist = Net(file: "mnist_convnet.k3.keras", channels: 1, size: 28, classes: 10)

    func model(_ file: String) throws -> KerasModel { try KerasModel.load(Fixtures.path(file)) }

    /// Was: `inspect` listed only "1/1 input_layer" for a valid-padding net.
    @Test func aValidPaddingNetHasAStageAtEveryStride() throws {
        let stages = try encoderStages(try model("mnist_convnet.k3.keras").graph)
        #expect(stages.map(\.stride) == [1, 2, 4])
        #expect(stages.map(\.name) == ["conv2d", "conv2d_1", "max_pooling2d_1"])
        #expect(stages.map(\.offsetRows) == [1, 3.5, 4.5] && stages.map(\.receptiveRows) == [3, 8, 10])
    }

    /// Was: a false "1/2" stage on a net without pooling (sizes 28 → 24 read as a ratio).
    @Test func aNetWithoutStridesHasOnlyTheInputResolution() throws {
        let g = Graph()
        var x = try g.addInput(name: "image", shape: [nil, 28, 28, 1])
        for name in ["c1", "c2"] {
            x = try g.add(try Conv2D(name: name, kernel: Tensor(zeros: [3, 3, 1, 1]), bias: nil), inputs: [x])
        }
        x = try g.add(GlobalPooling2D(name: "gap", .average), inputs: [x])
        g.outputIndices = [try g.add(try Dense(name: "fc", kernel: Tensor(zeros: [1, 2]), bias: nil, activation: .softmax), inputs: [x])]
        #expect(try encoderStages(g).map(\.stride) == [1])
    }

    /// Was: "total stride 10 is not a power of two"; now strides of 3 get their own steps.
    @Test func threeByThreePoolingGivesStagesAtThreeAndNineAndAStrideThreeDecoder() throws {
        #expect(try encoderStages(try model("pool3.k3.keras").graph).map(\.stride) == [1, 3, 9])
        let (seg, _) = try RealClassifierRecipeTests.build("transposed-skips", on: Net(file: "pool3.k3.keras", channels: 3, size: 54, classes: 4))
        let ups = seg.graph.layers.compactMap { $0 as? Conv2DTranspose }
        #expect(ups.map(\.strides.0) == [3, 3] && ups.map(\.kernelSize.0) == [5, 5])
    }

    /// Was: "fcn-8s needs an encoder stage at 1/0".
    @Test func fcn8sFusesTheTwoStagesBelowAStrideFourClassMap() throws {
        let (seg, _) = try RealClassifierRecipeTests.build("fcn-8s", on: Self.mnist)
        #expect(seg.graph.index(of: "fuse_s2") != nil && seg.graph.index(of: "fuse_s1") != nil)
    }

    /// Was: transposed-skips built and output 7x7 for a 28x28 MNIST image, and predict
    /// blamed "a valid-padding U-Net".
    @Test func transposedSkipsOnTheMNISTConvnetSegmentsAll28x28Pixels() throws {
        let (seg, _) = try RealClassifierRecipeTests.build("transposed-skips", on: Self.mnist)
        #expect(try seg.runner.scores(randomImages([2, 28, 28, 1])).shape == [2, 28, 28, 10])
        let p = try seg.runner.sizeRule.placement(height: 28, width: 28)
        // The net's valid margins are mirror-padded: the raw graph's output covers the image.
        #expect(p.padTop + p.padBottom > 0 && p.outputHeight >= 28 + p.outputTop)
    }

    /// Was: unet-pretrained with 20 parameters and none of the classifier's.
    @Test func unetPretrainedOnAValidNetKeepsTheWholeEncoder() throws {
        let (seg, model) = try RealClassifierRecipeTests.build("unet-pretrained", on: Self.mnist)
        let convolutional = model.graph.layers.filter { $0 is Conv2D }.reduce(0) { $0 + $1.parameterCount }
        #expect(seg.graph.parameters.filter { !$0.isTrainable }.reduce(0) { $0 + $1.value.count } == convolutional)
        #expect(seg.graph.layers.contains { $0.name == "conv2d_1" })
    }

    /// Was: a crash (SIGILL in UNet.swift) when the next stage is more than 2x coarser.
    @Test func unetPretrainedJoinsStagesThreeTimesApart() throws {
        let (seg, _) = try RealClassifierRecipeTests.build("unet-pretrained", on: Net(file: "pool3.k3.keras", channels: 3, size: 54, classes: 4))
        let ups = seg.graph.layers.compactMap { $0 as? Conv2DTranspose }
        #expect(ups.map(\.strides.0) == [3, 3])
        #expect(try seg.runner.scores(randomImages([1, 50, 61, 3])).shape == [1, 50, 61, 4])
    }

    /// Was: `Add 'skip2': expected inputs of one shape, found [[1, 20, 20, 1], [1, 18, 18, 1]]` at twice the size,
    /// and ResNet50V2 at 96x96: `Add 'fuse_s16' … [[2, 6, 6, 7], [2, 5, 5, 7]]`.
    @Test func resNet50V2SegmentersRunAt96x96() throws {
        let net = Net(file: "resnet50v2.k3.keras", channels: 3, size: 64, classes: 5)
        let (seg, _) = try RealClassifierRecipeTests.build("fcn-16s", on: net)
        #expect(try seg.runner.scores(randomImages([2, 96, 96, 3])).shape == [2, 96, 96, 5])
        // At 64 the 1/32 map is 2x2: the stage at 1/16 is a block output, not a zero-padded map.
        #expect(seg.stages.first { $0.stride == 16 }?.name == "conv4_block5_out")
    }

    /// Was: "the classifier's head does not end in a Dense layer" for Dense → Activation('softmax').
    @Test func aDenseThenActivationHeadConvolutionalizesToKerasOwnScores() throws {
        try expectClassMapAtTrainingSizeEqualsKeras("vgg_valid", keras: 2, format: "h5")
    }

    /// Dense → BatchNormalization → Dropout → Dense: the normalisation is folded into the 1x1 convolution.
    @Test func aBatchNormalizedDenseHeadIsFoldedAndStillEqualsKeras() throws {
        let fcn = try expectClassMapAtTrainingSizeEqualsKeras("bn_head", keras: 3, format: "keras")
        let headStart = try #require(fcn.index(of: "pool2"))
        #expect(!fcn.nodes[headStart...].contains { $0.layer is BatchNormalization })
    }

    /// A Flatten head at the training size: a 1x1 class map equal to the classifier's output.
    @discardableResult
    func expectClassMapAtTrainingSizeEqualsKeras(_ net: String, keras: Int, format: String) throws -> Graph {
        let c = Fixtures.Case(net: net, keras: keras, model: "\(net).k\(keras).\(format)", config: nil)
        let fcn = try convolutionalize(try Fixtures.load(c).graph)
        let expected = try Fixtures.expected(c)
        let map = try fcn.forward([expected.input]).outputs(of: fcn)[0]
        let n = expected.input.shape[0]
        #expect(map.shape.prefix(3) == [n, 1, 1])
        #expect(maxAbsDifference(try map.reshaped([n, map.shape[3]]), expected.outputs["output"]!) <= 1e-5)
        return fcn
    }

    /// Global-pooling heads (all-convolutional, Keras's MobileNet top: GAP → Reshape →
    /// Dropout → Conv 1x1 → Reshape → softmax): the class scores are linear in the
    /// pooled features, so the mean of the class map's scores is the classifier's.
    @Test(arguments: ["mini_xception.k2.h5", "mobilenet_v1.k3.keras", "mobilenet_v1.k2.h5"])
    func aGlobalPoolingHeadsClassMapAveragesToKerasOwnScores(_ file: String) throws {
        let net = file.components(separatedBy: ".")[0]
        let c = Fixtures.Case(net: net, keras: file.contains(".k2.") ? 2 : 3, model: file, config: nil)
        let fcn = try convolutionalize(try Fixtures.load(c).graph)
        let softmax = try #require(fcn.nodes[fcn.outputIndices[0]].layer as? ActivationLayer)
        #expect(softmax.activation == .softmax)
        let scores = fcn.nodes[fcn.outputIndices[0]].inputs[0]
        let expected = try Fixtures.expected(c)
        let map = try #require(try fcn.forward([expected.input], keep: [scores]).values[scores])
        let (n, h, w, k) = map.nhwc
        let pixels = h * w
        var mean = Tensor(zeros: [n, k])
        for b in 0..<n {
            for p in 0..<pixels {
                for j in 0..<k { mean.scalars[b * k + j] += map.scalars[(b * pixels + p) * k + j] / Float(pixels) }
            }
        }
        let probabilities = try ActivationLayer(name: "softmax", Activation.softmax).forward([mean], mode: .inference).output
        #expect(maxAbsDifference(probabilities, expected.outputs["output"]!) <= 1e-4)
    }

    /// Was: "class count unknown" for a single sigmoid unit. It becomes the pair (0, z).
    @Test func aSigmoidUnitBecomesTwoClassesWhoseSoftmaxIsTheSigmoid() throws {
        let net = Net(file: "binary_sigmoid.k2.h5", channels: 3, size: 32, classes: 2)
        let (seg, model) = try RealClassifierRecipeTests.build("heatmap-nearest", on: net)
        #expect(seg.classes == 2 && seg.output == "probabilities")
        // Nearest upsampling copies each cell: the positive class's probability is
        // σ(w·f + b) of the cell's features f, as the classifier's own Dense unit.
        let x = randomImages([1, 32, 32, 3])
        let y = try seg.graph.forward([x]).outputs(of: seg.graph)[0]
        let featureNode = try #require(model.graph.index(of: "conv2"))
        let features = try #require(try model.graph.forward([x], keep: [featureNode]).values[featureNode])
        let dense = try #require(model.graph.layers.first { $0 is Dense } as? Dense)
        var z = dense.bias!.value.scalars[0]
        for c in 0..<features.shape[3] { z += features.scalars[c] * dense.kernel.value.scalars[c] }
        #expect(abs(y.scalars[1] - 1 / (1 + exp(-z))) < 1e-5 && abs(y.scalars[0] + y.scalars[1] - 1) < 1e-5)
    }

    /// Was: a multi-output model had no way to choose, and the message named neither the file nor the outputs.
    @Test func aTwoOutputModelNeedsOutputAndOutputPicksTheHead() throws {
        let r = try Recipe.load("transposed", recipeFolder: recipeFolder)
        let graph = try model("two_outputs.k3.keras").graph
        #expect(throws: SurgeryError.severalOutputs(["main", "aux"])) { try SegmenterBuilder(recipe: r).build(classifier: graph) }
        let aux = try Recipe.load("transposed", overrides: ["output=aux"], recipeFolder: recipeFolder)
        #expect(try SegmenterBuilder(recipe: aux).build(classifier: graph).classes == 2)
        #expect(throws: SurgeryError.noSuchOutput("side", outputs: ["main", "aux"])) { try selectingOutput(graph, named: "side") }
    }

    /// Was: `graph: two nodes are named 'logits'` when the encoder already had a 'logits' layer.
    @Test func newLayersNeverTakeAnImportedLayersName() throws {
        let scratch = try Recipe.load("unet-scratch", overrides: ["classes=3", "input_channels=1", "depth=2"], recipeFolder: recipeFolder)
        let encoder = try SegmenterBuilder(recipe: scratch).build(classifier: nil).graph
        #expect(encoder.index(of: "logits") != nil)
        let r = try Recipe.load("unet-pretrained", overrides: ["classes=3"], recipeFolder: recipeFolder)
        let seg = try SegmenterBuilder(recipe: r).build(classifier: encoder)
        #expect(seg.graph.index(of: "logits_1") != nil)
        #expect(Set(seg.graph.layers.map(\.name)).count == seg.graph.layers.count)
    }

    /// Was: "sets shape = 2-D per sample": a CNN fed (28, 28) images reshaped to (28, 28, 1).
    @Test func aClassifierOfGreyImagesWithoutAChannelAxisGetsASegmenter() throws {
        let g = Graph()
        let x = try g.addInput(name: "digits", shape: [nil, 28, 28])
        var y = try g.add(try Reshape(name: "to_channels", target: [28, 28, 1]), inputs: [x])
        var rng = SeededGenerator(seed: 5)
        y = try g.add(try Conv2D(name: "conv", kernel: Tensor.randomNormal(shape: [3, 3, 1, 4], using: &rng), bias: nil,
                                 strides: (2, 2), padding: .same, activation: .relu()), inputs: [y])
        y = try g.add(GlobalPooling2D(name: "gap", .average), inputs: [y])
        g.outputIndices = [try g.add(try Dense(name: "fc", kernel: Tensor.randomNormal(shape: [4, 3], using: &rng), bias: nil,
                                               activation: .softmax), inputs: [y])]
        let r = try Recipe.load("transposed-skips", recipeFolder: recipeFolder)
        let seg = try SegmenterBuilder(recipe: r).build(classifier: g)
        #expect(try seg.runner.scores(randomImages([2, 28, 28, 1])).shape == [2, 28, 28, 3])
        #expect(try seg.runner.scores(randomImages([1, 33, 47, 1])).shape == [1, 33, 47, 3])
    }

    /// A Permute that swaps height and width is refused for segmenters, naming it (Keras's own file).
    @Test func aPermuteOfHeightAndWidthIsRefusedNamingTheLayer() throws {
        let r = try Recipe.load("transposed", recipeFolder: recipeFolder)
        let graph = try model("flat_input.k3.keras").graph
        #expect { try SegmenterBuilder(recipe: r).build(classifier: graph) } throws: { "\($0)".contains("'transpose'") }
    }
}
