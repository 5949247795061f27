import SegKitEngine

/// A graph a decoder is being built on, at the reference input size: new layers
/// get names no imported layer has, and two maps of one stride are joined only
/// after each is cropped to the pixels the other covers, by their offsets in the
/// input (FCN's crop layers, U-Net's crop-and-copy).
///
/// The crops are fixed (Keras's Cropping2D): they hold at every input size that
/// is the reference size plus a multiple of the encoder's total stride, the sizes
/// `SizeRule` pads to.
struct DecoderCanvas {
    let graph: Graph
    let reference: (height: Int, width: Int)

    /// `base`, or `base_1`, `base_2`, … when a node already has that name.
    func uniqueName(_ base: String) -> String {
        if graph.index(of: base) == nil { return base }
        var k = 1
        while graph.index(of: "\(base)_\(k)") != nil { k += 1 }
        return "\(base)_\(k)"
    }

    func geometry(_ node: Int) throws -> NodeGeometry { try geometry(of: [node])[0] }

    /// The geometry of `nodes`, from one pass over the graph.
    func geometry(of nodes: [Int]) throws -> [NodeGeometry] {
        let all = try graph.geometry(height: reference.height, width: reference.width)
        return try nodes.map { node in
            guard let g = all[node] else { throw EngineError.graph("node '\(graph.nodes[node].name)' is not a 4-D map") }
            return g
        }
    }

    func channels(_ node: Int) throws -> Int {
        guard let c = try graph.staticShapes()[node].last ?? nil else {
            throw EngineError.graph("node '\(graph.nodes[node].name)' has no fixed channel count")
        }
        return c
    }

    /// `a` and `b` (maps of one stride) cropped to the pixels both cover, pixel
    /// (i, j) of one on pixel (i, j) of the other. Offsets that differ by half a
    /// pixel (an even upsampling kernel) round to no shift.
    ///
    /// - Throws: `EngineError.graph` when the strides differ or the maps share no pixel.
    func aligned(_ a: Int, _ b: Int, name: String) throws -> (Int, Int) {
        let pair = try geometry(of: [a, b])
        let (ga, gb) = (pair[0], pair[1])
        var cropA = [(0, 0), (0, 0)], cropB = [(0, 0), (0, 0)]
        for axis in 0..<2 {
            let (x, y) = (ga[axis], gb[axis])
            guard abs(x.stride - y.stride) < 1e-9 else {
                throw EngineError.graph("\(name): maps at strides \(x.stride) and \(y.stride) cannot be joined")
            }
            let d = Int(((x.offset - y.offset) / x.stride).rounded(.toNearestOrEven))
            let startA = max(0, -d), startB = max(0, d)
            let length = min(x.size - startA, y.size - startB)
            guard length >= 1 else {
                throw EngineError.graph("\(name): the maps share no pixel (sizes \(x.size) and \(y.size), shift \(d))")
            }
            cropA[axis] = (startA, x.size - startA - length)
            cropB[axis] = (startB, y.size - startB - length)
        }
        func cropped(_ node: Int, _ c: [(Int, Int)], _ suffix: String) throws -> Int {
            guard c.contains(where: { $0 != (0, 0) }) else { return node }
            return try graph.add(Cropping2D(name: uniqueName("crop_\(name)_\(suffix)"), rows: c[0], cols: c[1]), inputs: [node])
        }
        return (try cropped(a, cropA, "up"), try cropped(b, cropB, "skip"))
    }

    /// The chain of stage strides a decoder climbs from `deepest` back to 1, each
    /// a whole multiple of the next (stages whose strides do not divide are skipped).
    static func ladder(from deepest: Int, stages: [EncoderStage]) -> [Int] {
        var steps: [Int] = []
        var current = deepest
        while current > 1 {
            let next = stages.map(\.stride).filter { $0 < current && current % $0 == 0 }.max() ?? 1
            steps.append(next)
            current = next
        }
        return steps
    }
}

/// The least common multiple of the integer strides of a graph's nodes: sizes
/// this far apart have the same alignment (SizeRule's period).
func leastCommonStride(_ geometry: [NodeGeometry?]) -> Int {
    func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
    var l = 1
    for g in geometry.compactMap({ $0 }) {
        for axis in 0..<2 where g[axis].stride >= 1 && g[axis].stride == g[axis].stride.rounded() {
            let s = Int(g[axis].stride)
            l = l / gcd(l, s) * s
        }
    }
    return l
}
