import Foundation
import SegKitEngine

/// Where an image goes into a segmenter and where its pixels come out: the one
/// size rule of `forward`, `predict`, `eval`, `train` and `compare`.
///
/// The image is mirror-padded (reflection without repeating the edge, U-Net's
/// overlap-tile rule) to the smallest size the graph runs at whose output covers
/// every image pixel; the image's pixel (r, c) is then the output's pixel
/// (`outputTop` + r, `outputLeft` + c). For a `same`-padded encoder that is the
/// next multiple of its total stride, split between the two sides, and the output
/// is the padded input's size; a `valid`-padding encoder's output is smaller than
/// its input by its margins, so the image is padded by them.
public struct Placement: Equatable, Sendable {
    /// Mirror padding of the image, in pixels.
    public let padTop: Int, padBottom: Int, padLeft: Int, padRight: Int
    /// The image's pixel (0, 0) in the graph's output.
    public let outputTop: Int, outputLeft: Int
    /// The graph's output size for the padded image.
    public let outputHeight: Int, outputWidth: Int

    /// Whether the image goes in as it is and its pixels come out where they went in.
    public var isIdentity: Bool {
        padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0 && outputTop == 0 && outputLeft == 0
    }
}

/// Finds `Placement`s for a segmenter graph (one image input, an output at
/// stride 1) from its layers' geometry (`Graph.geometry`), remembering each
/// size it has placed.
public final class SizeRule: @unchecked Sendable {
    /// The segmenter graph the placements are for.
    public let graph: Graph
    /// Padded sizes are `reference` plus a multiple of `period` (where the
    /// decoder's fixed crops hold), per axis.
    public let period: Int
    /// A size at which the decoder's crops hold ((0, 0): any multiple of `period`); padded sizes
    /// keep its remainder modulo `period`.
    public let reference: (height: Int, width: Int)
    private var runnable: (height: Int, width: Int)?
    private var placed: [Int: (pad: Int, after: Int, outputStart: Int, outputLength: Int)] = [:]
    private let lock = NSLock()

    /// A rule for `graph`; a `period` below 1 counts as 1.
    public init(graph: Graph, period: Int = 1, reference: (height: Int, width: Int) = (0, 0)) {
        self.graph = graph
        self.period = max(1, period)
        self.reference = reference
    }

    /// The placement of an image of `height` x `width` pixels.
    ///
    /// - Throws: `EngineError.shapeMismatch` naming the image size when no padded
    ///   size up to 2,048 pixels larger runs through the graph and covers it.
    public func placement(height: Int, width: Int) throws -> Placement {
        let rows = try axis(0, length: height, other: width)
        let cols = try axis(1, length: width, other: height)
        return Placement(padTop: rows.pad, padBottom: rows.after, padLeft: cols.pad, padRight: cols.after,
                         outputTop: rows.outputStart, outputLeft: cols.outputStart,
                         outputHeight: rows.outputLength, outputWidth: cols.outputLength)
    }

    /// One axis: axes are independent (every layer SegKit runs treats rows and
    /// columns alike but for its own kernel sizes), so the other axis only needs a
    /// length at which the graph runs.
    private func axis(_ axis: Int, length: Int, other: Int) throws -> (pad: Int, after: Int, outputStart: Int, outputLength: Int) {
        let key = axis << 40 | length
        lock.lock(); defer { lock.unlock() }
        if let p = placed[key] { return p }
        let runnable = try runnableSize()
        let otherLength = axis == 0 ? runnable.width : runnable.height
        let residue = residue(axis)
        for padded in length..<(length + 2048) where padded % period == residue {
            guard let g = try? graph.geometry(height: axis == 0 ? padded : otherLength, width: axis == 0 ? otherLength : padded),
                  let out = graph.outputIndices.first.flatMap({ g[$0] })?[axis] else { continue }
            guard out.stride == 1 else {
                // Not a segmenter (a class map at a coarser stride): run as it is.
                let p = (0, 0, 0, out.size)
                placed[key] = p
                return p
            }
            // Output pixel j is centred on padded-input pixel j + δ.
            let delta = Int(out.offset.rounded(.down))
            let slack = out.size - length
            guard slack >= 0 else { continue }
            let top = delta + slack / 2
            let lowest = max(0, delta), highest = min(padded - length, delta + slack)
            guard lowest <= highest else { continue }
            let pad = min(max(top, lowest), highest)
            let p = (pad, padded - length - pad, pad - delta, out.size)
            placed[key] = p
            return p
        }
        throw EngineError.shapeMismatch(op: "segmenter", expected: "an input size the graph runs at, near \(length) pixels (\(axis == 0 ? "height" : "width"))",
                                        found: "none up to \(length + 2047)")
    }

    /// A size (height, width) the graph runs at, on the rule's grid: the
    /// reference size plus the fewest periods.
    private func runnableSize() throws -> (height: Int, width: Int) {
        if let r = runnable { return r }
        let base = (residue(0), residue(1))
        for k in 0..<(4096 / period + 1) {
            let size = (base.0 + k * period, base.1 + k * period)
            if size.0 > 0, size.1 > 0, (try? graph.geometry(height: size.0, width: size.1)) != nil {
                runnable = size
                return size
            }
        }
        throw EngineError.shapeMismatch(op: "segmenter", expected: "an input size the graph runs at", found: "none up to 4096 pixels")
    }

    private func residue(_ axis: Int) -> Int {
        ((axis == 0 ? reference.height : reference.width) % period + period) % period
    }
}

extension Placement {
    /// Images `x` (N, H, W, C) mirror-padded to the size the graph runs at.
    public func padded(_ x: Tensor) -> Tensor {
        isIdentity ? x : reflectPad(x, top: padTop, bottom: padBottom, left: padLeft, right: padRight)
    }

    /// The part of the graph's output `y` (for the padded images) that lies on the
    /// `height` x `width` images.
    ///
    /// - Throws: `EngineError.shapeMismatch` when `y` does not cover them.
    public func imageScores(_ y: Tensor, height: Int, width: Int) throws -> Tensor {
        guard y.rank == 4, y.shape[1] >= outputTop + height, y.shape[2] >= outputLeft + width else {
            throw EngineError.shapeMismatch(op: "segmenter", expected: "an output covering the \(height)x\(width) image", found: "\(y.shape)")
        }
        if y.shape[1] == height && y.shape[2] == width { return y }
        return crop(y, y: outputTop, x: outputLeft, height: height, width: width)
    }

    /// Per-pixel values of `count` images of `height` x `width` (masks, pixel
    /// weights) laid out on the output grid, `fill` where no image pixel is.
    public func outputAligned<T>(_ values: [T], count: Int, height: Int, width: Int, fill: T) -> [T] {
        if outputTop == 0 && outputLeft == 0 && outputHeight == height && outputWidth == width { return values }
        var out = [T](repeating: fill, count: count * outputHeight * outputWidth)
        for n in 0..<count {
            for r in 0..<height {
                let src = (n * height + r) * width
                let dst = (n * outputHeight + r + outputTop) * outputWidth + outputLeft
                out.replaceSubrange(dst..<(dst + width), with: values[src..<(src + width)])
            }
        }
        return out
    }
}

extension Segmenter {
    /// A runner for a graph without stored alignment (a segmenter file written
    /// before SegKit stored `reference_size`, or by hand): its period is the
    /// least common multiple of its strides, its sizes multiples of it.
    public init(inferringFrom graph: Graph) {
        let geometry = (try? graph.geometry(height: 512, width: 512)) ?? []
        self.init(graph: graph, totalStride: leastCommonStride(geometry))
    }
}
