import Testing
@testable import SegKitEngine

/// A small encoder–decoder with a skip that fans out: conv1 feeds conv2 and the
/// skip projection, whose sum meets the upsampled deep path.
struct SkipNet {
    let graph = Graph()
    let conv1: Conv2D, conv2: Conv2D, bn: BatchNormalization, up: Conv2DTranspose, project: Conv2D

    /// `upActivation` other than linear keeps the upsampling from folding the
    /// projection in; `projectionFirst` adds the projection's node before it.
    init(seed: UInt64, upActivation: Activation = .linear, projectionFirst: Bool = false) throws {
        var data = TestData(seed: seed)
        conv1 = try Conv2D(name: "conv1", kernel: data.normal([3, 3, 2, 4], scale: 0.5), bias: data.normal([4]),
                           strides: (2, 2), padding: .same, activation: .swish)
        bn = try BatchNormalization(name: "bn", channels: 4, gamma: data.normal([4]), beta: data.normal([4]),
                                    movingMean: data.normal([4]), movingVariance: Tensor(repeating: 0.5, shape: [4]))
        conv2 = try Conv2D(name: "conv2", kernel: data.normal([3, 3, 4, 6], scale: 0.5), bias: data.normal([6]),
                           strides: (2, 2), padding: .same, activation: .tanh)
        up = try Conv2DTranspose(name: "up", kernel: data.normal([3, 3, 3, 6], scale: 0.5), bias: data.normal([3]),
                                 strides: (2, 2), padding: .same, activation: upActivation)
        project = try Conv2D(name: "project", kernel: data.normal([1, 1, 4, 3]), bias: nil)
        let x = try graph.addInput(name: "input", shape: [nil, nil, nil, 2])
        let c1 = try graph.add(conv1, inputs: [x])
        let b = try graph.add(bn, inputs: [c1])
        let c2 = try graph.add(conv2, inputs: [b])
        let (u, p) = projectionFirst
            ? try { let p = try graph.add(project, inputs: [b]); return (try graph.add(up, inputs: [c2]), p) }()
            : (try graph.add(up, inputs: [c2]), try graph.add(project, inputs: [b]))
        let sum = try graph.add(ElementwiseMerge(name: "skip", .add), inputs: [u, p])
        graph.outputIndices = [sum]
    }

    func trainingStep(_ x: Tensor, keep: Set<Int>, outputGradient: Tensor) throws -> TrainingStep {
        try graph.trainingStep(x, keep: keep, outputGradient: outputGradient)
    }

    func freezeEncoder() {
        for layer in [conv1, bn, conv2] as [Layer] { layer.isTrainable = false }
    }
}

/// What one training step of a one-input, one-output graph did.
struct TrainingStep {
    let pass: ForwardPass
    let visited: [String]
    let output: [Float]
    let gradients: [[Float]]
}

extension Graph {
    /// A training pass keeping `keep` and a backward pass from `outputGradient`:
    /// the pass, the nodes visited backward, the output and every trainable
    /// parameter's gradient.
    func trainingStep(_ x: Tensor, keep: Set<Int>, outputGradient: Tensor) throws -> TrainingStep {
        let pass = try forward([x], mode: .training, keep: keep)
        zeroGradients()
        let result = try backward(pass, outputGradients: [outputGradient])
        return TrainingStep(pass: pass, visited: result.nodesVisited, output: pass.outputs(of: self)[0].scalars,
                            gradients: trainableParameters.map { $0.gradient!.scalars })
    }
}

/// Each parameter's gradient, at a dozen of its entries, against central
/// differences of `loss` (h = 1e-2; 2% relative + 2e-2 absolute tolerance).
func expectGradientsMatchFiniteDifferences(_ parameters: [Parameter], _ loss: () throws -> Double) throws {
    let h: Float = 1e-2
    for p in parameters {
        let grad = try #require(p.gradient)
        for i in stride(from: 0, to: p.value.count, by: max(1, p.value.count / 12)) {
            let original = p.value.scalars[i]
            p.value.scalars[i] = original + h
            let lp = try loss()
            p.value.scalars[i] = original - h
            let lm = try loss()
            p.value.scalars[i] = original
            let numeric = Float((lp - lm) / Double(2 * h))
            #expect(abs(numeric - grad.scalars[i]) <= 2e-2 + 2e-2 * abs(numeric), "\(p.name)[\(i)]")
        }
    }
}

