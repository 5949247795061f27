/// A layer that can read a channel concatenation's parts where they lie: Conv2D
/// (a U-Net decoder's first convolution, whose input is the upsampled map
/// joined with the encoder's skip).
protocol ReadsConcatenatedParts: Layer {
    /// Whether `forward(concatenationOf:mode:)` may be offered the parts.
    var foldsConcatenatedInputs: Bool { get }

    /// The layer applied to the concatenation of `parts` on the channel axis,
    /// each part read where it is (the concatenation is never written), with
    /// a backward cache for either backward pass. Nil where the layer cannot
    /// for these shapes, and the graph concatenates.
    /// - Throws: `EngineError` when the parts do not fit the layer.
    func forward(concatenationOf parts: [Tensor], mode: ExecutionMode) throws -> LayerOutput?

    /// After `forward(concatenationOf:mode:)`: the backward pass, returning the
    /// gradients of the parts (for those `needed`) instead of the
    /// concatenation's, which then needs no backward pass of its own. Nil,
    /// having done nothing, where the layer cannot: the graph then calls
    /// `backward` and the concatenation's.
    /// - Throws: `EngineError` for a cache from another pass.
    func backward(_ gradOutput: Tensor, cache: Any?, toConcatenatedParts needed: [Bool]) throws -> [Tensor?]?
}

/// The execution plan's rule for a channel concatenation of two tensors that
/// feeds only a `ReadsConcatenatedParts` layer: that layer is given the two
/// parts and the concatenation is never written, forward or backward.
struct ConcatenatedParts {
    /// The layer's node.
    let reader: Int
    /// The concatenation it reads.
    let concatenation: Int

    /// The rules of `graph` among the nodes a forward pass runs (`running`),
    /// keyed by reader: the concatenation made in this pass (not `given`), read
    /// once (`uses`), not `kept`; neither node `claimed` by another rule.
    static func find(in graph: Graph, running: (Int) -> Bool, given: Set<Int>, uses: [Int], kept: Set<Int>,
                     claimed: Set<Int>) -> [Int: ConcatenatedParts] {
        var rules: [Int: ConcatenatedParts] = [:]
        for (index, node) in graph.nodes.enumerated() where running(index) {
            guard (node.layer as? ReadsConcatenatedParts)?.foldsConcatenatedInputs == true, node.inputs.count == 1,
                  !claimed.contains(index), let c = node.inputs.first, graph.nodes[c].layer is Concatenate, graph.nodes[c].inputs.count == 2,
                  !given.contains(c), uses[c] == 1, !kept.contains(c) else { continue }
            rules[index] = ConcatenatedParts(reader: index, concatenation: c)
        }
        return rules
    }

    /// Runs the reader on the parts, or, where its layer declines these
    /// shapes, the concatenation and then the reader.
    /// - Throws: `EngineError` from the layers, naming the node.
    func run(_ state: inout ForwardState) throws {
        let parts = state.inputs(of: concatenation)
        let concatenate = state.graph.nodes[concatenation].layer as! Concatenate
        let layer = state.graph.nodes[reader].layer as! ReadsConcatenatedParts
        let started = state.startTimer()
        let mode = state.plan.modes[reader]
        let result = try state.naming(reader) {
            concatenate.joinsLastAxis(of: parts) ? try layer.forward(concatenationOf: parts, mode: mode) : nil
        }
        guard let result else {
            try state.run(concatenation)
            try state.run(reader)
            return
        }
        try state.finish(concatenation, LayerOutput(Tensor(zeros: [0]), cache: concatenate.cache(forPartsOf: parts, mode: state.plan.modes[concatenation])))
        state.record(reader, since: started)
        state.partsRead[reader] = concatenation
        try state.finish(reader, result)
    }

    /// The backward step of a node that read a concatenation's parts in
    /// `pass`: the parts' gradients accumulated into `grads`, true; false,
    /// having done nothing, where the node read no parts or its layer declines.
    /// - Throws: `EngineError` from the layer's backward pass.
    static func backward(_ index: Int, _ grad: Tensor, in graph: Graph, pass: ForwardPass, needsGradient: [Bool],
                         grads: inout [Tensor?]) throws -> Bool {
        guard let concatenation = pass.partsRead[index], needsGradient[concatenation],
              let layer = graph.nodes[index].layer as? ReadsConcatenatedParts,
              let parts = try layer.backward(grad, cache: pass.caches[index],
                                             toConcatenatedParts: graph.nodes[concatenation].inputs.map { needsGradient[$0] })
        else { return false }
        for (k, source) in graph.nodes[concatenation].inputs.enumerated() {
            if let g = parts[k] { accumulate(g, into: &grads[source]) }
        }
        return true
    }
}
