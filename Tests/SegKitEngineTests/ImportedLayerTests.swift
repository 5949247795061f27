import Testing
@testable import SegKitEngine

/// The layers real classifiers bring (importer issue): values worked by hand and
/// finite-difference gradient checks.
@Suite struct ImportedLayerTests {
    @Test func layerNormalizationNormalisesEachRowOfTheLastAxis() throws {
        let ln = try LayerNormalization(name: "ln", channels: 2, epsilon: 0, gamma: tensor([2], [2, 1]), beta: tensor([2], [0, 5]))
        let y = try ln.forward([tensor([1, 1, 2, 2], [1, 3, 10, 10.5])], mode: .inference).output
        // Row (1, 3): mean 2, deviation 1 → (−1, 1) · (2, 1) + (0, 5); row (10, 10.5): (−1, 1) too.
        #expect(y.scalars == [-2, 6, -2, 6])
    }

    @Test func layerNormalizationGradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 71)
        let ln = try LayerNormalization(name: "ln", channels: 6, epsilon: 1e-3, gamma: data.normal([6]), beta: data.normal([6]))
        try GradientCheck().check(ln, [data.normal([2, 3, 2, 6])])
        try GradientCheck().check(try LayerNormalization(name: "ln", channels: 6, gamma: nil, beta: nil), [data.normal([4, 6])])
    }

    @Test func preluScalesOnlyNegativeValuesByItsSharedSlopes() throws {
        // Slopes shared over height and width: one per channel.
        let p = PReLU(name: "p", alpha: tensor([1, 1, 2], [0.5, 2]))
        let y = try p.forward([tensor([1, 1, 2, 2], [-2, -2, 3, -1])], mode: .inference).output
        #expect(y.scalars == [-1, -4, 3, -2])
        var data = TestData(seed: 73)
        // Inputs kept away from the kink at 0.
        var x = data.normal([2, 3, 4, 2])
        x.scalars = x.scalars.map { $0 >= 0 ? $0 + 0.05 : $0 - 0.05 }
        try GradientCheck().check(PReLU(name: "p", alpha: data.normal([1, 1, 2])), [x])
        try GradientCheck().check(PReLU(name: "p", alpha: data.normal([3, 4, 2])), [x])
    }

    @Test func preprocessingBackwardAfterAnInferencePassIsAnErrorAsForEveryLayer() throws {
        let layers: [Layer] = [try Rescaling(name: "r", scale: [2], offset: [1]),
                               try Normalization(name: "n", mean: tensor([2], [0, 1]), variance: tensor([2], [1, 4]))]
        for layer in layers {
            let x = Tensor(zeros: [1, 2, 2, 2])
            let pass = try layer.forward([x], mode: .inference)
            #expect(throws: EngineError.self) { try layer.backward(x, cache: pass.cache, needInputGradients: [true]) }
            let trained = try layer.forward([x], mode: .training)
            #expect(try layer.backward(x, cache: trained.cache, needInputGradients: [true])[0]?.shape == x.shape)
        }
    }

    @Test func aPReLUGivenAnInputItsSlopesDoNotFitIsAnErrorNotARead() throws {
        let p = PReLU(name: "p", alpha: tensor([1, 1, 3], [1, 2, 3]))
        #expect(throws: EngineError.self) { try p.forward([Tensor(zeros: [1, 4, 4, 2])], mode: .inference) }
        #expect(throws: EngineError.self) { try p.forward([Tensor(zeros: [4, 2])], mode: .inference) }
    }

    @Test func dropoutWithANoiseShapeDropsWholeImages() throws {
        let drop = try Dropout(name: "d", rate: 0.5, noiseShape: [nil, 1, 1, 1], seed: 5)
        let y = try drop.forward([Tensor(repeating: 1, shape: [64, 2, 2, 3])], mode: .training).output
        for b in 0..<64 {
            let image = Set(y.scalars[(b * 12)..<((b + 1) * 12)])
            #expect(image == [0] || image == [2], "image \(b): \(image)")
        }
        #expect(try drop.forward([Tensor(repeating: 1, shape: [2, 2, 2, 3])], mode: .inference).output.scalars.allSatisfy { $0 == 1 })
        var data = TestData(seed: 79)
        let replay = try Dropout(name: "d", rate: 0.3, noiseShape: [nil, 1, 1, nil], seed: 9)
        try GradientCheck(beforeForward: { replay.reseed(9) }).check(replay, [data.normal([3, 2, 2, 4])])
    }

    @Test func aPassThroughLayerIsTheIdentityBothWays() throws {
        var data = TestData(seed: 83)
        let flip = PassThrough(name: "random_flip", kerasClass: "RandomFlip")
        let x = data.normal([2, 3, 3, 1])
        #expect(try flip.forward([x], mode: .training).output.scalars == x.scalars)
        #expect(flip.kind == "RandomFlip")
        try GradientCheck().check(flip, [x])
    }

    @Test func resizingUsesHalfPixelCentres() throws {
        // 2 → 4 bilinear: sources −¼ (clamped to 0), ¼, ¾, 1¼ (clamped to 1).
        let up = try Resizing(name: "r", height: 1, width: 4, interpolation: .bilinear)
        #expect(try up.forward([tensor([1, 1, 2, 1], [0, 4])], mode: .inference).output.scalars == [0, 1, 3, 4])
        // 4 → 2 nearest: sources ⌊(o + ½)·2⌋ = 1, 3.
        let down = try Resizing(name: "r", height: 1, width: 2, interpolation: .nearest)
        #expect(try down.forward([tensor([1, 1, 4, 1], [0, 1, 2, 3])], mode: .inference).output.scalars == [1, 3])
        var data = TestData(seed: 89)
        try GradientCheck().check(try Resizing(name: "r", height: 5, width: 3, interpolation: .bilinear), [data.normal([2, 4, 6, 2])])
        try GradientCheck().check(try Resizing(name: "r", height: 2, width: 7, interpolation: .nearest), [data.normal([1, 4, 3, 2])])
    }

    @Test func centerCropKeepsTheMiddleWindow() throws {
        let crop = try CenterCrop(name: "c", height: 1, width: 2)
        #expect(try crop.forward([tensor([1, 3, 4, 1], Array(0..<12).map(Float.init))], mode: .inference).output.scalars == [5, 6])
        #expect(throws: EngineError.self) { try crop.forward([Tensor(zeros: [1, 1, 1, 1])], mode: .inference) }
        var data = TestData(seed: 97)
        try GradientCheck().check(try CenterCrop(name: "c", height: 3, width: 2), [data.normal([2, 5, 5, 2])])
    }

    @Test func layerScaleAndTheScaledResidualMatchFiniteDifferences() throws {
        var data = TestData(seed: 101)
        let scale = LayerScale(name: "ls", gamma: tensor([2], [2, -1]))
        #expect(try scale.forward([tensor([1, 1, 2, 2], [1, 2, 3, 4])], mode: .inference).output.scalars == [2, -2, 6, -4])
        try GradientCheck().check(LayerScale(name: "ls", gamma: data.normal([3])), [data.normal([2, 2, 3, 3])])
        let residual = ScaledResidual(name: "block35", scale: 0.17)
        #expect(try residual.forward([tensor([2], [1, 1]), tensor([2], [100, -100])], mode: .inference).output.scalars == [18, -16])
        try GradientCheck().check(residual, [data.normal([2, 3, 3, 2]), data.normal([2, 3, 3, 2])])
    }

    @Test func permuteReordersTheAxesAfterTheBatch() throws {
        // (1, 2, 3, 1) with height and width swapped: [[1, 2, 3], [4, 5, 6]] → its transpose.
        let swap = try Permute(name: "p", dims: [2, 1, 3])
        let y = try swap.forward([tensor([1, 2, 3, 1], [1, 2, 3, 4, 5, 6])], mode: .inference).output
        #expect(y.shape == [1, 3, 2, 1] && y.scalars == [1, 4, 2, 5, 3, 6])
        #expect(throws: EngineError.self) { try Permute(name: "p", dims: [1, 1, 3]) }
        var data = TestData(seed: 103)
        try GradientCheck().check(try Permute(name: "p", dims: [3, 1, 2]), [data.normal([2, 3, 4, 5])])
    }
}