@Suite struct GraphTests {
    @Test func staticShapesFollowTheLayersWithUnknownSpatialSize() throws {
        let net = try SkipNet(seed: 1)
        let shapes = try net.graph.staticShapes()
        #expect(shapes.last! == [nil, nil, nil, 3])
        let fixed = Graph()
        let x = try fixed.addInput(name: "in", shape: [nil, 8, 8, 2])
        try fixed.add(net.conv1, inputs: [x])
        #expect(try fixed.staticShapes().last! == [nil, 4, 4, 4])
    }

    @Test func backwardAccumulatesAtFanOutAndMatchesFiniteDifferences() throws {
        let net = try SkipNet(seed: 2)
        var data = TestData(seed: 3)
        let x = data.normal([2, 8, 8, 2])
        let pass = try net.graph.forward([x], mode: .training, inputGradients: true)
        let projection = data.normal(pass.outputs(of: net.graph)[0].shape)
        net.graph.zeroGradients()
        let result = try net.graph.backward(pass, outputGradients: [projection], inputGradients: true)

        func loss() throws -> Double {
            let y = try net.graph.forward([x], mode: .training).outputs(of: net.graph)[0]
            return zip(y.scalars, projection.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        // conv1's kernel gets gradient through both consumers of the bn output.
        try expectGradientsMatchFiniteDifferences([net.conv1.kernel, net.bn.gamma!, net.conv2.bias!, net.up.kernel, net.project.kernel], loss)
        #expect(result.inputGradients[0]?.shape == x.shape)
    }

    @Test func aFrozenEncoderCostsNoBackwardWork() throws {
        let net = try SkipNet(seed: 4)
        net.freezeEncoder()
        var data = TestData(seed: 5)
        let pass = try net.graph.forward([data.normal([1, 8, 8, 2])], mode: .training)
        let result = try net.graph.backward(pass, outputGradients: [data.normal([1, 4, 4, 3])])
        #expect(result.nodesVisited == ["skip", "project", "up"])
        #expect(net.conv1.kernel.gradient == nil && net.conv2.kernel.gradient == nil && net.bn.gamma!.gradient == nil)
        #expect(net.up.kernel.gradient != nil && net.project.kernel.gradient != nil)
        #expect(net.graph.trainableParameters.count == 3)
    }

    @Test func aFrozenPrefixRunsAsInferenceInATrainingPassButDropoutStillDrops() throws {
        let net = try SkipNet(seed: 6)
        net.freezeEncoder()
        var data = TestData(seed: 7)
        let x = data.normal([2, 8, 8, 2])
        let pass = try net.graph.forward([x], mode: .training)
        let frozen = net.graph.nodes.indices.filter { ["conv1", "bn", "conv2"].contains(net.graph.nodes[$0].name) }
        #expect(frozen.count == 3 && frozen.allSatisfy { pass.caches[$0] == nil }, "no backward caches for frozen nodes")
        #expect(pass.outputs(of: net.graph)[0].scalars == (try net.graph.forward([x]).outputs(of: net.graph)[0].scalars))
        #expect(throws: EngineError.self) { try net.graph.backward(pass, outputGradients: [pass.outputs(of: net.graph)[0]], inputGradients: true) }

        // A frozen Dropout (no parameters at all) still drops in training.
        let graph = Graph()
        let input = try graph.addInput(name: "in", shape: [nil, 64])
        graph.outputIndices = [try graph.add(try Dropout(name: "drop", rate: 0.5, seed: 1), inputs: [input])]
        let ones = Tensor(repeating: 1, shape: [1, 64])
        #expect(try graph.forward([ones], mode: .training).outputs(of: graph)[0].scalars.contains(0))
    }

    @Test func aFrozenBatchNormalizationKeepsItsStatisticsDuringTraining() throws {
        let net = try SkipNet(seed: 6)
        net.freezeEncoder()
        let before = net.bn.movingMean.value
        var data = TestData(seed: 7)
        _ = try net.graph.forward([data.normal([2, 8, 8, 2])], mode: .training)
        #expect(net.bn.movingMean.value == before)
        net.bn.isTrainable = true
        _ = try net.graph.forward([data.normal([2, 8, 8, 2])], mode: .training)
        #expect(net.bn.movingMean.value != before)
    }

    @Test func aSkipAddIsComputedByItsProjectionWithTheSameValuesAndGradients() throws {
        // A ReLU on the upsampling: it cannot fold the projection in, so the projection adds the upsampled tensor.
        let net = try SkipNet(seed: 10, upActivation: .relu())
        var data = TestData(seed: 11)
        let x = data.normal([2, 8, 8, 2])
        let (skip, project) = (net.graph.index(of: "skip")!, net.graph.index(of: "project")!)
        let projection = data.normal([2, 4, 4, 3])
        let fused = try net.trainingStep(x, keep: [], outputGradient: projection)
        // Keeping the projection's output leaves the Add to itself.
        let separate = try net.trainingStep(x, keep: [project], outputGradient: projection)
        #expect(fused.pass.fusedAdds == [skip] && separate.pass.fusedAdds.isEmpty)
        #expect(fused.output == separate.output)
        #expect(fused.gradients == separate.gradients)
    }

    @Test func aTransposedSkipFoldsItsProjectionIntoTheUpsamplingWithTheSameValuesAndGradients() throws {
        for projectionFirst in [false, true] {
            let net = try SkipNet(seed: 13, projectionFirst: projectionFirst)
            var data = TestData(seed: 14)
            let x = data.normal([2, 8, 12, 2])
            let (skip, project) = (net.graph.index(of: "skip")!, net.graph.index(of: "project")!)
            let outputGradient = data.normal([2, 4, 6, 3])
            let folded = try net.trainingStep(x, keep: [], outputGradient: outputGradient)
            // Keeping the projection's output leaves the Add to itself.
            let separate = try net.trainingStep(x, keep: [project], outputGradient: outputGradient)
            #expect(folded.pass.fusedAdds == [skip] && separate.pass.fusedAdds.isEmpty)
            // The same sums in another order: equal to float rounding.
            for (a, b) in zip(folded.output, separate.output) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
            // The backward pass reads the same caches either way.
            #expect(folded.gradients == separate.gradients)
            // In inference too, and with the layers' own forward passes as the reference.
            let inferred = try net.graph.forward([x]).outputs(of: net.graph)[0].scalars
            let deep = try net.graph.forward([x], keep: [net.graph.index(of: "up")!, project])
            let reference = try net.graph.nodes[skip].layer.forward(
                [deep.values[net.graph.index(of: "up")!]!, deep.values[project]!], mode: .inference).output.scalars
            for (a, b) in zip(inferred, reference) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
        }
    }

    @Test func aPooledSkipAddsItsGradientInPlaceAndMatchesFiniteDifferences() throws {
        // A U-Net level: conv's output feeds a max pooling (the deep path) and
        // the concatenation with the upsampled deep path (the skip).
        var data = TestData(seed: 12)
        let g = Graph()
        let conv = try Conv2D(name: "conv", kernel: data.normal([3, 3, 2, 3], scale: 0.5), bias: data.normal([3]), padding: .same)
        let deep = try Conv2D(name: "deep", kernel: data.normal([3, 3, 3, 4], scale: 0.5), bias: nil, padding: .same, activation: .tanh)
        let up = try Conv2DTranspose(name: "up", kernel: data.normal([2, 2, 3, 4], scale: 0.5), bias: nil, strides: (2, 2))
        let head = try Conv2D(name: "head", kernel: data.normal([1, 1, 6, 2]), bias: nil)
        let x = try g.addInput(name: "input", shape: [nil, 6, 6, 2])
        let c = try g.add(conv, inputs: [x])
        let pooled = try g.add(Pooling2D(name: "pool", .max), inputs: [c])
        let u = try g.add(up, inputs: [try g.add(deep, inputs: [pooled])])
        g.outputIndices = [try g.add(head, inputs: [try g.add(Concatenate(name: "skip"), inputs: [u, c])])]
        let input = data.normal([2, 6, 6, 2])
        let pass = try g.forward([input], mode: .training)
        let projection = data.normal(pass.outputs(of: g)[0].shape)
        g.zeroGradients()
        let result = try g.backward(pass, outputGradients: [projection])
        #expect(result.addedInPlace == ["pool"])
        func loss() throws -> Double {
            let y = try g.forward([input], mode: .training).outputs(of: g)[0]
            return zip(y.scalars, projection.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        try expectGradientsMatchFiniteDifferences([conv.kernel, conv.bias!], loss)
    }

    @Test func aConvolutionReadsTheConcatenatedSkipInPlaceWithTheSameValuesAndGradients() throws {
        // A U-Net decoder's first convolution over [upsampled, skip]: 16 + 5
        // channels (the parts' gradients written in place), 5 + 16 (the
        // concatenation's backward pass splits them), and a concatenation on
        // another axis (never read in place).
        for (wideFirst, axis) in [(true, -1), (false, -1), (true, 1)] {
            var data = TestData(seed: 15)
            let g = Graph()
            let wide = try Conv2D(name: "wide", kernel: data.normal([3, 3, 3, 16], scale: 0.5), bias: data.normal([16]),
                                  padding: .same, activation: .relu())
            let narrow = try Conv2D(name: "narrow", kernel: data.normal([1, 1, 3, axis == -1 ? 5 : 16]), bias: nil, activation: .tanh)
            let decoder = try Conv2D(name: "decoder", kernel: data.normal([3, 3, axis == -1 ? 21 : 16, 7], scale: 0.3),
                                     bias: data.normal([7]), padding: .same, activation: .relu())
            let x = try g.addInput(name: "input", shape: [nil, 6, 10, 3])
            let (w, n) = (try g.add(wide, inputs: [x]), try g.add(narrow, inputs: [x]))
            let joined = try g.add(Concatenate(name: "skip", axis: axis), inputs: wideFirst ? [w, n] : [n, w])
            let out = try g.add(decoder, inputs: [joined])
            g.outputIndices = [out]
            let input = data.normal([2, 6, 10, 3])
            let outputGradient = data.normal(try g.forward([input]).outputs(of: g)[0].shape)
            let inPlace = try g.trainingStep(input, keep: [], outputGradient: outputGradient)
            // Keeping the concatenation makes the graph write it.
            let written = try g.trainingStep(input, keep: [joined], outputGradient: outputGradient)
            #expect(inPlace.pass.partsRead == (axis == -1 ? [out: joined] : [:]) && written.pass.partsRead.isEmpty)
            #expect(inPlace.visited.contains("skip") == !(wideFirst && axis == -1) && written.visited.contains("skip"))
            // The same sums in another order: equal to float rounding.
            for (a, b) in zip(inPlace.output, written.output) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
            for (p, q) in zip(inPlace.gradients, written.gradients) {
                for (a, b) in zip(p, q) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b)), "wide first \(wideFirst), axis \(axis)") }
            }
        }
    }

