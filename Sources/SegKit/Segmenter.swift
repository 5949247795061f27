import SegKitEngine

/// Runs a segmenter on images of any size by `SizeRule`: an H x W image gives
/// an H x W map of class scores whatever the encoder's stride and padding. This
/// lives outside the Keras graph: Keras runs the saved model at the sizes the
/// rule pads to.
public struct Segmenter {
    /// The segmenter network: images (N, H, W, C) in, class scores (N, H', W', K) out at stride 1.
    public let graph: Graph
    /// The encoder's total stride: the grid tiles of `tiledScores` keep.
    public let totalStride: Int
    /// Where each image size goes in and comes out (`SizeRule`), remembered across calls.
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
        return try p.imageScores(graph.forward([p.padded(x)]).outputs(of: graph)[0], height: h, width: w)
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
    /// mirror-padded by `margin` (rounded up to the total stride) on every side,
    /// placed by the size rule as a whole, and the graph is run on windows of that
    /// input which start on the stride grid, keeping of each window's output only
    /// the part at least `margin` away from its borders. With a margin of at
    /// least the receptive-field radius the result equals `scores` of the
    /// margin-padded image, cropped back: no window border and no grid phase shows.
    /// Images `x` (N, H, W, C) give scores (N, H, W, K); `tile` and `margin` are in pixels.
    /// Overlap-tile as in Ronneberger et al., U-Net (2015), §2.
    ///
    /// - Throws: `EngineError` from the graph or the size rule.
    public func tiledScores(_ x: Tensor, tile: Int, margin: Int) throws -> Tensor {
        let (n, h, w, _) = x.nhwc
        let period = sizeRule.period
        let m = (max(margin, 0) + period - 1) / period * period
        let framed = reflectPad(x, top: m, bottom: m, left: m, right: m)
        let p = try sizeRule.placement(height: h + 2 * m, width: w + 2 * m)
        let whole = p.padded(framed)
        /// Per axis: window length, kept length per window, window starts, and where the image's first pixel is in the output.
        func plan(_ size: Int, _ image: Int, _ outputLength: Int, _ outputStart: Int) -> (length: Int, core: Int, starts: [Int], first: Int) {
            let lost = size - outputLength      // input pixels a run loses (valid margins), the same for every admissible size
            var length = size % period
            // The kept core is at least half a tile: a margin near the tile size
            // would otherwise leave cores of a few pixels and tens of thousands of windows.
            while length < max(tile, 2 * m + lost + max(period, tile / 2)) { length += period }
            let core = (length - lost - 2 * m) / period * period
            let first = outputStart + m
            var starts = [(first - m) / period * period]
            while starts.last! + m + core < first + image { starts.append(starts.last! + core) }
            return (length, core, starts, first)
        }
        let rows = plan(whole.shape[1], h, p.outputHeight, p.outputTop)
        let cols = plan(whole.shape[2], w, p.outputWidth, p.outputLeft)
        // Room for the last windows (their extra pixels only reach outputs that are not kept).
        let input = reflectPad(whole, top: 0, bottom: max(0, rows.starts.last! + rows.length - whole.shape[1]),
                               left: 0, right: max(0, cols.starts.last! + cols.length - whole.shape[2]))
        var out: Tensor?
        for r0 in rows.starts {
            for c0 in cols.starts {
                let y = try graph.forward([crop(input, y: r0, x: c0, height: rows.length, width: cols.length)]).outputs(of: graph)[0]
                let k = y.shape[3]
                if out == nil { out = Tensor(zeros: [n, h, w, k]) }
                // Output pixel j of a window is pixel r0 + j of the whole input's output.
                let rowRange = max(rows.first, r0 + m)..<min(rows.first + h, r0 + m + rows.core)
                let colRange = max(cols.first, c0 + m)..<min(cols.first + w, c0 + m + cols.core)
                guard !rowRange.isEmpty, !colRange.isEmpty else { continue }
                for b in 0..<n {
                    for r in rowRange {
                        let src = ((b * y.shape[1] + r - r0) * y.shape[2] + colRange.lowerBound - c0) * k
                        let dst = ((b * h + r - rows.first) * w + colRange.lowerBound - cols.first) * k
                        let len = colRange.count * k
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
