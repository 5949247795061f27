import SegKitEngine

/// `replacement` put in the place of `original`, frozen or trainable as
/// `original` is: every surgery substitution (a Dense made a 1x1 convolution, a
/// Flatten head's `valid` convolution made `same`, a first convolution adapted
/// to grey data) goes through here, so none loses the recipe's frozen flags.
@discardableResult
func substitute(_ replacement: Layer, for original: Layer) -> Layer {
    replacement.isTrainable = original.isTrainable
    return replacement
}

/// Copies `source`'s nodes into a new graph (all, or those `include` keeps, which
/// must be closed under inputs), sharing the layers unless `substitute` gives a
/// replacement, which takes the replaced layer's trainability
/// (`substitute(_:for:)`). Returns the graph and the node-index map
/// (`source` index → new index).
///
/// - Throws: `EngineError.graph` naming the node when `include` keeps a node
///   but not one it reads; what `replacement` throws.
func replay(_ source: Graph, include: (Int) -> Bool = { _ in true },
            substitute replacement: (Int, Graph.Node) throws -> Layer? = { _, _ in nil },
            inputShape: ((StaticShape) -> StaticShape)? = nil) throws -> (Graph, [Int: Int]) {
    let g = Graph()
    var map: [Int: Int] = [:]
    for (i, node) in source.nodes.enumerated() where include(i) {
        if let input = node.layer as? InputLayer {
            map[i] = try g.addInput(name: node.name, shape: inputShape?(input.shape) ?? input.shape)
        } else {
            let layer = try replacement(i, node).map { substitute($0, for: node.layer) } ?? node.layer
            let inputs = try node.inputs.map { j in
                guard let k = map[j] else { throw EngineError.graph("node '\(node.name)' reads '\(source.nodes[j].name)', which the copy leaves out") }
                return k
            }
            map[i] = try g.add(layer, inputs: inputs, nodeName: node.name)
        }
    }
    g.outputIndices = source.outputIndices.compactMap { map[$0] }
    return (g, map)
}
