import SegKitSupport
import Foundation
import SegKitEngine

/// Random crops served from the frozen-encoder feature cache (`--crop` without
/// other augmentation): the frozen part runs once on each whole image, and a
/// step's crop takes the matching window of every cached map instead of running
/// the encoder on the crop. Crops start where every cached map's grid lines up
/// with the crop's (a multiple of their strides, through `SizeRule`'s
/// placements), so window pixel j is the crop's feature j. The windows see the
/// whole image around the crop, where running the encoder on the crop alone
/// would see its padding: the two agree away from the crop's border, by the
/// receptive-field radius.
struct CachedCrops {
    let crop: (height: Int, width: Int)
    let nodes: [Int]
    /// Per node at the crop's size: its map's (rows, cols).
    let windowSize: [Int: (rows: Int, cols: Int)]
    /// Per image size (height << 32 | width): per axis, the crop origins allowed
    /// and for each the per-node window origin.
    private var origins: [Int: (rows: [(Int, [Int: Int])], cols: [(Int, [Int: Int])])] = [:]

    /// Why crops cannot come from the cache.
    struct Obstacle: SegKitError {
        let message: String
        var errorDescription: String? { message }
    }

    /// - Throws: `Obstacle` saying why (an image smaller than the crop, a cached
    ///   map not on an integer grid, no aligned origin); `EngineError` from the geometry.
    init(graph: Graph, runner: Segmenter, nodes: [Int], data: any LabelledImages, crop: (height: Int, width: Int)) throws {
        self.crop = crop
        self.nodes = nodes
        let pc = try runner.sizeRule.placement(height: crop.height, width: crop.width)
        let gc = try graph.geometry(height: crop.height + pc.padTop + pc.padBottom, width: crop.width + pc.padLeft + pc.padRight)
        var sizes: [Int: (Int, Int)] = [:]
        for n in nodes {
            guard let g = gc[n], g.integerStride != nil else {
                throw Obstacle(message: "the cached map '\(graph.nodes[n].name)' is on no integer grid")
            }
            sizes[n] = (g.rows.size, g.cols.size)
        }
        windowSize = sizes.mapValues { (rows: $0.0, cols: $0.1) }
        for (h, w, _) in data.sizeCounts {
            guard h >= crop.height, w >= crop.width else {
                throw Obstacle(message: "an image of \(w)x\(h) is smaller than the \(crop.width)x\(crop.height) crop")
            }
            let pf = try runner.sizeRule.placement(height: h, width: w)
            let gf = try graph.geometry(height: h + pf.padTop + pf.padBottom, width: w + pf.padLeft + pf.padRight)
            // Origins up to a period outside the image are allowed too (the window
            // then covers some of the mirror padding, whose mask is ignored), so an
            // image only a little larger than the crop still has aligned crops.
            let p = runner.sizeRule.period
            func axis(_ a: Int, length: Int, window: Int, padFull: Int, padCrop: Int) -> [(Int, [Int: Int])] {
                ((1 - p)...(length - window + p - 1)).compactMap { o -> (Int, [Int: Int])? in
                    var at: [Int: Int] = [:]
                    for n in nodes {
                        let c = gc[n]![a], f = gf[n]![a]
                        // Crop map pixel j sits at full map pixel j + shift.
                        let shift = (c.offset - f.offset + Double(o + padFull - padCrop)) / c.stride
                        guard shift == shift.rounded(), shift >= 0, Int(shift) + c.size <= f.size else { return nil }
                        at[n] = Int(shift)
                    }
                    return (o, at)
                }
            }
            let rows = axis(0, length: h, window: crop.height, padFull: pf.padTop, padCrop: pc.padTop)
            let cols = axis(1, length: w, window: crop.width, padFull: pf.padLeft, padCrop: pc.padLeft)
            guard !rows.isEmpty, !cols.isEmpty else { throw Obstacle(message: "no crop of a \(w)x\(h) image lines up with the cached maps") }
            origins[h << 32 | w] = (rows, cols)
        }
    }

    /// A random aligned crop of an image of `size`: its origin in the image (up
    /// to a period outside it) and each node's window origin.
    func choose(size: (height: Int, width: Int), rng g: inout SeededGenerator) -> (row: Int, col: Int, windows: [Int: (Int, Int)]) {
        let o = origins[size.height << 32 | size.width]!
        let r = o.rows[Int.random(in: 0..<o.rows.count, using: &g)], c = o.cols[Int.random(in: 0..<o.cols.count, using: &g)]
        return (r.0, c.0, Dictionary(uniqueKeysWithValues: nodes.map { ($0, (r.1[$0]!, c.1[$0]!)) }))
    }
}
