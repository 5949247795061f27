import SegKitEngine

/// Runs a segmenter on images of any size: inputs whose height or width is not
/// a multiple of the encoder's total stride are mirror-padded (reflection, split
/// between the two sides) up to the next multiple, and the output is cropped
/// back, so an H x W image gives an H x W map. This lives outside the Keras
/// graph: Keras runs the saved model at multiples of the stride only.
public struct Segmenter {
    public let graph: Graph
    public let totalStride: Int

    public init(graph: Graph, totalStride: Int) {
        self.graph = graph
        self.totalStride = max(1, totalStride)
    }

    public func scores(_ x: Tensor) throws -> Tensor {
        let (_, h, w, _) = x.nhwc
        let s = totalStride
        let (ph, pw) = ((s - h % s) % s, (s - w % s) % s)
        let top = ph / 2, left = pw / 2
        let padded = ph == 0 && pw == 0 ? x : reflectPad(x, top: top, bottom: ph - top, left: left, right: pw - left)
        let y = try graph.forward([padded]).outputs(of: graph)[0]
        let (_, oh, ow, c) = y.nhwc
        guard oh == h + ph, ow == w + pw else {
            throw EngineError.shapeMismatch(op: "segmenter", expected: "an output the size of its \(h + ph)x\(w + pw) input",
                                            found: "\(oh)x\(ow) (a valid-padding U-Net: use tiled prediction)")
        }
        if ph == 0 && pw == 0 { return y }
        var out = Tensor(zeros: [y.shape[0], h, w, c])
        for n in 0..<y.shape[0] {
            for r in 0..<h {
                let src = ((n * oh + r + top) * ow + left) * c, dst = (n * h + r) * w * c
                out.scalars.replaceSubrange(dst..<(dst + w * c), with: y.scalars[src..<(src + w * c)])
            }
        }
        return out
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
    /// overlap by 2·`margin`, and only each window's centre (away from its own
    /// borders) is kept. Tiles and margins are rounded up to multiples of the
    /// total stride, so every tile sits on the same grid as the whole image:
    /// with a margin of at least the receptive-field radius the result equals
    /// running the whole mirror-padded image at once.
    public func tiledScores(_ x: Tensor, tile: Int, margin: Int) throws -> Tensor {
        let (n, h, w, _) = x.nhwc
        let s = totalStride
        let m = (margin + s - 1) / s * s
        let t = max((tile + s - 1) / s * s, 2 * m + s)
        let core = t - 2 * m
        let rows = (h + core - 1) / core, cols = (w + core - 1) / core
        let padded = reflectPad(x, top: m, bottom: rows * core - h + m, left: m, right: cols * core - w + m)
        let (ph, pw) = (padded.shape[1], padded.shape[2])
        var out: Tensor?
        for r in 0..<rows {
            for c in 0..<cols {
                let (y0, x0) = (r * core, c * core)
                let window = crop(padded, y: y0, x: x0, height: min(t, ph - y0), width: min(t, pw - x0))
                let y = try graph.forward([window]).outputs(of: graph)[0]
                let k = y.shape[3]
                if out == nil { out = Tensor(zeros: [n, h, w, k]) }
                for b in 0..<n {
                    for yy in 0..<min(core, h - y0) {
                        let src = ((b * y.shape[1] + m + yy) * y.shape[2] + m) * k
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