    @Test func aCopyComputesTheSameAndTrainingOrFreezingItLeavesTheOriginal() throws {
        let net = try SkipNet(seed: 21)
        net.up.isTrainable = false
        // conv2 applied a second time: a shared layer must stay one layer in the copy.
        let again = try net.graph.add(net.conv2, inputs: [net.graph.index(of: "bn")!], nodeName: "conv2_again")
        net.graph.outputIndices.append(again)
        let copy = try net.graph.copy()
        #expect(copy.nodes.map(\.name) == net.graph.nodes.map(\.name) && copy.outputIndices == net.graph.outputIndices)
        #expect(copy.layers.count == net.graph.layers.count, "conv2 stays one shared layer")
        let mine = Set(net.graph.parameters.map(ObjectIdentifier.init))
        #expect(copy.parameters.allSatisfy { !mine.contains(ObjectIdentifier($0)) })
        #expect(copy.parameters.map(\.isTrainable) == net.graph.parameters.map(\.isTrainable))
        var data = TestData(seed: 22)
        let x = data.normal([2, 8, 8, 2])
        let before = try net.graph.forward([x]).outputs(of: net.graph).map(\.scalars)
        #expect(try copy.forward([x]).outputs(of: copy).map(\.scalars) == before)

        for layer in copy.layers { layer.isTrainable = !layer.isTrainable }
        for p in copy.parameters { p.value.scalars[0] += 1 }
        #expect(!net.up.isTrainable && net.conv1.isTrainable && net.conv1.kernel.isTrainable && !net.up.kernel.isTrainable)
        #expect(try net.graph.forward([x]).outputs(of: net.graph).map(\.scalars) == before)
    }

