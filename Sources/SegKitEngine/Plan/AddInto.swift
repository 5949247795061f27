/// A layer that can add a tensor to its output as it writes it: Conv2D with a
/// linear activation (one pass over the output instead of two).
protocol AddsToOutput: Layer {
    /// The layer's output plus `addend` (a tensor of the output's shape) in one
    /// pass, with the backward cache `forward(_:mode:)` would have made; nil
    /// where the layer cannot (another activation, another shape), and the
    /// graph runs the Add itself. Offered only by layers whose backward pass
    /// does not read their output: the Add's gradient reaches them unchanged.
    /// - Throws: `EngineError` when `inputs` do not fit the layer.
    func forward(_ inputs: [Tensor], mode: ExecutionMode, adding addend: Tensor) throws -> LayerOutput?
}

/// The execution plan's rule for a two-operand Add whose later operand is made
/// by an `AddsToOutput` layer and read by nothing else: that layer computes
/// the sum when it runs (its own output is never written), and the Add node
/// takes the sum at its turn. A skip connection's Add after a decoder
/// convolution, a residual block's last convolution in training.
struct AddInto {
    /// The Add node.
    let add: Int
    /// The layer's node, which computes the sum.
    let producer: Int
    /// The Add's other operand, made before the producer runs.
    let addend: Int

    /// The Adds of `graph` among the nodes a forward pass runs (`running`),
    /// keyed by producer: `uses` counts each node's readers in this pass; no
    /// operand is given (`given`), kept (`kept`) or claimed by another rule.
    /// A producer that turns out not to add (`forward(_:mode:adding:)` nil)
    /// leaves the Add to run as usual.
    static func find(in graph: Graph, running: (Int) -> Bool, given: Set<Int>, uses: [Int], kept: Set<Int>,
                     claimed: Set<Int>) -> [Int: AddInto] {
        var rules: [Int: AddInto] = [:]
        for (index, node) in graph.nodes.enumerated() where running(index) {
            guard let (earlier, later) = twoOperandAdd(node), !claimed.contains(index), !claimed.contains(later),
                  !given.contains(later), uses[later] == 1, !kept.contains(later), graph.nodes[later].layer is AddsToOutput else { continue }
            rules[later] = AddInto(add: index, producer: later, addend: earlier)
        }
        return rules
    }

    /// Runs the producer with the addend: true when it made the sum (stored for
    /// the Add), false when it declined and ran as a plain layer instead.
    /// - Throws: `EngineError` from the layer, naming the node.
    func run(_ state: inout ForwardState) throws -> Bool {
        let layer = state.graph.nodes[producer].layer as! AddsToOutput
        guard let addend = state.values[addend],
              let sum = try state.naming(producer, { try layer.forward(state.inputs(of: producer), mode: state.plan.modes[producer], adding: addend) })
        else { return false }
        state.sums[add] = sum.output
        // Read by nothing but its Add, which has the sum.
        try state.finish(producer, LayerOutput(Tensor(zeros: [0]), cache: sum.cache))
        return true
    }
}

/// A node's (earlier, later) operands when it is an Add of two distinct nodes.
func twoOperandAdd(_ node: Graph.Node) -> (earlier: Int, later: Int)? {
    guard let merge = node.layer as? ElementwiseMerge, merge.operation == .add, node.inputs.count == 2,
          let earlier = node.inputs.min(), let later = node.inputs.max(), earlier != later else { return nil }
    return (earlier, later)
}
