import Testing
import SegKitEngine
import SegKitKeras
import TestFixtures
@testable import SegKit

@Suite struct ConvolutionalizeTests {
    /// The classifier's own head (original Dense layers) applied to one feature vector or window.
    func classifierHead(_ model: KerasModel, from start: String, _ features: Tensor) throws -> Tensor {
        let g = model.graph
        var node = try #require(g.index(of: start))
        var x = features
        while let next = g.nodes.firstIndex(where: { $0.inputs == [node] }) {
            x = try g.nodes[next].layer.forward([x], mode: .inference).output
            node = next
        }
        return x
    }

    @Test func aFlattenHeadAtTheTrainingSizeGivesA1x1MapEqualToTheClassifier() throws {
        let c = Fixtures.cases.first { $0.model == "vgg.k3.keras" }!
        let model = try Fixtures.load(c)
        let fcn = try convolutionalize(model.graph)
        let expected = try Fixtures.expected(c)
        let map = try fcn.forward([expected.input]).outputs(of: fcn)[0]
        #expect(map.shape == [2, 1, 1, 10])
        #expect(maxAbsDifference(try map.reshaped([2, 10]), expected.outputs["output"]!) <= 1e-5)
        #expect(fcn.inputIndices.count == 1)
        #expect(fcn.nodes.contains { $0.layer is Dropout } == false)
    }

    @Test func aFlattenHeadOnALargerInputAppliesTheHeadToEveryWindow() throws {
        let model = try KerasModel.load(Fixtures.path("vgg.k2.h5"))
        let fcn = try convolutionalize(model.graph)
        var data = SeededGenerator(seed: 4)
        let x = Tensor.randomUniform(shape: [1, 24, 24, 3], low: 0, high: 1, using: &data)
        let map = try fcn.forward([x]).outputs(of: fcn)[0]
        #expect(map.shape == [1, 3, 3, 10])   // 6x6 features, 4x4 windows
        let featureNode = try #require(fcn.index(of: "block2_pool"))
        let features = try fcn.forward([x], keep: [featureNode]).values[featureNode]!
        for i in 0..<3 {
            for j in 0..<3 {
                var window = [Float]()
                for y in i..<(i + 4) { for xx in j..<(j + 4) {
                    let o = (y * 6 + xx) * 16
                    window += features.scalars[o..<(o + 16)]
                } }
                let expected = try classifierHead(model, from: "flatten", Tensor(shape: [1, 256], scalars: window))
                let got = Array(map.scalars[((i * 3 + j) * 10)..<((i * 3 + j) * 10 + 10)])
                #expect(maxAbsDifference(try Tensor(shape: [1, 10], scalars: got), expected) <= 1e-5, "position \(i),\(j)")
            }
        }
    }

    @Test func aGlobalPoolingHeadRunsAtEveryPosition() throws {
        let model = try KerasModel.load(Fixtures.path("plain_cnn.k3.keras"))
        let fcn = try convolutionalize(model.graph)
        #expect(!fcn.nodes.contains { $0.layer is GlobalPooling2D })
        var data = SeededGenerator(seed: 5)
        let x = Tensor.randomUniform(shape: [2, 40, 32, 1], low: 0, high: 1, using: &data)
        let conv3 = try #require(fcn.index(of: "conv3"))
        let pass = try fcn.forward([x], keep: [conv3])
        let map = pass.outputs(of: fcn)[0]
        #expect(map.shape == [2, 5, 4, 11])
        let features = pass.values[conv3]!
        for p in stride(from: 0, to: 2 * 5 * 4, by: 3) {
            let vector = try Tensor(shape: [1, 16], scalars: Array(features.scalars[(p * 16)..<(p * 16 + 16)]))
            let expected = try classifierHead(model, from: "pool", vector)
            #expect(maxAbsDifference(try Tensor(shape: [1, 11], scalars: Array(map.scalars[(p * 11)..<(p * 11 + 11)])), expected) <= 1e-5)
        }
        // The final softmax is now over the channel axis: every position sums to 1.
        for p in 0..<(2 * 5 * 4) {
            let sum = map.scalars[(p * 11)..<(p * 11 + 11)].reduce(0, +)
            #expect(abs(sum - 1) < 1e-5)
        }
    }

    @Test func modelsWithoutAClassifierHeadAreRefused() throws {
        let g = Graph()
        let x = try g.addInput(name: "in", shape: [nil, 8, 8, 1])
        g.outputIndices = [try g.add(UpSampling2D(name: "up", size: (2, 2)), inputs: [x])]
        #expect(throws: SurgeryError.self) { try convolutionalize(g) }
    }
}

@Suite struct EncoderStageTests {
    @Test func stagesAreTheLastLayerAtEachResolution() throws {
        let plain = try KerasModel.load(Fixtures.path("plain_cnn.k3.keras"))
        let stages = try encoderStages(plain.graph)
        #expect(stages.map(\.stride) == [1, 2, 4, 8])
        #expect(stages.map(\.name) == ["image", "bn1", "relu2", "conv3"])
        #expect(stages.map(\.channels) == [1, 8, 16, 16])
        let mobile = try KerasModel.load(Fixtures.path("mobilenet_v2.k3.keras"))
        let m = try encoderStages(mobile.graph)
        #expect(m.map(\.stride) == [1, 2, 4, 8, 16, 32])
        // The taps TensorFlow's own U-Net-on-MobileNetV2 tutorial uses: the expansion
        // just before each strided depthwise convolution.
        #expect(m.map(\.name).dropFirst() == ["block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
                                              "block_13_expand_relu", "out_relu"])
    }
}
