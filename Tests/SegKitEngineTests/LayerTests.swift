import Foundation
import Testing
@testable import SegKitEngine

@Suite struct DenseTests {
    @Test func actsOnTheLastAxisOfA4DTensorAsAt2D() throws {
        var data = TestData(seed: 23)
        let dense = try Dense(name: "fc", kernel: data.normal([5, 3]), bias: data.normal([3]))
        let x = data.normal([2, 3, 4, 5])
        let y4 = try dense.forward([x], mode: .inference).output
        let y2 = try dense.forward([x.reshaped([24, 5])], mode: .inference).output
        #expect(y4.shape == [2, 3, 4, 3])
        #expect(y4.scalars == y2.scalars)
        // Hand-worked: one row through a known kernel.
        let d = try Dense(name: "d", kernel: tensor([2, 2], [1, 2, 3, 4]), bias: tensor([2], [10, 20]))
        #expect(try d.forward([tensor([1, 2], [1, 1])], mode: .inference).output.scalars == [14, 26])
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 29)
        let dense2 = try Dense(name: "fc", kernel: data.normal([6, 4]), bias: data.normal([4]), activation: .gelu())
        try GradientCheck().check(dense2, [data.normal([3, 6])])
        let dense4 = try Dense(name: "fc", kernel: data.normal([3, 5]), bias: nil, activation: .softmax)
        try GradientCheck().check(dense4, [data.normal([2, 3, 3, 3])])
    }
}

