import Foundation
import SegKitEngine

/// The training losses, each giving the loss and dL/d(logits).
public enum SegmentationLoss: String, Sendable, CaseIterable {
    /// Softmax cross-entropy per pixel (optionally weighted by a pixel weight map).
    case ce
    /// Cross-entropy with per-class weights (`--class-weights auto|LIST`).
    case weightedCE = "weighted-ce"
    /// Soft Dice: 1 − mean over classes of (2Σpy + 1) / (Σp + Σy + 1), p = softmax
    /// (Milletari et al., V-Net, 2016, with Σp for their Σp² and smoothed by 1).
    case dice
    /// Cross-entropy (class-weighted when weights are given) + soft Dice, summed.
    case ceDice = "ce+dice"

    /// The batch's loss and dL/d(logits) (the shape of `logits`) for `logits` (N, H, W, K) and one
    /// label per pixel (N·H·W). `classWeights` (K) weight `weightedCE` and `ceDice`'s cross-entropy;
    /// `pixelWeights` (N·H·W, e.g. `borderWeightMap`) weight the cross-entropy terms only; pixels
    /// labelled `ignoreLabel` count nowhere. The cross-entropy is `SoftmaxCrossEntropy`'s, Keras's
    /// sum-over-batch-size reduction.
    ///
    /// - Throws: `EngineError` when labels, weights and logits disagree in size or a label is no
    ///   class id.
    public func evaluate(logits: Tensor, labels: [Int32], classWeights: [Float]?, pixelWeights: [Float]?,
                         ignoreLabel: Int32?) throws -> (loss: Float, gradient: Tensor) {
        switch self {
        case .ce:
            return try SoftmaxCrossEntropy(ignoreLabel: ignoreLabel)(logits: logits, labels: labels, pixelWeights: pixelWeights)
        case .weightedCE:
            return try SoftmaxCrossEntropy(classWeights: classWeights, ignoreLabel: ignoreLabel)(logits: logits, labels: labels, pixelWeights: pixelWeights)
        case .dice:
            return try softDice(logits: logits, labels: labels, ignoreLabel: ignoreLabel)
        case .ceDice:
            let (l1, g1) = try SoftmaxCrossEntropy(classWeights: classWeights, ignoreLabel: ignoreLabel)(logits: logits, labels: labels, pixelWeights: pixelWeights)
            var (l2, g2) = try softDice(logits: logits, labels: labels, ignoreLabel: ignoreLabel)
            g2.scalars.withUnsafeMutableBufferPointer { d in g1.scalars.withUnsafeBufferPointer { s in for i in 0..<d.count { d[i] += s[i] } } }
            l2 += l1
            return (l2, g2)
        }
    }
}

/// Soft Dice loss over the batch, smoothed by 1: L = 1 − (1/K) Σ_c (2I_c + 1)/(P_c + Y_c + 1),
/// I_c = Σ p_c·y_c, P_c = Σ p_c, Y_c = Σ y_c over counted pixels.
/// dL/dp_c = −(1/K)·(2y_c·D_c − N_c)/D_c² with N_c = 2I_c + 1, D_c = P_c + Y_c + 1,
/// then through the softmax: dL/dz = p ⊙ (dL/dp − Σ_c p_c dL/dp_c).
func softDice(logits: Tensor, labels: [Int32], ignoreLabel: Int32?) throws -> (loss: Float, gradient: Tensor) {
    guard let k = logits.shape.last, logits.count / k == labels.count else {
        throw EngineError.shapeMismatch(op: "dice", expected: "one label per logit row", found: "\(labels.count) labels for \(logits.shape)")
    }
    var p = logits
    p.scalars.withUnsafeMutableBufferPointer { softmaxInPlace($0, width: k) }
    var inter = [Double](repeating: 0, count: k), psum = inter, ysum = inter
    for (i, label) in labels.enumerated() where label != ignoreLabel {
        guard label >= 0, Int(label) < k else {
            throw EngineError.invalidArgument(op: "dice", message: "label \(label) at position \(i) is not a class id in 0..<\(k)")
        }
        for c in 0..<k { psum[c] += Double(p.scalars[i * k + c]) }
        ysum[Int(label)] += 1
        inter[Int(label)] += Double(p.scalars[i * k + Int(label)])
    }
    let numer = (0..<k).map { 2 * inter[$0] + 1 }, denom = (0..<k).map { psum[$0] + ysum[$0] + 1 }
    let loss = 1 - (0..<k).reduce(0) { $0 + numer[$1] / denom[$1] } / Double(k)
    var grad = Tensor(zeros: logits.shape)
    for (i, label) in labels.enumerated() where label != ignoreLabel {
        var dp = [Double](repeating: 0, count: k)
        for c in 0..<k {
            let y: Double = Int(label) == c ? 1 : 0
            dp[c] = -(2 * y * denom[c] - numer[c]) / (denom[c] * denom[c]) / Double(k)
        }
        var dot = 0.0
        for c in 0..<k { dot += Double(p.scalars[i * k + c]) * dp[c] }
        for c in 0..<k { grad.scalars[i * k + c] = Float(Double(p.scalars[i * k + c]) * (dp[c] - dot)) }
    }
    return (Float(loss), grad)
}

func softmaxInPlace(_ v: UnsafeMutableBufferPointer<Float>, width: Int) {
    var row = 0
    while row < v.count {
        var m = -Float.infinity
        for c in 0..<width { m = max(m, v[row + c]) }
        var s: Float = 0
        for c in 0..<width { v[row + c] = Foundation.exp(v[row + c] - m); s += v[row + c] }
        for c in 0..<width { v[row + c] /= s }
        row += width
    }
}

