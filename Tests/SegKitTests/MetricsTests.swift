import Testing
@testable import SegKit

@Suite struct MetricsTests {
    /// Truth/prediction over 10 pixels, 3 classes, worked by hand:
    ///   truth 0 0 0 0 1 1 1 2 2 2
    ///   pred  0 0 0 1 1 1 2 2 2 0
    func handWorked() -> ConfusionMatrix {
        var m = ConfusionMatrix(classes: 3)
        let truth = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2], pred = [0, 0, 0, 1, 1, 1, 2, 2, 2, 0]
        for (t, p) in zip(truth, pred) { m.add(truth: t, predicted: p) }
        return m
    }

    @Test func handComputedFigures() {
        let m = handWorked()
        #expect(m.counts == [[3, 1, 0], [0, 2, 1], [1, 0, 2]])
        #expect(m.pixelAccuracy == 0.7)
        // IoU: class 0 = 3/(4+4−3) = 0.6; class 1 = 2/(3+3−2) = 0.5; class 2 = 2/(3+3−2) = 0.5.
        #expect(m.perClassIoU == [0.6, 0.5, 0.5])
        #expect(abs(m.meanIoU - 1.6 / 3) < 1e-12)
        #expect(m.meanIoU(excluding: 0) == 0.5)
        #expect(m.perClassDice == [0.75, 2.0 / 3.0, 2.0 / 3.0])
        #expect(abs(m.meanAccuracy - (0.75 + 2.0 / 3 + 2.0 / 3) / 3) < 1e-12)
        #expect(abs(m.frequencyWeightedIoU - (0.4 * 0.6 + 0.3 * 0.5 + 0.3 * 0.5)) < 1e-12)
    }

    @Test func aClassAbsentFromTruthAndPredictionIsNilNotNaN() {
        var m = ConfusionMatrix(classes: 3)
        m.add(truth: 0, predicted: 0, count: 5)
        m.add(truth: 1, predicted: 0, count: 5)
        #expect(m.perClassIoU[2] == nil)
        #expect(m.perClassIoU[1] == 0)
        #expect(m.meanIoU == 0.25)
    }

    @Test func scoresAreArgmaxedAndIgnoredLabelsSkipped() {
        var m = ConfusionMatrix(classes: 2, ignoreLabel: 255)
        m.add(scores: [0.9, 0.1, 0.2, 0.8, 5, 0], labels: [0, 0, 255])
        #expect(m.counts == [[1, 1], [0, 0]])
    }
}