@Suite struct BatchNormalizationTests {
    @Test func trainingUsesBatchStatisticsAndMovesTheAverages() throws {
        let bn = try BatchNormalization(name: "bn", channels: 1, gamma: tensor([1], [1]), beta: tensor([1], [0]))
        let y = try bn.forward([tensor([4, 1], [1, 2, 3, 4])], mode: .training).output
        let s = Float(1.25 + 1e-3).squareRoot()
        for (a, b) in zip(y.scalars, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) { #expect(abs(a - b) < 1e-6) }
        // Keras 3: moving = moving·0.99 + batch·0.01, biased batch variance.
        #expect(abs(bn.movingMean.value.scalars[0] - 0.025) < 1e-7)
        #expect(abs(bn.movingVariance.value.scalars[0] - 1.0025) < 1e-6)
    }

    @Test func inferenceAndFrozenLayersUseTheMovingStatistics() throws {
        let make = {
            try BatchNormalization(name: "bn", channels: 2, gamma: tensor([2], [2, 1]), beta: tensor([2], [1, 0]),
                                   movingMean: tensor([2], [1, -1]), movingVariance: tensor([2], [4, 1]))
        }
        let x = tensor([1, 2], [3, 0])
        let expected: [Float] = [2 * 2 / Float(4.001).squareRoot() + 1, 1 / Float(1.001).squareRoot()]
        let inference = try make().forward([x], mode: .inference).output
        let frozen = try make()
        frozen.isTrainable = false
        let frozenTraining = try frozen.forward([x], mode: .training).output
        for out in [inference, frozenTraining] {
            for (a, b) in zip(out.scalars, expected) { #expect(abs(a - b) < 1e-6) }
        }
        #expect(frozen.movingMean.value.scalars == [1, -1], "a frozen layer's statistics do not move")
    }

    @Test func movingStatisticsAreNeverTrainable() throws {
        let bn = try BatchNormalization(name: "bn", channels: 3, gamma: Tensor(repeating: 1, shape: [3]), beta: Tensor(zeros: [3]))
        bn.isTrainable = true
        bn.movingMean.isTrainable = true
        #expect(bn.parameters.map(\.name) == ["gamma", "beta", "moving_mean", "moving_variance"])
        #expect(bn.parameters.map(\.isTrainable) == [true, true, false, false])
    }

    @Test func gradientsMatchFiniteDifferencesInBothModes() throws {
        var data = TestData(seed: 31)
        let c = 3
        let make = {
            try BatchNormalization(name: "bn", channels: c, gamma: data.normal([c]), beta: data.normal([c]),
                                   movingMean: data.normal([c]), movingVariance: Tensor(repeating: 0.7, shape: [c]))
        }
        try GradientCheck().check(try make(), [data.normal([2, 3, 3, c])])
        // Frozen: inference arithmetic; its gamma/beta are made trainable again to check theirs too.
        let frozen = try make()
        frozen.isTrainable = false
        frozen.gamma!.isTrainable = true
        frozen.beta!.isTrainable = true
        try GradientCheck().check(frozen, [data.normal([2, 4, c])])
    }
}

@Suite struct PoolingTests {
    @Test func sameMaxAndAveragePoolingHandWorked() throws {
        let x = tensor([1, 3, 3, 1], (0..<9).map(Float.init))
        let maxPool = try Pooling2D(name: "p", .max, poolSize: (2, 2), padding: .same)
        #expect(try maxPool.forward([x], mode: .inference).output.scalars == [4, 5, 7, 8])
        // Average over real inputs only: (0+1+3+4)/4, (2+5)/2, (6+7)/2, 8.
        let avgPool = try Pooling2D(name: "p", .average, poolSize: (2, 2), padding: .same)
        #expect(try avgPool.forward([x], mode: .inference).output.scalars == [2, 3.5, 6.5, 8])
        let valid = try Pooling2D(name: "p", .max, poolSize: (2, 2), strides: (1, 1), padding: .valid)
        #expect(try valid.forward([x], mode: .inference).output.scalars == [4, 5, 7, 8])
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 37)
        for trial in 0..<24 {
            let pool = try Pooling2D(name: "p", trial % 2 == 0 ? .max : .average,
                                     poolSize: (data.int(1...3), data.int(1...3)),
                                     strides: (data.int(1...3), data.int(1...3)),
                                     padding: trial % 4 < 2 ? .same : .valid)
            try GradientCheck().check(pool, [data.distinct([data.int(1...2), data.int(4...7), data.int(4...7), data.int(1...3)])],
                                      seed: UInt64(trial))
        }
    }

    @Test func globalPoolingValuesAndGradients() throws {
        var data = TestData(seed: 41)
        let x = tensor([1, 2, 2, 2], [1, 8, 3, 6, 5, 4, 7, 2])
        #expect(try GlobalPooling2D(name: "g", .max).forward([x], mode: .inference).output.scalars == [7, 8])
        #expect(try GlobalPooling2D(name: "g", .average).forward([x], mode: .inference).output.scalars == [4, 5])
        let kept = try GlobalPooling2D(name: "g", .average, keepDims: true).forward([x], mode: .inference).output
        #expect(kept.shape == [1, 1, 1, 2])
        for reduction in [Pooling2D.Reduction.max, .average] {
            for keep in [false, true] {
                try GradientCheck().check(GlobalPooling2D(name: "g", reduction, keepDims: keep),
                                          [data.distinct([2, 3, 5, 3])])
            }
        }
    }
}

@Suite struct ShapeLayerTests {
    @Test func zeroPaddingAndCroppingAreEachOthersInverse() throws {
        var data = TestData(seed: 43)
        let x = data.normal([2, 5, 6, 3])
        let pad = ZeroPadding2D(name: "pad", rows: (1, 2), cols: (0, 3))
        let padded = try pad.forward([x], mode: .inference).output
        #expect(padded.shape == [2, 8, 9, 3])
        #expect(padded.scalars[0..<(9 * 3)].allSatisfy { $0 == 0 }, "first row is padding")
        let crop = Cropping2D(name: "crop", rows: (1, 2), cols: (0, 3))
        #expect(try crop.forward([padded], mode: .inference).output == x)
        try GradientCheck().check(pad, [x])
        try GradientCheck().check(crop, [data.normal([1, 6, 7, 2])])
    }

    @Test func bilinearUpsamplingUsesHalfPixelCentresAndClampsEdges() throws {
        let up = try UpSampling2D(name: "up", size: (1, 2), interpolation: .bilinear)
        #expect(try up.forward([tensor([1, 1, 2, 1], [0, 4])], mode: .inference).output.scalars == [0, 1, 3, 4])
        let nearest = try UpSampling2D(name: "up", size: (2, 1))
        #expect(try nearest.forward([tensor([1, 2, 1, 1], [1, 2])], mode: .inference).output.scalars == [1, 1, 2, 2])
    }

