/// The record of one forward pass: the values still held and, in training mode,
/// what each node's backward pass needs.
public struct ForwardPass {
    public let mode: ExecutionMode
    /// Output of each node, kept only for graph outputs and nodes asked for.
    public internal(set) var values: [Tensor?]
    var caches: [Any?]
    /// Whether the pass kept what gradients with respect to the inputs need.
    let keptInputGradients: Bool
    /// The Add nodes computed by the layer producing one of their operands.
    let fusedAdds: Set<Int>

    /// The graph's outputs, in `graph.outputIndices` order.
    public func outputs(of graph: Graph) -> [Tensor] { graph.outputIndices.map { values[$0]! } }
}

/// What a backward pass did: gradients for the graph inputs that asked for them,
/// and which nodes ran a backward step (so tests can see frozen work skipped).
public struct BackwardResult {
    public var inputGradients: [Tensor?]
    public var nodesVisited: [String]
    /// Nodes that added their input's gradient into the one it already had.
    public var addedInPlace: [String] = []
}

extension Graph {
    /// Runs the graph forward. `inputs` are matched with `inputIndices` in order.
    /// `keep` names nodes whose outputs are kept in the result besides the outputs;
    /// every other intermediate is released as soon as its last consumer has run.
    ///
    /// `given` supplies precomputed outputs for some nodes (a frozen encoder's
    /// cached features): they are not recomputed, and nodes only they depend on
    /// are skipped; `inputs` may then be empty.
    ///
    /// In training mode, a node no gradient will pass through (nothing
    /// trainable in it or before it, and `inputGradients` false) runs in
    /// inference mode unless training changes what it computes (Dropout):
    /// the same values, without backward caches and with fused activations.
    ///
    /// An Add of two tensors whose later operand is made by a layer that can
    /// add a tensor to its output as it writes it (a linear convolution: a skip
    /// connection's projection), and feeds nothing else, is computed by that
    /// layer: one pass over the output instead of two.
    public func forward(
        _ inputs: [Tensor], mode: ExecutionMode = .inference, keep: Set<Int> = [], given: [Int: Tensor] = [:],
        inputGradients: Bool = false
    ) throws -> ForwardPass {
        // The nodes the outputs (and kept nodes) need, stopping at given ones.
        var needed = Set(outputIndices).union(keep)
        for i in nodes.indices.reversed() where needed.contains(i) && given[i] == nil { needed.formUnion(nodes[i].inputs) }
        let neededInputs = inputIndices.filter { needed.contains($0) && given[$0] == nil }
        guard inputs.count == inputIndices.count || (inputs.isEmpty && neededInputs.isEmpty) else {
            throw EngineError.graph("the model takes \(inputIndices.count) input(s), given \(inputs.count)")
        }
        var remainingUses = [Int](repeating: 0, count: nodes.count)
        for (i, node) in nodes.enumerated() where needed.contains(i) && given[i] == nil { for j in node.inputs { remainingUses[j] += 1 } }
        var retained = keep
        retained.formUnion(outputIndices)

        // Producer node → (its Add node, the Add's other operand).
        var addsInto: [Int: (add: Int, addend: Int)] = [:]
        for (index, node) in nodes.enumerated() where needed.contains(index) && given[index] == nil {
            guard let merge = node.layer as? ElementwiseMerge, merge.operation == .add, node.inputs.count == 2 else { continue }
            let (earlier, later) = (node.inputs.min()!, node.inputs.max()!)
            guard earlier != later, given[later] == nil, remainingUses[later] == 1, !retained.contains(later) else { continue }
            addsInto[later] = (index, earlier)
        }
        var fusedSums: [Int: Tensor] = [:]
        var fused = Set<Int>()

        var values = [Tensor?](repeating: nil, count: nodes.count)
        var caches = [Any?](repeating: nil, count: nodes.count)
        let needsGradient = mode == .training ? dependsOnTrainable(alsoInputs: inputGradients) : []
        for (index, value) in given { values[index] = value }
        for (slot, index) in inputIndices.enumerated() where !inputs.isEmpty && given[index] == nil {
            let input = nodes[index].layer as! InputLayer
            try input.check(inputs[slot])
            values[index] = inputs[slot]
        }
        for (index, node) in nodes.enumerated() where !(node.layer is InputLayer) && needed.contains(index) && given[index] == nil {
            let args = node.inputs.map { values[$0]! }
            let result: LayerOutput
            let started = profiler.map { _ in LayerProfiler.now() }
            let nodeMode: ExecutionMode = mode == .training && !needsGradient[index] && !node.layer.trainingChangesOutput
                ? .inference : mode
            do {
                if let sum = fusedSums.removeValue(forKey: index) {
                    result = LayerOutput(sum, cache: nodeMode == .training ? [Tensor]() : nil)  // Add's (empty) cache
                } else if let fusion = addsInto[index],
                          let sum = try node.layer.forward(args, mode: nodeMode, adding: values[fusion.addend]!) {
                    fusedSums[fusion.add] = sum.output
                    fused.insert(fusion.add)
                    result = LayerOutput(Tensor(zeros: [0]), cache: sum.cache)  // read by nothing but its Add
                } else {
                    result = try node.layer.forward(args, mode: nodeMode)
                }
            } catch let error as EngineError {
                throw EngineError.graph("at node '\(node.name)': \(error.localizedDescription)")
            }
            if let started { profiler?.record(node: index, backward: false, since: started) }
            values[index] = result.output
            if nodeMode == .training { caches[index] = result.cache }
            for i in node.inputs {
                remainingUses[i] -= 1
                if remainingUses[i] == 0 && !retained.contains(i) { values[i] = nil }
            }
        }
        return ForwardPass(mode: mode, values: values, caches: caches, keptInputGradients: inputGradients, fusedAdds: fused)
    }