    @Test func aPlanIsMadeOncePerKindOfPassAndAgainWhenTrainabilityOrTheNodesChange() throws {
        let net = try SkipNet(seed: 23)
        var data = TestData(seed: 24)
        let x = data.normal([1, 8, 8, 2])
        let first = try net.graph.forward([x], mode: .training).outputs(of: net.graph)[0]
        #expect(try net.graph.forward([x], mode: .training).outputs(of: net.graph)[0] == first)
        #expect(net.graph.plans.count == 1)
        _ = try net.graph.forward([x])
        #expect(net.graph.plans.count == 2)
        net.freezeEncoder()
        let pass = try net.graph.forward([x], mode: .training)
        #expect(net.graph.plans.count == 3, "another trainability is another plan")
        let result = try net.graph.backward(pass, outputGradients: [data.normal([1, 4, 4, 3])])
        #expect(result.nodesVisited == ["skip", "project", "up"])
        try net.graph.add(ActivationLayer(name: "relu", .relu()), inputs: [net.graph.outputIndices[0]])
        #expect(net.graph.plans.count == 0)
    }

    @Test func aCopiedDropoutContinuesTheRandomStreamWhereTheOriginalStands() throws {
        let g = Graph()
        let x = try g.addInput(name: "in", shape: [nil, 64])
        g.outputIndices = [try g.add(try Dropout(name: "drop", rate: 0.5, seed: 9), inputs: [x])]
        let ones = Tensor(repeating: 1, shape: [1, 64])
        _ = try g.forward([ones], mode: .training)
        let copy = try g.copy()
        let next = try g.forward([ones], mode: .training).outputs(of: g)[0].scalars
        #expect(try copy.forward([ones], mode: .training).outputs(of: copy)[0].scalars == next)
    }