    @Test func upsamplingGradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 47)
        for interpolation in [UpSampling2D.Interpolation.nearest, .bilinear] {
            for _ in 0..<3 {
                let up = try UpSampling2D(name: "up", size: (data.int(1...4), data.int(1...4)), interpolation: interpolation)
                try GradientCheck().check(up, [data.normal([data.int(1...2), data.int(1...4), data.int(1...4), 2])])
            }
        }
    }

    @Test func flattenAndReshapeKeepChannelsLastOrder() throws {
        var data = TestData(seed: 53)
        let x = data.normal([2, 3, 4, 5])
        let flat = try Reshape.flatten(name: "f").forward([x], mode: .inference).output
        #expect(flat.shape == [2, 60])
        #expect(flat.scalars == x.scalars)
        let r = try Reshape(name: "r", target: [-1, 5])
        #expect(try r.outputShape(for: [[nil, 3, 4, 5]]) == [nil, 12, 5])
        #expect(try r.forward([x], mode: .inference).output.shape == [2, 12, 5])
        #expect(throws: EngineError.self) { try Reshape(name: "r", target: [7]).forward([x], mode: .inference) }
        try GradientCheck().check(Reshape.flatten(name: "f"), [x])
        try GradientCheck().check(r, [x])
    }
}

@Suite struct MergeTests {
    @Test func addMultiplyAndConcatenateValues() throws {
        let a = tensor([1, 1, 1, 2], [1, 2]), b = tensor([1, 1, 1, 2], [3, 4])
        #expect(try ElementwiseMerge(name: "a", .add).forward([a, b], mode: .inference).output.scalars == [4, 6])
        #expect(try ElementwiseMerge(name: "m", .multiply).forward([a, b], mode: .inference).output.scalars == [3, 8])
        let c = tensor([1, 1, 1, 1], [9])
        #expect(try Concatenate(name: "c").forward([a, c, b], mode: .inference).output.scalars == [1, 2, 9, 3, 4])
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 59)
        let shape = [2, 3, 3, 2]
        try GradientCheck().check(ElementwiseMerge(name: "a", .add), [data.normal(shape), data.normal(shape)])
        try GradientCheck().check(ElementwiseMerge(name: "m", .multiply),
                                  [data.normal(shape), data.normal(shape), data.normal(shape)])
        try GradientCheck().check(Concatenate(name: "c"), [data.normal([2, 3, 3, 2]), data.normal([2, 3, 3, 5])])
        try GradientCheck().check(Concatenate(name: "c", axis: 1), [data.normal([2, 1, 3, 2]), data.normal([2, 4, 3, 2])])
    }

    @Test func everyOperationBroadcastsAsNumPyDoes() throws {
        // (2, 1, 2) with (1, 3, 1) → (2, 3, 2); (1, 2) with (2,) pads the shorter shape in front.
        let a = tensor([2, 1, 2], [1, 2, 3, 4]), b = tensor([1, 3, 1], [10, 20, 30])
        let expected: [ElementwiseMerge.Operation: [Float]] = [
            .add: [11, 12, 21, 22, 31, 32, 13, 14, 23, 24, 33, 34],
            .subtract: [-9, -8, -19, -18, -29, -28, -7, -6, -17, -16, -27, -26],
            .multiply: [10, 20, 20, 40, 30, 60, 30, 40, 60, 80, 90, 120],
            .average: [5.5, 6, 10.5, 11, 15.5, 16, 6.5, 7, 11.5, 12, 16.5, 17],
            .maximum: [10, 10, 20, 20, 30, 30, 10, 10, 20, 20, 30, 30],
            .minimum: [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4],
        ]
        for (op, values) in expected {
            let y = try ElementwiseMerge(name: "m", op).forward([a, b], mode: .inference).output
            #expect(y.shape == [2, 3, 2] && y.scalars == values, "\(op)")
        }
        #expect(try ElementwiseMerge(name: "m", .add).outputShape(for: [[nil, 8, 8, 4], [nil, 1, 1, 4]]) == [nil, 8, 8, 4])
        #expect(try ElementwiseMerge(name: "m", .multiply).forward([tensor([1, 2], [1, 2]), tensor([2], [3, 4])], mode: .inference).output.scalars == [3, 8])
    }

    @Test(arguments: ElementwiseMerge.Operation.allCases)
    func broadcastGradientsAreReducedOverTheBroadcastAxes(_ op: ElementwiseMerge.Operation) throws {
        var data = TestData(seed: 61)
        // A squeeze-and-excitation gate (N, 1, 1, C) on a map (N, H, W, C), and a per-channel row.
        // Maximum and Minimum have kinks where inputs tie: input k's values sit on a 0.1 grid
        // shifted by k·0.033, so no two inputs come within 3h of each other.
        func input(_ shape: [Int], _ k: Int) -> Tensor {
            var x = data.normal(shape)
            if op == .maximum || op == .minimum { x.scalars = x.scalars.map { ($0 * 10).rounded() / 10 + Float(k) * 0.033 } }
            return x
        }
        let inputs = op == .subtract ? [input([2, 3, 4, 5], 0), input([2, 1, 1, 5], 1)]
            : [input([2, 3, 4, 5], 0), input([2, 1, 1, 5], 1), input([5], 2)]
        try GradientCheck().check(ElementwiseMerge(name: "m", op), inputs)
        try GradientCheck().check(ElementwiseMerge(name: "m", op), [input([2, 3, 4, 5], 0), input([2, 3, 4, 5], 1)])
    }

    /// The squeeze-and-excitation scaling's one-pass path (a map and a vector
    /// per image, either order, a channel count that is no whole vector) equals
    /// the definition, and its gradients the finite differences.
    @Test(arguments: [ElementwiseMerge.Operation.multiply, .add])
    func aPerChannelScalingOfAMapEqualsTheBroadcast(_ op: ElementwiseMerge.Operation) throws {
        var data = TestData(seed: 67)
        let map = data.normal([2, 3, 4, 19]), vector = data.normal([2, 1, 1, 19])
        var expected = map
        for i in expected.scalars.indices {
            let v = vector.scalars[(i / (3 * 4 * 19)) * 19 + i % 19]
            expected.scalars[i] = op == .multiply ? map.scalars[i] * v : map.scalars[i] + v
        }
        for inputs in [[map, vector], [vector, map]] {
            #expect(try ElementwiseMerge(name: "m", op).forward(inputs, mode: .inference).output == expected)
            try GradientCheck().check(ElementwiseMerge(name: "m", op), inputs)
        }
    }

    @Test func mismatchedShapesAreAnError() throws {
        let add = ElementwiseMerge(name: "skip", .add)
        #expect(throws: EngineError.self) {
            try add.forward([Tensor(zeros: [1, 4, 4, 2]), Tensor(zeros: [1, 4, 4, 3])], mode: .inference)
        }
        #expect(throws: EngineError.self) {
            try Concatenate(name: "cat").forward([Tensor(zeros: [1, 4, 4, 2]), Tensor(zeros: [1, 5, 4, 2])], mode: .inference)
        }
    }
}

