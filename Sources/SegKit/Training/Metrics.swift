/// Segmentation metrics from a confusion matrix (rows: truth, columns: prediction).
/// A class absent from both truth and prediction has no IoU (nil) and is left
/// out of the means, so no metric is ever NaN. The metrics are those of Long et
/// al., "Fully Convolutional Networks for Semantic Segmentation" (2015), §5.
public struct ConfusionMatrix: Equatable, Sendable {
    /// K: the matrix is K x K.
    public let classes: Int
    /// counts[t][p]: pixels of true class t predicted as class p.
    public private(set) var counts: [[Int]]
    /// Pixels with this label are not counted.
    public var ignoreLabel: Int32?

    /// An empty K x K matrix.
    public init(classes: Int, ignoreLabel: Int32? = nil) {
        self.classes = classes
        self.counts = Array(repeating: Array(repeating: 0, count: classes), count: classes)
        self.ignoreLabel = ignoreLabel
    }

    /// Adds the argmax of `scores` (…, K) against `labels` (one per position; a label
    /// other than `ignoreLabel` must be a class id, 0..<K).
    public mutating func add(scores: [Float], labels: [Int32]) {
        let k = classes
        for p in 0..<labels.count where labels[p] != ignoreLabel {
            var best = 0
            var bestScore = scores[p * k]
            for c in 1..<k where scores[p * k + c] > bestScore { best = c; bestScore = scores[p * k + c] }
            counts[Int(labels[p])][best] += 1
        }
    }

    /// Adds `count` pixels of class `truth` predicted as `predicted`.
    public mutating func add(truth: Int, predicted: Int, count: Int = 1) { counts[truth][predicted] += count }

    var total: Int { counts.joined().reduce(0, +) }
    func truth(_ c: Int) -> Int { counts[c].reduce(0, +) }
    func predicted(_ c: Int) -> Int { counts.reduce(0) { $0 + $1[c] } }

    /// Σᵢ nᵢᵢ / Σᵢ tᵢ: the fraction of counted pixels classified right (0 when none is counted).
    public var pixelAccuracy: Double {
        let t = total
        return t == 0 ? 0 : Double((0..<classes).reduce(0) { $0 + counts[$1][$1] }) / Double(t)
    }

    /// Per-class recall, nil for classes absent from the truth.
    public var classAccuracy: [Double?] {
        (0..<classes).map { c in truth(c) == 0 ? nil : Double(counts[c][c]) / Double(truth(c)) }
    }

    /// (1/n) Σᵢ nᵢᵢ / tᵢ: per-class recall averaged over the n classes present in the truth.
    public var meanAccuracy: Double { mean(classAccuracy) }

    /// TP / (TP + FP + FN); nil when the class is in neither truth nor prediction.
    public var perClassIoU: [Double?] {
        (0..<classes).map { c in
            let union = truth(c) + predicted(c) - counts[c][c]
            return union == 0 ? nil : Double(counts[c][c]) / Double(union)
        }
    }

    /// 2TP / (2TP + FP + FN).
    public var perClassDice: [Double?] {
        (0..<classes).map { c in
            let denom = truth(c) + predicted(c)
            return denom == 0 ? nil : 2 * Double(counts[c][c]) / Double(denom)
        }
    }

    /// Per-class IoU averaged over the classes that have one (FCN's mean IU).
    public var meanIoU: Double { mean(perClassIoU) }

    /// mIoU over every class but `background`.
    public func meanIoU(excluding background: Int) -> Double {
        mean(perClassIoU.enumerated().filter { $0.offset != background }.map(\.element))
    }

    /// Σ (truth frequency × IoU) over classes present in the truth.
    public var frequencyWeightedIoU: Double {
        let t = total
        guard t > 0 else { return 0 }
        return (0..<classes).reduce(0) { sum, c in sum + Double(truth(c)) / Double(t) * (perClassIoU[c] ?? 0) }
    }

    private func mean(_ values: [Double?]) -> Double {
        let present = values.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }
}