    /// Walks the graph in reverse from `outputGradients` (dL/d(output) for each
    /// graph output), accumulating gradients where an output fans out, and adds
    /// dL/d(parameter) into every trainable parameter's `gradient`.
    ///
    /// Only nodes whose output depends on a trainable parameter (or on an input,
    /// with `inputGradients`) are visited; a frozen encoder costs nothing.
    public func backward(
        _ pass: ForwardPass, outputGradients: [Tensor], inputGradients: Bool = false
    ) throws -> BackwardResult {
        guard pass.mode == .training else {
            throw EngineError.graph("backward needs a training-mode forward pass")
        }
        guard !inputGradients || pass.keptInputGradients else {
            throw EngineError.graph("input gradients need a forward pass run with inputGradients: true")
        }
        guard outputGradients.count == outputIndices.count else {
            throw EngineError.graph(
                "backward needs \(outputIndices.count) output gradient(s), given \(outputGradients.count)")
        }
        let needsGradient = dependsOnTrainable(alsoInputs: inputGradients)
        var grads = [Tensor?](repeating: nil, count: nodes.count)
        for (slot, index) in outputIndices.enumerated() where needsGradient[index] {
            accumulate(outputGradients[slot], into: &grads[index])
        }
        var visited: [String] = [], addedInPlace: [String] = []
        for index in nodes.indices.reversed() {
            let node = nodes[index]
            guard needsGradient[index], !(node.layer is InputLayer), let grad = grads[index] else { continue }
            grads[index] = nil
            visited.append(node.name)
            let started = profiler.map { _ in LayerProfiler.now() }
            let inputGrads: [Tensor?]
            // A fan-out's gradient so far takes this layer's share in place where the layer can add it.
            if node.inputs.count == 1, let source = node.inputs.first, needsGradient[source], grads[source] != nil,
               try node.layer.backward(grad, cache: pass.caches[index], addingInputGradientTo: &grads[source]!) {
                addedInPlace.append(node.name)
                inputGrads = [nil]
            } else {
                inputGrads = try node.layer.backward(
                    grad, cache: pass.caches[index], needInputGradients: node.inputs.map { needsGradient[$0] })
            }
            if let started { profiler?.record(node: index, backward: true, since: started) }
            for (k, source) in node.inputs.enumerated() {
                if let g = inputGrads[k] { accumulate(g, into: &grads[source]) }
            }
        }
        return BackwardResult(inputGradients: inputIndices.map { grads[$0] }, nodesVisited: visited, addedInPlace: addedInPlace)
    }

    /// Clears every parameter's gradient before the next step.
    public func zeroGradients() { for p in parameters { p.zeroGradient() } }
}

private func accumulate(_ g: Tensor, into slot: inout Tensor?) {
    if slot == nil { slot = g } else { slot!.add(g) }
}
