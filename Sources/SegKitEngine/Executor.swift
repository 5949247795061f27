import CKernels

/// The record of one forward pass: the values still held and, in training mode,
/// what each node's backward pass needs.
public struct ForwardPass {
    /// The mode the pass ran in; only a `.training` pass can be differentiated.
    public let mode: ExecutionMode
    /// Output of each node, kept only for graph outputs and nodes asked for.
    public internal(set) var values: [Tensor?]
    var caches: [Any?]
    /// Whether the pass kept what gradients with respect to the inputs need.
    let keptInputGradients: Bool
    /// The Add nodes computed by the layer producing one of their operands.
    let fusedAdds: Set<Int>
    /// Nodes that read a concatenation's parts in place → the concatenation.
    let partsRead: [Int: Int]

    /// The graph's outputs, in `graph.outputIndices` order.
    public func outputs(of graph: Graph) -> [Tensor] { graph.outputIndices.map { values[$0]! } }
}

/// What a backward pass did: gradients for the graph inputs that asked for them,
/// and which nodes ran a backward step (so tests can see frozen work skipped).
public struct BackwardResult {
    /// dL/d(input) for each graph input, in `inputIndices` order; nil unless asked
    /// for with `inputGradients: true`.
    public var inputGradients: [Tensor?]
    /// Names of the nodes whose backward step ran, in the order run (reverse topological).
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
    /// The pass follows the graph's `ExecutionPlan` for this kind of pass
    /// (given and kept nodes, mode, input gradients, the layers' trainability),
    /// made on first use and kept: in training mode, a node no gradient will
    /// pass through (nothing trainable in it or before it, and
    /// `inputGradients` false) runs in inference mode unless training changes
    /// what it computes (Dropout), and the plan's fusions run some nodes
    /// together without writing what passes between them: a skip's 1x1
    /// projection summed into a transposed convolution (`ProjectionFold`), an
    /// Add computed by the convolution making its operand (`AddInto`), a
    /// concatenation read in place by the convolution after it
    /// (`ConcatenatedParts`), and a convolution → BatchNormalization (→ Add)
    /// (→ activation) chain run in inference as one folded convolution
    /// (`BatchNormalizationFold`). The values are those of the nodes run one
    /// by one.
    ///
    /// - Throws: `EngineError.graph` for a wrong number of inputs or naming the
    ///   node whose layer failed; `EngineError.shapeMismatch` for an input that
    ///   does not fit its declared shape; `EngineError.outOfMemory`.
    public func forward(
        _ inputs: [Tensor], mode: ExecutionMode = .inference, keep: Set<Int> = [], given: [Int: Tensor] = [:],
        inputGradients: Bool = false
    ) throws -> ForwardPass {
        let key = ExecutionPlan.Key(given: Set(given.keys), kept: keep, outputs: outputIndices, mode: mode, inputGradients: inputGradients,
                                    needsGradient: mode == .training ? dependsOnTrainable(alsoInputs: inputGradients) : [])
        let plan = plans.plan(for: key, in: self)
        guard inputs.count == inputIndices.count || (inputs.isEmpty && plan.neededInputs.isEmpty) else {
            throw EngineError.graph("the model takes \(inputIndices.count) input(s), given \(inputs.count)")
        }
        var state = ForwardState(graph: self, plan: plan)
        for (index, value) in given { state.values[index] = value }
        for (slot, index) in inputIndices.enumerated() where !inputs.isEmpty && given[index] == nil {
            let input = nodes[index].layer as! InputLayer
            try input.check(inputs[slot])
            state.values[index] = inputs[slot]
        }
        for index in plan.steps {
            if let chain = plan.normalizationFolds[index] {
                try chain.run(&state)
            } else if let rule = plan.concatenatedParts[index] {
                try rule.run(&state)
            } else if let fold = plan.projectionFolds[index] {
                try fold.run(&state)
            } else if let rule = plan.addsInto[index], try rule.run(&state) {
                continue
            } else {
                try state.run(index)
            }
        }
        return ForwardPass(mode: mode, values: state.values, caches: state.caches, keptInputGradients: inputGradients,
                           fusedAdds: state.fusedAdds, partsRead: state.partsRead)
    }

    /// Walks the graph in reverse from `outputGradients` (dL/d(output) for each
    /// graph output, each of that output's shape), accumulating gradients where an
    /// output fans out, and adds dL/d(parameter) into every trainable parameter's
    /// `gradient`.
    /// Only nodes whose output depends on a trainable parameter (or on an input,
    /// with `inputGradients`) are visited; a frozen encoder costs nothing.
    /// - Throws: `EngineError.graph` for a pass not run in training mode, input
    ///   gradients the forward pass did not prepare for, or a wrong number of
    ///   output gradients; `EngineError.shapeMismatch` for an output gradient of
    ///   the wrong shape; `EngineError.invalidArgument` from a layer whose cache is
    ///   missing; `EngineError.outOfMemory` when a kernel's scratch could not be
    ///   allocated.
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
        // Each layer's backward pass reads its cached tensors over the gradient's
        // extent: a gradient of another shape is an error here, not a read past them.
        for (slot, index) in outputIndices.enumerated() {
            guard let output = pass.values[index], output.shape == outputGradients[slot].shape else {
                throw EngineError.shapeMismatch(op: "backward", expected: "a gradient of output \(slot)'s shape \(pass.values[index]?.shape ?? [])",
                                                found: "\(outputGradients[slot].shape)")
            }
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
            // A layer that read a concatenation's parts gives their gradients
            // where it can: the concatenation's backward pass is then skipped.
            if try ConcatenatedParts.backward(index, grad, in: self, pass: pass, needsGradient: needsGradient, grads: &grads) {
                inputGrads = [nil]
            } else if try InPlaceGradientAdd.backward(index, grad, in: self, pass: pass, needsGradient: needsGradient, grads: &grads) {
                addedInPlace.append(node.name)
                inputGrads = [nil]
            } else {
                inputGrads = try node.layer.backward(
                    grad, cache: pass.caches[index], needInputGradients: node.inputs.map { needsGradient[$0] })
            }
            if segkit_take_allocation_failure() != 0 { throw EngineError.outOfMemory("computing the gradients of '\(node.name)'") }
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

/// Adds `g` into `slot`, or puts it there when empty.
func accumulate(_ g: Tensor, into slot: inout Tensor?) {
    if slot == nil { slot = g } else { slot!.add(g) }
}
