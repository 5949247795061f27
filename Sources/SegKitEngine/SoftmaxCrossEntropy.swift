import Foundation

/// Softmax cross-entropy from logits against integer class labels, per pixel.
///
/// `logits` has classes on the last axis (N, H, W, K) or (N, K); `labels` holds
/// one class id per position. A position whose label is `ignoreLabel` does not
/// count. Each counted position i is weighted by `pixelWeights[i]` (e.g. U-Net's
/// border weight map) times `classWeights[label]`, and the loss is
///     L = Σ_counted wᵢ · (−log softmax(zᵢ)[labelᵢ]) / (number of counted positions),
/// Keras's "sum over batch size" reduction of a weighted loss.
public struct SoftmaxCrossEntropy: Sendable {
    public var classWeights: [Float]?
    public var ignoreLabel: Int32?

    public init(classWeights: [Float]? = nil, ignoreLabel: Int32? = nil) {
        self.classWeights = classWeights
        self.ignoreLabel = ignoreLabel
    }

    /// The loss and dL/d(logits).
    public func callAsFunction(
        logits: Tensor, labels: [Int32], pixelWeights: [Float]? = nil
    ) throws -> (loss: Float, gradient: Tensor) {
        guard let k = logits.shape.last, k > 0 else {
            throw EngineError.shapeMismatch(op: "cross-entropy", expected: "logits with a class axis", found: "\(logits.shape)")
        }
        let positions = logits.count / k
        guard labels.count == positions else {
            throw EngineError.shapeMismatch(op: "cross-entropy", expected: "\(positions) labels for logits \(logits.shape)", found: "\(labels.count)")
        }
        if let pixelWeights, pixelWeights.count != positions {
            throw EngineError.shapeMismatch(op: "cross-entropy", expected: "\(positions) pixel weights", found: "\(pixelWeights.count)")
        }
        if let classWeights, classWeights.count != k {
            throw EngineError.shapeMismatch(op: "cross-entropy", expected: "\(k) class weights", found: "\(classWeights.count)")
        }
        if let bad = labels.firstIndex(where: { ($0 < 0 || Int($0) >= k) && $0 != ignoreLabel }) {
            throw EngineError.invalidArgument(
                op: "cross-entropy", message: "label \(labels[bad]) at position \(bad) is not a class id in 0..<\(k)\(ignoreLabel.map { " nor the ignore label \($0)" } ?? "")")
        }
        var gradient = logits
        var total: Double = 0
        var counted = 0
        logits.scalars.withUnsafeBufferPointer { z in
            gradient.scalars.withUnsafeMutableBufferPointer { g in
                // Pass 1: softmax in place; the loss as log-sum-exp − z[label] on the
                // logits (no log of a rounded probability); dL/dz = w·(softmax − onehot).
                softmaxRows(g, width: k)
                for p in 0..<positions {
                    let row = p * k
                    let label = labels[p]
                    if label == ignoreLabel {
                        for c in 0..<k { g[row + c] = 0 }
                        continue
                    }
                    counted += 1
                    let w = (pixelWeights?[p] ?? 1) * (classWeights?[Int(label)] ?? 1)
                    var m = -Float.infinity
                    for c in 0..<k { m = max(m, z[row + c]) }
                    var sum: Double = 0
                    for c in 0..<k { sum += Foundation.exp(Double(z[row + c] - m)) }
                    total += Double(w) * (Double(m) + Foundation.log(sum) - Double(z[row + Int(label)]))
                    g[row + Int(label)] -= 1
                    for c in 0..<k { g[row + c] *= w }
                }
                // Pass 2: the mean over counted positions.
                let scale = counted > 0 ? 1 / Float(counted) : 0
                for i in 0..<g.count { g[i] *= scale }
            }
        }
        return (counted > 0 ? Float(total / Double(counted)) : 0, gradient)
    }
}
