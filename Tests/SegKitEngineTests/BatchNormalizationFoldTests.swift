import Testing
@testable import SegKitEngine

/// MobileNetV2's block shape: Conv2D → BatchNormalization → ReLU6 →
/// ZeroPadding2D → DepthwiseConv2D (stride 2, valid) → BatchNormalization →
/// ReLU6, with statistics far from the identity and an uneven padding so that
/// a wrong fold shows.
private struct MobileBlock {
    let graph = Graph()
    let conv: Conv2D, bn1: BatchNormalization, depthwise: DepthwiseConv2D, bn2: BatchNormalization
    let nodes: (conv: Int, bn1: Int, depthwise: Int, bn2: Int)
    let padding: Int

    init(seed: UInt64) throws {
        var data = TestData(seed: seed)
        func statistics(_ c: Int) throws -> (Tensor, Tensor, Tensor, Tensor) {
            var variance = data.normal([c])
            variance.scalars = variance.scalars.map { 0.2 + abs($0) }
            return (data.normal([c]), data.normal([c]), data.normal([c]), variance)
        }
        conv = try Conv2D(name: "expand", kernel: data.normal([3, 3, 3, 24], scale: 0.4), bias: nil, padding: .same)
        let s1 = try statistics(24)
        bn1 = try BatchNormalization(name: "expand_bn", channels: 24, gamma: s1.0, beta: s1.1, movingMean: s1.2, movingVariance: s1.3)
        depthwise = try DepthwiseConv2D(name: "dw", kernel: data.normal([3, 3, 24, 1], scale: 0.4), bias: data.normal([24]),
                                        strides: (2, 2), padding: .valid)
        let s2 = try statistics(24)
        bn2 = try BatchNormalization(name: "dw_bn", channels: 24, gamma: s2.0, beta: s2.1, movingMean: s2.2, movingVariance: s2.3)
        let x = try graph.addInput(name: "input", shape: [nil, nil, nil, 3])
        let c = try graph.add(conv, inputs: [x])
        let b1 = try graph.add(bn1, inputs: [c])
        let r1 = try graph.add(ActivationLayer(name: "expand_relu", .relu6, kerasKind: "ReLU"), inputs: [b1])
        let pad = try graph.add(ZeroPadding2D(name: "pad", rows: (0, 1), cols: (2, 1)), inputs: [r1])
        let d = try graph.add(depthwise, inputs: [pad])
        let b2 = try graph.add(bn2, inputs: [d])
        graph.outputIndices = [try graph.add(ActivationLayer(name: "dw_relu", .relu6, kerasKind: "ReLU"), inputs: [b2])]
        nodes = (c, b1, d, b2)
        padding = pad
    }

    /// The output, and which nodes ran a forward pass of their own.
    func run(_ x: Tensor, mode: ExecutionMode = .inference, keep: Set<Int> = []) throws -> (output: Tensor, ran: Set<Int>) {
        let profiler = LayerProfiler()
        graph.profiler = profiler
        defer { graph.profiler = nil }
        let pass = try graph.forward([x], mode: mode, keep: keep)
        return (pass.outputs(of: graph)[0], Set(profiler.forwardRuns.keys))
    }
}

/// ResNet50's block end: a shortcut (Conv2D → BatchNormalization, made
/// first) and a residual branch Conv2D → BatchNormalization, added, then ReLU;
/// and the same with the other operand of the Add a broadcast [n, 1, 1, c] input.
private struct ResidualBlock {
    let graph = Graph()
    let nodes: (shortcut: Int, conv: Int, add: Int, relu: Int)

    init(seed: UInt64, broadcastAddend: Bool = false) throws {
        var data = TestData(seed: seed)
        func normalization(_ name: String, _ c: Int) throws -> BatchNormalization {
            var variance = data.normal([c])
            variance.scalars = variance.scalars.map { 0.2 + abs($0) }
            return try BatchNormalization(name: name, channels: c, gamma: data.normal([c]), beta: data.normal([c]),
                                          movingMean: data.normal([c]), movingVariance: variance)
        }
        let x = try graph.addInput(name: "input", shape: [nil, nil, nil, 8])
        let shortcut: Int, addend: Int
        if broadcastAddend {
            shortcut = try graph.addInput(name: "scale", shape: [nil, 1, 1, 72])
            addend = shortcut
        } else {
            shortcut = try graph.add(try Conv2D(name: "shortcut", kernel: data.normal([1, 1, 8, 72], scale: 0.4), bias: data.normal([72])),
                                     inputs: [x])
            addend = try graph.add(try normalization("shortcut_bn", 72), inputs: [shortcut])
        }
        let conv = try graph.add(try Conv2D(name: "conv", kernel: data.normal([3, 3, 8, 72], scale: 0.3), bias: nil, padding: .same),
                                 inputs: [x])
        let bn = try graph.add(try normalization("conv_bn", 72), inputs: [conv])
        let add = try graph.add(ElementwiseMerge(name: "add", .add), inputs: [addend, bn])
        let relu = try graph.add(ActivationLayer(name: "out", .relu(), kerasKind: "Activation"), inputs: [add])
        graph.outputIndices = [relu]
        nodes = (shortcut, conv, add, relu)
    }