    @Test func inferenceKeepsOnlyRequestedIntermediates() throws {
        let net = try SkipNet(seed: 8)
        var data = TestData(seed: 9)
        let conv2 = try #require(net.graph.index(of: "conv2"))
        let pass = try net.graph.forward([data.normal([1, 8, 8, 2])], keep: [conv2])
        #expect(pass.values[conv2]?.shape == [1, 2, 2, 6])
        #expect(pass.values[net.graph.index(of: "conv1")!] == nil)
        #expect(throws: EngineError.self) { try net.graph.backward(pass, outputGradients: [Tensor(zeros: [1, 4, 4, 3])]) }
    }

    @Test func anOutputGradientOfAnotherShapeIsAnErrorNotAReadPastTheCaches() throws {
        // A ReLU's backward pass reads its cached output over the gradient's extent.
        let net = try SkipNet(seed: 15, upActivation: .relu())
        var data = TestData(seed: 16)
        let pass = try net.graph.forward([data.normal([1, 8, 8, 2])], mode: .training)
        #expect(throws: EngineError.self) { try net.graph.backward(pass, outputGradients: [data.normal([1, 8, 8, 3])]) }
        #expect(throws: EngineError.self) { try net.graph.backward(pass, outputGradients: [data.normal([1, 4, 4, 2])]) }
        _ = try net.graph.backward(pass, outputGradients: [data.normal([1, 4, 4, 3])])
    }

    @Test func malformedGraphsAndInputsAreErrors() throws {
        let g = Graph()
        let x = try g.addInput(name: "input", shape: [nil, 8, 8, 1])
        #expect(throws: EngineError.self) { try g.add(ElementwiseMerge(name: "add", .add), inputs: [x]) }
        #expect(throws: EngineError.self) { try g.add(Reshape.flatten(name: "input"), inputs: [x]) }
        #expect(throws: EngineError.self) { try g.add(Reshape.flatten(name: "f"), inputs: [5]) }
        g.outputIndices = [x]
        #expect(throws: EngineError.self) { try g.forward([Tensor(zeros: [1, 8, 8, 3])]) }
        #expect(throws: EngineError.self) { try g.forward([Tensor(zeros: [0, 8, 8, 1])]) }
    }
}