/// "auto" class weights: inverse class frequency over the training masks,
/// scaled so the pixel-weighted mean weight is 1; absent classes get weight 1.
public func balancedClassWeights(_ masks: [Int32], classes: Int, ignoreLabel: Int32?) -> [Float] {
    var counts = [Int](repeating: 0, count: classes)
    countClasses(masks, into: &counts, ignoreLabel: ignoreLabel)
    return balancedClassWeights(counts: counts)
}

/// Adds the pixels of each class in `masks` to `counts` (ignored and out-of-range labels skipped).
public func countClasses(_ masks: [Int32], into counts: inout [Int], ignoreLabel: Int32?) {
    for m in masks where m != ignoreLabel && m >= 0 && Int(m) < counts.count { counts[Int(m)] += 1 }
}

/// "auto" class weights from per-class pixel counts (a set read mask by mask).
public func balancedClassWeights(counts: [Int]) -> [Float] {
    let classes = counts.count
    let present = counts.filter { $0 > 0 }.count
    let total = counts.reduce(0, +)
    guard present > 0 else { return [Float](repeating: 1, count: classes) }
    return counts.map { $0 == 0 ? 1 : Float(total) / Float(present * $0) }
}

/// U-Net's weight map (Ronneberger et al., eq. 2) for one mask:
/// w(x) = w_c(x) + w0·exp(−(d1(x) + d2(x))² / 2σ²) on background pixels, where d1
/// and d2 are the Euclidean distances to the nearest and second-nearest object
/// (4-connected component of pixels that are neither background nor
/// `ignoreLabel`: void pixels and crop padding are no objects); object pixels
/// get w_c only. The map already holds the class weights w_c: a loss using it
/// must not weight by class again.
public func borderWeightMap(mask: [Int32], height: Int, width: Int, background: Int32, classWeights: [Float],
                            w0: Float, sigma: Float, ignoreLabel: Int32? = nil) -> [Float] {
    let objects = connectedComponents(mask: mask, height: height, width: width, background: background, ignoreLabel: ignoreLabel)
    var d1 = [Float](repeating: .infinity, count: mask.count), d2 = d1
    for object in objects {
        let d = distanceToPixels(object, height: height, width: width)
        for i in 0..<mask.count {
            if d[i] < d1[i] { d2[i] = d1[i]; d1[i] = d[i] } else if d[i] < d2[i] { d2[i] = d[i] }
        }
    }
    return (0..<mask.count).map { i in
        let wc = Int(mask[i]) < classWeights.count && mask[i] >= 0 ? classWeights[Int(mask[i])] : 1
        guard mask[i] == background, d2[i].isFinite else { return wc }
        let s = d1[i] + d2[i]
        return wc + w0 * Foundation.exp(-(s * s) / (2 * sigma * sigma))
    }
}

/// 4-connected components of pixels that are neither background nor `ignoreLabel`, as lists of pixel indices.
func connectedComponents(mask: [Int32], height: Int, width: Int, background: Int32, ignoreLabel: Int32? = nil) -> [[Int]] {
    var seen = [Bool](repeating: false, count: mask.count)
    // Background and ignored pixels are never part of an object.
    for i in 0..<mask.count where mask[i] == background || mask[i] == ignoreLabel { seen[i] = true }
    var components: [[Int]] = []
    for start in 0..<mask.count where !seen[start] {
        var stack = [start], pixels: [Int] = []
        seen[start] = true
        while let p = stack.popLast() {
            pixels.append(p)
            let (r, c) = (p / width, p % width)
            for (nr, nc) in [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)] where nr >= 0 && nr < height && nc >= 0 && nc < width {
                let q = nr * width + nc
                if !seen[q] { seen[q] = true; stack.append(q) }
            }
        }
        components.append(pixels)
    }
    return components
}

/// Exact Euclidean distance from every pixel to the nearest of `pixels`
/// (Felzenszwalb & Huttenlocher's separable transform: two 1-D passes).
func distanceToPixels(_ pixels: [Int], height: Int, width: Int) -> [Float] {
    let inf: Float = 1e20
    var f = [Float](repeating: inf, count: height * width)
    for p in pixels { f[p] = 0 }
    func transform1D(_ g: [Float]) -> [Float] {
        let n = g.count
        var d = [Float](repeating: 0, count: n), v = [Int](repeating: 0, count: n), z = [Float](repeating: 0, count: n + 1)
        var k = 0
        z[0] = -inf; z[1] = inf
        for q in 1..<max(n, 1) {
            var s: Float
            repeat {
                s = ((g[q] + Float(q * q)) - (g[v[k]] + Float(v[k] * v[k]))) / Float(2 * q - 2 * v[k])
                if s <= z[k] { k -= 1 } else { break }
            } while k >= 0
            k += 1
            v[k] = q; z[k] = s; z[k + 1] = inf
        }
        k = 0
        for q in 0..<n {
            while z[k + 1] < Float(q) { k += 1 }
            d[q] = Float((q - v[k]) * (q - v[k])) + g[v[k]]
        }
        return d
    }
    for c in 0..<width {
        let col = transform1D((0..<height).map { f[$0 * width + c] })
        for r in 0..<height { f[r * width + c] = col[r] }
    }
    for r in 0..<height {
        let row = transform1D(Array(f[(r * width)..<((r + 1) * width)]))
        for c in 0..<width { f[r * width + c] = row[c] }
    }
    return f.map { $0.squareRoot() }
}
