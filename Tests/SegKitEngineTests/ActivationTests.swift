import Foundation
import Testing
@testable import SegKitEngine

@Suite struct ActivationTests {
    /// Every activation, with the points where its derivative jumps.
    static let all: [(Activation, [Float])] = [
        (.linear, []), (.relu(), [0]), (.relu6, [0, 6]),
        (.relu(maxValue: 2, negativeSlope: 0.1, threshold: 0.5), [0.5, 2]),
        (.leakyRelu(alpha: 0.2), [0]), (.elu(alpha: 1.3), [0]), (.swish, []), (.sigmoid, []),
        (.hardSigmoid(), [-3, 3]), (.hardSigmoid(slope: 0.2), [-2.5, 2.5]), (.hardSwish, [-3, 3]),
        (.tanh, []), (.gelu(approximate: false), []), (.gelu(approximate: true), []), (.softplus, []),
        (.softmax, []),
    ]

    @Test func handWorkedValues() {
        let cases: [(Activation, Float, Float)] = [
            (.relu6, 7, 6), (.relu6, -1, 0), (.relu(maxValue: 2, negativeSlope: 0.1, threshold: 0.5), 0, -0.05),
            (.leakyRelu(alpha: 0.2), -2, -0.4), (.elu(alpha: 1), -1, -0.63212055), (.swish, 1, 0.7310586),
            (.sigmoid, 0, 0.5), (.hardSigmoid(), 0, 0.5), (.hardSigmoid(), 1.5, 0.75), (.hardSigmoid(slope: 0.2), 1.5, 0.8),
            (.hardSwish, 1, 2.0 / 3.0), (.tanh, 0.5, 0.46211716), (.gelu(approximate: false), 1, 0.8413447),
            (.gelu(approximate: true), 1, 0.8411920), (.softplus, 0, 0.6931472), (.softplus, 100, 100),
        ]
        for (activation, x, expected) in cases {
            #expect(abs(activation.value(x) - expected) < 1e-6, "\(activation)(\(x))")
        }
        var row: [Float] = [1, 2, 3]
        row.withUnsafeMutableBufferPointer { Activation.softmax.apply($0, lastAxis: 3) }
        let e = [exp(Float(1)), exp(Float(2)), exp(Float(3))]
        let s = e.reduce(0, +)
        for (a, b) in zip(row, e.map { $0 / s }) { #expect(abs(a - b) < 1e-6) }
    }

    @Test func softmaxIsStableForLargeLogits() {
        var row: [Float] = [1000, 1000]
        row.withUnsafeMutableBufferPointer { Activation.softmax.apply($0, lastAxis: 2) }
        #expect(row == [0.5, 0.5])
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 67)
        for (activation, kinks) in Self.all {
            let layer = ActivationLayer(name: "act", activation)
            try GradientCheck().check(layer, [data.awayFrom(kinks, [2, 3, 3, 4])])
        }
    }
}

@Suite struct SoftmaxCrossEntropyTests {
    @Test func handWorkedLossWithIgnoredAndWeightedPixels() throws {
        let logits = tensor([3, 2], [0, 0, 0, 0, 5, -5])
        let loss = SoftmaxCrossEntropy(ignoreLabel: 255)
        // Pixel 2 is ignored: mean of two log 2 terms.
        let (l, g) = try loss(logits: logits, labels: [0, 1, 255])
        #expect(abs(l - log(2)) < 1e-6)
        #expect(g.scalars[4] == 0 && g.scalars[5] == 0)
        #expect(abs(g.scalars[0] - (-0.25)) < 1e-6, "(0.5 − 1) / 2 counted pixels")
        let weighted = SoftmaxCrossEntropy(classWeights: [1, 3])
        let (lw, _) = try weighted(logits: tensor([2, 2], [0, 0, 0, 0]), labels: [0, 1], pixelWeights: [2, 1])
        #expect(abs(lw - (2 * log(2) + 3 * log(2)) / 2) < 1e-6)
    }

