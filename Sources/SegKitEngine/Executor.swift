import CKernels

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
    /// Nodes that read a concatenation's parts in place → the concatenation.
    let partsRead: [Int: Int]

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
    /// An Add of two tensors that feed nothing else, one made by a layer that
    /// folds pointwise projections into its output (a linear transposed
    /// convolution: a decoder's upsampling) and the other by such a projection
    /// (a skip connection's 1x1 convolution), is computed by the first layer
    /// alone when both operands are ready: neither operand is written.
    /// Otherwise, an Add whose later operand is made by a layer that can add a
    /// tensor to its output as it writes it (a linear convolution), and feeds
    /// nothing else, is computed by that layer: one pass over the output
    /// instead of two.
    /// A channel concatenation of two tensors that feeds only a layer which
    /// reads concatenated inputs in place (a U-Net decoder's first
    /// convolution) is never written: that layer is given the two parts.
    /// A convolution followed by a BatchNormalization (then perhaps a residual
    /// Add and an activation layer), each read by the next alone and all running in inference, runs
    /// as one convolution with the normalization folded into its weights
    /// (`BatchNormalizationFold`).
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

        // The later operand node of a folded projection → the fusion; the
        // earlier operand waits for it.
        var folds: [Int: ProjectionFold] = [:]
        var waiting = Set<Int>()
        // Producer node → (its Add node, the Add's other operand).
        var addsInto: [Int: (add: Int, addend: Int)] = [:]
        for (index, node) in nodes.enumerated() where needed.contains(index) && given[index] == nil {
            guard let merge = node.layer as? ElementwiseMerge, merge.operation == .add, node.inputs.count == 2 else { continue }
            let (earlier, later) = (node.inputs.min()!, node.inputs.max()!)
            guard earlier != later, given[later] == nil, remainingUses[later] == 1, !retained.contains(later) else { continue }
            if given[earlier] == nil, remainingUses[earlier] == 1, !retained.contains(earlier),
               let fold = ProjectionFold(add: index, operands: (earlier, later), layers: (nodes[earlier].layer, nodes[later].layer)) {
                folds[later] = fold
                waiting.insert(earlier)
                continue
            }
            addsInto[later] = (index, earlier)
        }
        // The consumer that reads a concatenation's parts → the concatenation.
        var readsParts: [Int: Int] = [:]
        for (index, node) in nodes.enumerated() where needed.contains(index) && given[index] == nil {
            guard node.layer.foldsConcatenatedInputs, node.inputs.count == 1, folds[index] == nil, addsInto[index] == nil,
                  !waiting.contains(index), let c = node.inputs.first, nodes[c].layer is Concatenate, nodes[c].inputs.count == 2,
                  given[c] == nil, remainingUses[c] == 1, !retained.contains(c) else { continue }
            readsParts[index] = c
        }
        let unwritten = Set(readsParts.values)
        var fusedSums: [Int: Tensor] = [:]
        var fused = Set<Int>()
        var partsRead: [Int: Int] = [:]

        var values = [Tensor?](repeating: nil, count: nodes.count)
        var caches = [Any?](repeating: nil, count: nodes.count)
        let needsGradient = mode == .training ? dependsOnTrainable(alsoInputs: inputGradients) : []
        for (index, value) in given { values[index] = value }
        for (slot, index) in inputIndices.enumerated() where !inputs.isEmpty && given[index] == nil {
            let input = nodes[index].layer as! InputLayer
            try input.check(inputs[slot])
            values[index] = inputs[slot]
        }
        func modeOf(_ index: Int) -> ExecutionMode {
            mode == .training && !needsGradient[index] && !nodes[index].layer.trainingChangesOutput ? .inference : mode
        }
        // Conv → BatchNormalization (→ Add) (→ Activation) chains that run in inference: one folded pass.
        let claimed = Set(readsParts.keys).union(unwritten).union(waiting).union(folds.keys)
        let normalizationFolds = BatchNormalizationFold.find(
            in: self, running: { needed.contains($0) && given[$0] == nil }, uses: remainingUses, kept: retained, claimed: claimed,
            runsInInference: { modeOf($0) == .inference })
        let absorbed = Set(normalizationFolds.values.flatMap(\.absorbed))
        /// Marks `index` as run: its value and cache stored, its inputs released after their last use.
        func finish(_ index: Int, _ result: LayerOutput) throws {
            if segkit_take_allocation_failure() != 0 { throw EngineError.outOfMemory("running '\(nodes[index].name)'") }
            values[index] = result.output
            if modeOf(index) == .training { caches[index] = result.cache }
            for i in nodes[index].inputs {
                remainingUses[i] -= 1
                if remainingUses[i] == 0 && !retained.contains(i) { values[i] = nil }
            }
        }
        for (index, node) in nodes.enumerated() where !(node.layer is InputLayer) && needed.contains(index) && given[index] == nil {
            if waiting.contains(index) || unwritten.contains(index) || absorbed.contains(index) { continue }
            if let chain = normalizationFolds[index] {
                try runFolded(chain)
                continue
            }
            if let concatenation = readsParts[index] {
                try runReadingParts(index, of: concatenation)
                continue
            }
            if let fold = folds[index] {
                let started = profiler.map { _ in LayerProfiler.now() }
                let (producer, projection) = fold.roles
                let term: (term: PointwiseProjection, cache: Any?)?
                let sum: LayerOutput?
                do {
                    term = try nodes[projection].layer.pointwiseProjection(of: nodes[projection].inputs.map { values[$0]! }, mode: modeOf(projection))
                    sum = try term.flatMap { try nodes[producer].layer.forward(nodes[producer].inputs.map { values[$0]! }, mode: modeOf(producer), plus: $0.term) }
                } catch let error as EngineError {
                    throw EngineError.graph("at node '\(nodes[producer].name)': \(error.localizedDescription)")
                }
                if let term, let sum {
                    fusedSums[fold.add] = sum.output
                    fused.insert(fold.add)
                    // Read by nothing but their Add, which has the sum.
                    try finish(producer, LayerOutput(Tensor(zeros: [0]), cache: sum.cache))
                    try finish(projection, LayerOutput(Tensor(zeros: [0]), cache: term.cache))
                    if let started { profiler?.record(node: producer, backward: false, since: started) }
                    continue
                }
                // The shapes do not fold: the waiting operand runs first, as it would have.
                try run(fold.waiting)
            }
            try run(index)
        }
        /// Runs a folded chain at its convolution's turn: the chain's last node gets the value.
        func runFolded(_ chain: BatchNormalizationFold) throws {
            let started = profiler.map { _ in LayerProfiler.now() }
            let y: Tensor
            do {
                y = try chain.output(of: values[chain.source(in: self)]!, addend: chain.residual.map { values[$0.addend]! }, in: self)
            } catch let error as EngineError {
                throw EngineError.graph("at node '\(nodes[chain.convolution].name)': \(error.localizedDescription)")
            }
            if let started { profiler?.record(node: chain.convolution, backward: false, since: started) }
            // The links before the last are read by nothing but the next.
            let unread = LayerOutput(Tensor(zeros: [0]))
            if let padding = chain.padding { try finish(padding, unread) }
            try finish(chain.convolution, unread)
            for node in [chain.normalization, chain.residual?.add, chain.activation].compactMap({ $0 }) {
                try finish(node, node == chain.end ? LayerOutput(y) : unread)
            }
        }
        /// Runs `index` on the parts of the concatenation it reads, or, where
        /// its layer declines these shapes, the concatenation and then `index`.
        func runReadingParts(_ index: Int, of concatenation: Int) throws {
            let parts = nodes[concatenation].inputs.map { values[$0]! }
            let concatenate = nodes[concatenation].layer as! Concatenate
            let started = profiler.map { _ in LayerProfiler.now() }
            let result: LayerOutput?
            do {
                result = concatenate.joinsLastAxis(of: parts) ? try nodes[index].layer.forward(concatenationOf: parts, mode: modeOf(index)) : nil
            } catch let error as EngineError {
                throw EngineError.graph("at node '\(nodes[index].name)': \(error.localizedDescription)")
            }
            guard let result else {
                try run(concatenation)
                try run(index)
                return
            }
            try finish(concatenation, LayerOutput(Tensor(zeros: [0]), cache: concatenate.cache(forPartsOf: parts, mode: modeOf(concatenation))))
            if let started { profiler?.record(node: index, backward: false, since: started) }
            partsRead[index] = concatenation
            try finish(index, result)
        }
        func run(_ index: Int) throws {
            let node = nodes[index]
            let args = node.inputs.map { values[$0]! }
            let result: LayerOutput
            let started = profiler.map { _ in LayerProfiler.now() }
            let nodeMode = modeOf(index)
            do {
                if let sum = fusedSums.removeValue(forKey: index) {
                    // Add's cache without shapes: a fused Add's inputs all have the output's shape.
                    result = LayerOutput(sum, cache: nodeMode == .training ? [[Int]]() : nil)
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
            try finish(index, result)
        }
        return ForwardPass(mode: mode, values: values, caches: caches, keptInputGradients: inputGradients, fusedAdds: fused,
                           partsRead: partsRead)
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
            if let concatenation = pass.partsRead[index], needsGradient[concatenation],
               let parts = try node.layer.backward(grad, cache: pass.caches[index],
                                                   toConcatenatedParts: nodes[concatenation].inputs.map { needsGradient[$0] }) {
                for (k, source) in nodes[concatenation].inputs.enumerated() {
                    if let g = parts[k] { accumulate(g, into: &grads[source]) }
                }
                inputGrads = [nil]
            } else if node.inputs.count == 1, let source = node.inputs.first, needsGradient[source], grads[source] != nil,
               try node.layer.backward(grad, cache: pass.caches[index], addingInputGradientTo: &grads[source]!) {
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

private func accumulate(_ g: Tensor, into slot: inout Tensor?) {
    if slot == nil { slot = g } else { slot!.add(g) }
}

/// An Add whose operands are a layer that folds pointwise projections into its
/// output and such a projection, in either order.
private struct ProjectionFold {
    let add: Int
    /// The earlier operand, run with the later one.
    let waiting: Int
    /// Which operand folds the other in.
    let roles: (producer: Int, projection: Int)

    /// `operands` earlier first.
    init?(add: Int, operands: (Int, Int), layers: (Layer, Layer)) {
        self.add = add
        waiting = operands.0
        if layers.0.foldsPointwiseProjections && layers.1.isPointwiseProjection {
            roles = (operands.0, operands.1)
        } else if layers.1.foldsPointwiseProjections && layers.0.isPointwiseProjection {
            roles = (operands.1, operands.0)
        } else {
            return nil
        }
    }
}
