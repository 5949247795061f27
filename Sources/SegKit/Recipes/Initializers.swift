import SegKitEngine

/// Weight initialisers for new decoder layers, all seeded.
enum Initializer {
    /// He normal (U-Net paper): N(0, √(2 / fan_in)), for layers followed by ReLU.
    static func he(_ shape: [Int], fanIn: Int, _ rng: inout SeededGenerator) -> Tensor {
        Tensor.randomNormal(shape: shape, stddev: (2 / Float(max(fanIn, 1))).squareRoot(), using: &rng)
    }

    /// Glorot uniform (Keras's default): U(±√(6 / (fan_in + fan_out))).
    static func glorot(_ shape: [Int], fanIn: Int, fanOut: Int, _ rng: inout SeededGenerator) -> Tensor {
        let limit = (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
        return Tensor.randomUniform(shape: shape, low: -limit, high: limit, using: &rng)
    }

    /// FCN's bilinear upsampling kernel for a Conv2DTranspose of `size` x `size`
    /// mapping each of `channels` channels to itself (Long et al.'s `upsample_filt`):
    /// w(i) = 1 − |i − c| / f with f = ⌈size/2⌉ and c = f − 1 (odd size) or f − 0.5 (even).
    static func bilinear(size: Int, channels: Int) -> Tensor {
        let factor = Float((size + 1) / 2)
        let center = size % 2 == 1 ? factor - 1 : factor - 0.5
        let w = (0..<size).map { 1 - abs(Float($0) - center) / factor }
        var k = Tensor(zeros: [size, size, channels, channels])
        for y in 0..<size {
            for x in 0..<size {
                for c in 0..<channels { k.scalars[((y * size + x) * channels + c) * channels + c] = w[y] * w[x] }
            }
        }
        return k
    }
}

/// Copies `source`'s nodes into a new graph (all, or those `include` keeps, which
/// must be closed under inputs), sharing the layers unless `substitute` gives a
/// replacement. Returns the graph and the node-index map.
func replay(_ source: Graph, include: (Int) -> Bool = { _ in true },
            substitute: (Int, Graph.Node) throws -> Layer? = { _, _ in nil },
            inputShape: ((StaticShape) -> StaticShape)? = nil) throws -> (Graph, [Int: Int]) {
    let g = Graph()
    var map: [Int: Int] = [:]
    for (i, node) in source.nodes.enumerated() where include(i) {
        if let input = node.layer as? InputLayer {
            map[i] = try g.addInput(name: node.name, shape: inputShape?(input.shape) ?? input.shape)
        } else {
            let layer = try substitute(i, node) ?? node.layer
            map[i] = try g.add(layer, inputs: node.inputs.map { map[$0]! }, nodeName: node.name)
        }
    }
    g.outputIndices = source.outputIndices.compactMap { map[$0] }
    return (g, map)
}