    @Test func aLabelThatIsNoClassIsAnErrorNamingItsFirstPosition() throws {
        // Past the first 1024-label block, and a negative one and k itself after it.
        let positions = 3000
        let logits = Tensor(zeros: [positions, 4])
        for (bad, value) in [(2500, Int32(4)), (1030, Int32(-2)), (0, Int32(7))] {
            var labels = [Int32](repeating: 1, count: positions)
            labels[bad] = value
            labels[2900] = 9
            #expect(throws: EngineError.invalidArgument(op: "cross-entropy", message: "label \(value) at position \(bad) is not a class id in 0..<4")) {
                try SoftmaxCrossEntropy()(logits: logits, labels: labels)
            }
        }
        // The ignore label is valid and not counted: 2 of 3000 positions ignored.
        var labels = [Int32](repeating: 1, count: positions)
        labels[5] = 255
        labels[2999] = 255
        let (_, g) = try SoftmaxCrossEntropy(ignoreLabel: 255)(logits: logits, labels: labels)
        #expect(abs(g.scalars[0] - 0.25 / 2998) < 1e-9 && g.scalars[1] < 0)
        #expect(throws: EngineError.self) { try SoftmaxCrossEntropy(ignoreLabel: 255)(logits: logits, labels: labels.map { $0 == 255 ? 254 : $0 }) }
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        var data = TestData(seed: 71)
        let logits = data.normal([2, 3, 3, 4])
        var labels = (0..<18).map { _ in Int32(data.int(0...3)) }
        labels[5] = -1
        let weights = (0..<18).map { _ in Float(data.int(1...5)) / 2 }
        let loss = SoftmaxCrossEntropy(classWeights: [1, 2, 0.5, 1.5], ignoreLabel: -1)
        let (_, g) = try loss(logits: logits, labels: labels, pixelWeights: weights)
        let h: Float = 1e-2
        for i in 0..<logits.count {
            var plus = logits, minus = logits
            plus.scalars[i] += h
            minus.scalars[i] -= h
            let numeric = (try loss(logits: plus, labels: labels, pixelWeights: weights).loss
                - loss(logits: minus, labels: labels, pixelWeights: weights).loss) / (2 * h)
            #expect(abs(numeric - g.scalars[i]) < 2e-3, "logit \(i)")
        }
    }

    @Test func lossAndGradientMatchADoubleReferenceOnManyRows() throws {
        // Over a thousand rows, with and without weights and an ignore label:
        // 70 blocks of 16 rows (the AVX-512 path for k ≤ 32) and a 7-row tail;
        // k = 33 runs row by row throughout, taking the log of a product of
        // row sums many times.
        var data = TestData(seed: 72)
        for k in [3, 11, 32, 33] {
            for weighted in [false, true] {
                let rows = 16 * 70 + 7
                // Equal logits give each row's Σexp its largest value, k: the
                // product of row sums must still not overflow.
                let logits = weighted ? data.normal([rows, k], scale: 3) : Tensor(zeros: [rows, k])
                var labels = (0..<rows).map { _ in Int32(data.int(0...(k - 1))) }
                if weighted { for i in stride(from: 3, to: rows, by: 17) { labels[i] = 99 } }
                let pixel: [Float]? = weighted ? (0..<rows).map { _ in Float(data.int(1...4)) / 2 } : nil
                let classWeights: [Float]? = weighted ? (0..<k).map { _ in Float(data.int(1...3)) } : nil
                let (loss, g) = try SoftmaxCrossEntropy(classWeights: classWeights, ignoreLabel: weighted ? 99 : nil)(
                    logits: logits, labels: labels, pixelWeights: pixel)
                var total = 0.0, counted = 0
                var expected = [Double](repeating: 0, count: rows * k)
                counted = labels.filter { $0 != 99 }.count
                for r in 0..<rows where labels[r] != 99 {
                    let z = (0..<k).map { Double(logits.scalars[r * k + $0]) }
                    let m = z.max()!
                    let sum = z.reduce(0) { $0 + Foundation.exp($1 - m) }
                    let label = Int(labels[r])
                    let w = Double(pixel?[r] ?? 1) * Double(classWeights?[label] ?? 1)
                    total += w * (Foundation.log(sum) - (z[label] - m))
                    for c in 0..<k { expected[r * k + c] = w * (Foundation.exp(z[c] - m) / sum - (c == label ? 1 : 0)) / Double(counted) }
                }
                #expect(abs(Double(loss) - total / Double(counted)) < 1e-4 * max(1, total / Double(counted)), "k \(k) weighted \(weighted)")
                let worst = zip(g.scalars, expected).map { abs(Double($0) - $1) }.max()!
                #expect(worst < 1e-6, "k \(k) weighted \(weighted): gradient off by \(worst)")
            }
        }
    }

    @Test func aLabelOutsideTheClassesIsAnErrorNamingThePosition() throws {
        let loss = SoftmaxCrossEntropy()
        #expect {
            try loss(logits: Tensor(zeros: [1, 2, 2, 3]), labels: [0, 1, 7, 2])
        } throws: { error in
            (error as? EngineError)?.localizedDescription.contains("label 7 at position 2") == true
        }
    }
}