    func run(_ inputs: [Tensor], keep: Set<Int> = []) throws -> (output: Tensor, ran: Set<Int>) {
        let profiler = LayerProfiler()
        graph.profiler = profiler
        defer { graph.profiler = nil }
        let pass = try graph.forward(inputs, keep: keep)
        return (pass.outputs(of: graph)[0], Set(profiler.forwardRuns.keys))
    }
}

@Suite struct BatchNormalizationFoldTests {
    @Test func aConvolutionNormalizationActivationChainRunsAsOneFoldedPassWithTheSameValues() throws {
        let block = try MobileBlock(seed: 3)
        var data = TestData(seed: 4)
        let x = data.normal([2, 9, 10, 3])
        let folded = try block.run(x)
        // Keeping the convolutions' outputs leaves every layer to run on its own.
        let separate = try block.run(x, keep: [block.nodes.conv, block.nodes.depthwise])
        #expect(folded.ran == [block.nodes.conv, block.nodes.depthwise])
        #expect(separate.ran.isSuperset(of: [block.nodes.bn1, block.padding, block.nodes.bn2]))
        let scale = separate.output.scalars.map(abs).max()!
        #expect(maxDifference(folded.output, separate.output) <= 1e-5 * max(1, scale))
        #expect(separate.output.scalars.contains { $0 > 0 && $0 < 6 })
    }

    @Test func aFrozenEncoderIsFoldedInATrainingPassButATrainableConvolutionIsNot() throws {
        let block = try MobileBlock(seed: 5)
        var data = TestData(seed: 6)
        let x = data.normal([1, 8, 8, 3])
        let inference = try block.run(x).output
        for layer in [block.conv, block.bn1, block.depthwise, block.bn2] as [Layer] { layer.isTrainable = false }
        let frozen = try block.run(x, mode: .training)
        #expect(frozen.ran == [block.nodes.conv, block.nodes.depthwise])
        #expect(frozen.output == inference)
        // A trainable depthwise convolution needs its own backward cache: its chain runs unfolded.
        block.depthwise.isTrainable = true
        let training = try block.run(x, mode: .training)
        #expect(training.ran.contains(block.nodes.bn2) && !training.ran.contains(block.nodes.bn1))
        #expect(maxDifference(training.output, inference) <= 1e-5 * max(1, inference.scalars.map(abs).max()!))
    }

    @Test func theFoldedWeightsFollowAChangeOfAnyOfTheirParameters() throws {
        let block = try MobileBlock(seed: 7)
        var data = TestData(seed: 8)
        let x = data.normal([1, 8, 8, 3])
        let before = try block.run(x).output
        block.bn2.movingVariance.value.scalars[0] *= 9
        block.depthwise.kernel.value.scalars[5] += 1
        let after = try block.run(x)
        let separate = try block.run(x, keep: [block.nodes.conv, block.nodes.depthwise])
        #expect(after.output != before)
        #expect(maxDifference(after.output, separate.output) <= 1e-5 * max(1, separate.output.scalars.map(abs).max()!))
    }

    @Test func aResidualAddAndItsActivationRunInTheFoldedConvolutionsPass() throws {
        let block = try ResidualBlock(seed: 9)
        var data = TestData(seed: 10)
        let x = data.normal([2, 9, 7, 8])
        let folded = try block.run([x])
        let separate = try block.run([x], keep: [block.nodes.conv])
        #expect(folded.ran == [block.nodes.shortcut, block.nodes.conv])
        #expect(separate.ran.isSuperset(of: [block.nodes.add, block.nodes.relu]))
        #expect(maxDifference(folded.output, separate.output) <= 1e-5 * max(1, separate.output.scalars.map(abs).max()!))
        #expect(separate.output.scalars.contains { $0 == 0 } && separate.output.scalars.contains { $0 > 0 })
    }

    @Test func aResidualAddThatBroadcastsGivesTheAddsValues() throws {
        let block = try ResidualBlock(seed: 11, broadcastAddend: true)
        var data = TestData(seed: 12)
        let inputs = [data.normal([2, 6, 5, 8]), data.normal([2, 1, 1, 72])]
        let folded = try block.run(inputs)
        let separate = try block.run(inputs, keep: [block.nodes.conv])
        #expect(folded.ran == [block.nodes.conv])
        #expect(folded.output.shape == [2, 6, 5, 72])
        #expect(maxDifference(folded.output, separate.output) <= 1e-5 * max(1, separate.output.scalars.map(abs).max()!))
    }
}