@Suite struct DropoutTests {
    @Test func dropsInTrainingOnlyAndScalesTheRest() throws {
        let drop = try Dropout(name: "d", rate: 0.5, seed: 3)
        let x = Tensor(repeating: 1, shape: [1, 1000])
        #expect(try drop.forward([x], mode: .inference).output == x)
        let y = try drop.forward([x], mode: .training).output
        let kept = y.scalars.filter { $0 != 0 }
        #expect(kept.allSatisfy { $0 == 2 })
        #expect(abs(kept.count - 500) < 60)
    }

    @Test func spatialDropoutDropsWholeChannels() throws {
        let drop = try Dropout(name: "d", rate: 0.5, perChannel: true, seed: 5)
        let y = try drop.forward([Tensor(repeating: 1, shape: [2, 3, 3, 8])], mode: .training).output
        for b in 0..<2 {
            for c in 0..<8 {
                let values = Set((0..<9).map { y.scalars[(b * 9 + $0) * 8 + c] })
                #expect(values.count == 1)
            }
        }
    }

    @Test func gradientMatchesFiniteDifferencesUnderOneMask() throws {
        var data = TestData(seed: 61)
        let drop = try Dropout(name: "d", rate: 0.3, seed: 9)
        var check = GradientCheck()
        check.beforeForward = { drop.reseed(9) }
        try check.check(drop, [data.normal([2, 4, 4, 3])])
    }
}

@Suite struct PreprocessingTests {
    @Test func rescalingAndNormalizationValues() throws {
        let r = try Rescaling(name: "r", scale: [1.0 / 255], offset: [-0.5])
        #expect(try r.forward([tensor([1, 2], [0, 255])], mode: .inference).output.scalars == [-0.5, 0.5])
        let n = try Normalization(name: "n", mean: tensor([2], [1, 2]), variance: tensor([2], [4, 0]))
        // The second channel has zero variance: Keras divides by epsilon 1e-7.
        let y = try n.forward([tensor([1, 2], [3, 2])], mode: .inference).output
        #expect(y.scalars == [1, 0])
        #expect(n.parameters.allSatisfy { !$0.isTrainable })
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 83)
        try GradientCheck().check(Rescaling(name: "r", scale: [0.5, 2, -1], offset: [1]), [data.normal([2, 3, 3, 3])])
        try GradientCheck().check(Normalization(name: "n", mean: data.normal([3]), variance: tensor([3], [0.5, 2, 4])),
                                  [data.normal([2, 3, 3, 3])])
    }
}
