import Foundation
import Testing
import SegKitEngine
@testable import SegKit

@Suite struct LossTests {
    @Test(arguments: [SegmentationLoss.dice, .ceDice, .weightedCE])
    func gradientsMatchFiniteDifferences(_ loss: SegmentationLoss) throws {
        var rng = SeededGenerator(seed: 5)
        let logits = Tensor.randomNormal(shape: [2, 3, 3, 4], using: &rng)
        var labels = (0..<18).map { _ in Int32.random(in: 0..<4, using: &rng) }
        labels[3] = 255
        let weights: [Float] = [1, 2, 0.5, 1.5]
        let (_, g) = try loss.evaluate(logits: logits, labels: labels, classWeights: weights, pixelWeights: nil, ignoreLabel: 255)
        let h: Float = 1e-2
        for i in stride(from: 0, to: logits.count, by: 3) {
            var plus = logits, minus = logits
            plus.scalars[i] += h
            minus.scalars[i] -= h
            let numeric = (try loss.evaluate(logits: plus, labels: labels, classWeights: weights, pixelWeights: nil, ignoreLabel: 255).loss
                - loss.evaluate(logits: minus, labels: labels, classWeights: weights, pixelWeights: nil, ignoreLabel: 255).loss) / (2 * h)
            #expect(abs(numeric - g.scalars[i]) < 2e-3, "\(loss) logit \(i): \(numeric) vs \(g.scalars[i])")
        }
    }

    @Test func perfectPredictionsHaveNearZeroDice() throws {
        let logits = try Tensor(shape: [1, 1, 2, 2], scalars: [20, -20, -20, 20])
        let (l, _) = try softDice(logits: logits, labels: [0, 1], ignoreLabel: nil)
        #expect(l < 1e-6)
    }

    @Test func autoClassWeightsBalanceFrequencies() {
        // 6 pixels of class 0, 2 of class 1, none of class 2.
        let w = balancedClassWeights([0, 0, 0, 0, 0, 0, 1, 1], classes: 3, ignoreLabel: nil)
        #expect(w == [8.0 / 12.0, 2, 1])
    }

    @Test func borderWeightMapHandWorked() {
        // Two one-pixel objects at columns 0 and 4 of a 1x5 strip; background between them.
        let mask: [Int32] = [1, 9, 9, 9, 1]
        let w = borderWeightMap(mask: mask, height: 1, width: 5, background: 9, classWeights: [Float](repeating: 1, count: 10),
                                w0: 10, sigma: 5)
        // Column 2: d1 = 2, d2 = 2 ⇒ 1 + 10·exp(−16/50). Column 1: d1 = 1, d2 = 3 ⇒ the same sum 4.
        let expected = 1 + 10 * Float(Foundation.exp(-16.0 / 50.0))
        #expect(abs(w[2] - expected) < 1e-5 && abs(w[1] - expected) < 1e-5)
        #expect(w[0] == 1 && w[4] == 1, "object pixels get the class weight only")
        // A single object: no second object, no border term.
        #expect(borderWeightMap(mask: [1, 9, 9], height: 1, width: 3, background: 9, classWeights: [Float](repeating: 1, count: 10),
                                w0: 10, sigma: 5) == [1, 1, 1])
    }

    @Test func voidPixelsAndCropPaddingAreNoObjectsOfTheBorderMap() {
        // One object at column 0, void (255) at column 4: counted as a second object, the
        // background between would get a border term; it is no object, so there is none.
        let ones = [Float](repeating: 1, count: 10)
        #expect(borderWeightMap(mask: [1, 9, 9, 9, 255], height: 1, width: 5, background: 9, classWeights: ones, w0: 10, sigma: 5,
                                ignoreLabel: 255) == [1, 1, 1, 1, 1])
        #expect(borderWeightMap(mask: [1, 9, 9, 9, -1], height: 1, width: 5, background: 9, classWeights: ones, w0: 10, sigma: 5,
                                ignoreLabel: -1)[2] == 1, "crop padding (−1)")
    }

    @Test func distanceTransformIsEuclidean() {
        let d = distanceToPixels([0], height: 4, width: 4)
        #expect(abs(d[15] - Float(18).squareRoot()) < 1e-5)
        #expect(d[1] == 1 && d[5] == Float(2).squareRoot())
    }
}
