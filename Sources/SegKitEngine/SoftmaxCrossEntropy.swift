import CKernels
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
        // Per worker: the weighted loss sum and the counted pixels, added in worker order.
        let parts = min(Parallel.workers, max(1, positions / 4096))
        var sums = [Double](repeating: 0, count: parts), counts = [Int](repeating: 0, count: parts)
        let ignore = ignoreLabel
        var gradient = Tensor.uninitialized(shape: logits.shape) { g in
            let out = UncheckedSendable(g.baseAddress!)
            logits.scalars.withUnsafeBufferPointer { z in
                labels.withUnsafeBufferPointer { l in
                    withOptional(pixelWeights) { pw in
                        withOptional(classWeights) { cw in
                            sums.withUnsafeMutableBufferPointer { sp in
                                counts.withUnsafeMutableBufferPointer { cp in
                                    let (zz, ll, pwp, cwp) = (UncheckedSendable(z.baseAddress!), UncheckedSendable(l.baseAddress!), UncheckedSendable(pw), UncheckedSendable(cw))
                                    let (ss, cc) = (UncheckedSendable(sp), UncheckedSendable(cp))
                                    Parallel.forEachRange(parts) { workers in
                                        for w in workers {
                                            let first = positions * w / parts, last = positions * (w + 1) / parts
                                            var counted = 0
                                            ss.value[w] = segkit_softmax_cross_entropy(
                                                zz.value + first * k, ll.value + first, last - first, Int32(k),
                                                ignore ?? 0, ignore == nil ? 0 : 1, pwp.value.map { $0 + first }, cwp.value,
                                                out.value + first * k, &counted)
                                            cc.value[w] = counted
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let counted = counts.reduce(0, +)
        let totalLoss = sums.reduce(0, +)
        // The mean over counted positions.
        let scale = counted > 0 ? 1 / Float(counted) : 0
        gradient.scalars.withUnsafeMutableBufferPointer { g in
            let gg = UncheckedSendable(g)
            Parallel.forEachRange(g.count, minimumPerWorker: 1 << 16) { r in for i in r { gg.value[i] *= scale } }
        }
        return (counted > 0 ? Float(totalLoss / Double(counted)) : 0, gradient)
    }
}

private func withOptional<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}
