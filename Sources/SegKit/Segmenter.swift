import SegKitEngine

/// Runs a segmenter on images of any size by `SizeRule`: an H x W image gives
/// an H x W map of class scores whatever the encoder's stride and padding. This
/// lives outside the Keras graph: Keras runs the saved model at the sizes the
/// rule pads to.
public struct Segmenter {
    public let graph: Graph
    /// The encoder's total stride: the grid tiles of `tiledScores` keep.
    public let totalStride: Int
    public let sizeRule: SizeRule

    /// - Parameters:
    ///   - totalStride: the period of the graph's alignment (`BuiltSegmenter.totalStride`).
    ///   - referenceSize: a size the decoder aligns at (nil: multiples of `totalStride`).
    public init(graph: Graph, totalStride: Int, referenceSize: (height: Int, width: Int)? = nil) {
        self.graph = graph
        self.totalStride = max(1, totalStride)
        self.sizeRule = SizeRule(graph: graph, period: max(1, totalStride), reference: referenceSize ?? (0, 0))
    }

    /// Class scores (N, H, W, K) for images `x` (N, H, W, C).
    ///
    /// - Throws: `EngineError` from the graph, or when no padded size suits it.
    public func scores(_ x: Tensor) throws -> Tensor {
        let (_, h, w, _) = x.nhwc
        let p = try sizeRule.placement(height: h, width: w)
        let padded = p.isIdentity ? x : reflectPad(x, top: p.padTop, bottom: p.padBottom, left: p.padLeft, right: p.padRight)
        let y = try graph.forward([padded]).outputs(of: graph)[0]
        guard y.rank == 4, y.shape[1] >= p.outputTop + h, y.shape[2] >= p.outputLeft + w else {
            throw EngineError.shapeMismatch(op: "segmenter", expected: "an output covering the \(h)x\(w) image", found: "\(y.shape)")
        }
        if y.shape[1] == h && y.shape[2] == w { return y }
        return crop(y, y: p.outputTop, x: p.outputLeft, height: h, width: w)
    }
}

/// The index `i` reflected into 0..<size without repeating the edge (numpy's
/// "reflect"), folding back and forth for positions far outside.
func mirrorIndex(_ i: Int, _ size: Int) -> Int {
    guard size > 1 else { return 0 }
    let period = 2 * (size - 1)
    var m = i % period
    if m < 0 { m += period }
    return m < size ? m : period - m
}

/// Mirror padding without repeating the edge (numpy's "reflect"); indices fold
/// back and forth for pads longer than the image.
func reflectPad(_ x: Tensor, top: Int, bottom: Int, left: Int, right: Int) -> Tensor {
    let (n, h, w, c) = x.nhwc
    let (oh, ow) = (h + top + bottom, w + left + right)
    var y = Tensor(zeros: [n, oh, ow, c])
    for b in 0..<n {
        for r in 0..<oh {
            let sr = mirrorIndex(r - top, h)
            for col in 0..<ow {
                let sc = mirrorIndex(col - left, w)
                let src = ((b * h + sr) * w + sc) * c, dst = ((b * oh + r) * ow + col) * c
                for k in 0..<c { y.scalars[dst + k] = x.scalars[src + k] }
            }
        }
    }
    return y
}

extension Segmenter {
    /// U-Net's overlap-tile strategy for images larger than `tile`: the image is
    /// mirror-padded by `margin` on every side, cut into `tile`-sized windows that
    /// overlap by 2·`margin`, each window is segmented by `scores` and only its
    /// centre (away from its own borders) is kept. Tiles and margins are rounded
    /// up to multiples of the total stride, so every tile sits on the same grid as
    /// the whole image: with a margin of at least the receptive-field radius the
    /// result equals segmenting the whole image at once.
    public func tiledScores(_ x: Tensor, tile: Int, margin: Int) throws -> Tensor {
        let (n, h, w, _) = x.nhwc
        let s = totalStride
        let m = (margin + s - 1) / s * s
        let t = max((tile + s - 1) / s * s, 2 * m + s)
        let core = t - 2 * m
        let rows = (h + core - 1) / core, cols = (w + core - 1) / core
        let padded = reflectPad(x, top: m, bottom: rows * core - h + m, left: m, right: cols * core - w + m)
        var out: Tensor?
        for r in 0..<rows {
            for c in 0..<cols {
                let (y0, x0) = (r * core, c * core)
                let y = try scores(crop(padded, y: y0, x: x0, height: t, width: t))
                let k = y.shape[3]
                if out == nil { out = Tensor(zeros: [n, h, w, k]) }
                for b in 0..<n {
                    for yy in 0..<min(core, h - y0) {
                        let src = ((b * t + m + yy) * t + m) * k
                        let dst = ((b * h + y0 + yy) * w + x0) * k
                        let len = min(core, w - x0) * k
                        out!.scalars.replaceSubrange(dst..<(dst + len), with: y.scalars[src..<(src + len)])
                    }
                }
            }
        }
        return out!
    }
}

/// A window of an NHWC tensor (the caller keeps it inside the tensor).
func crop(_ x: Tensor, y: Int, x x0: Int, height: Int, width: Int) -> Tensor {
    let (n, h, w, c) = x.nhwc
    var out = [Float]()
    out.reserveCapacity(n * height * width * c)
    for b in 0..<n {
        for r in y..<(y + height) {
            let start = ((b * h + r) * w + x0) * c
            out += x.scalars[start..<(start + width * c)]
        }
    }
    return Tensor.assembled(shape: [n, height, width, c], scalars: out)
}
