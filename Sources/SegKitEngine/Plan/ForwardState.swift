import CKernels

/// One forward pass in progress: the values and backward caches made so far,
/// the readers each value still has, and the sums fused Adds will take. The
/// plan's rules run against it; `Graph.forward` owns it.
struct ForwardState {
    let graph: Graph
    let plan: ExecutionPlan
    var values: [Tensor?]
    var caches: [Any?]
    /// Readers each value still has in this pass; a value is released at 0 unless retained.
    var remainingUses: [Int]
    /// An Add node → the sum a rule computed for it.
    var sums: [Int: Tensor] = [:]
    /// The Add nodes whose sums were computed by a rule.
    var fusedAdds = Set<Int>()
    /// Reader → the concatenation whose parts it read.
    var partsRead: [Int: Int] = [:]

    init(graph: Graph, plan: ExecutionPlan) {
        self.graph = graph
        self.plan = plan
        values = [Tensor?](repeating: nil, count: graph.nodes.count)
        caches = [Any?](repeating: nil, count: graph.nodes.count)
        remainingUses = plan.uses
    }

    /// The values of `index`'s inputs.
    func inputs(of index: Int) -> [Tensor] { graph.nodes[index].inputs.map { values[$0]! } }

    /// Marks `index` as run: its value and (in training) cache stored, its
    /// inputs released after their last reader.
    /// - Throws: `EngineError.outOfMemory` when a kernel could not allocate its scratch memory.
    mutating func finish(_ index: Int, _ result: LayerOutput) throws {
        if segkit_take_allocation_failure() != 0 { throw EngineError.outOfMemory("running '\(graph.nodes[index].name)'") }
        values[index] = result.output
        if plan.modes[index] == .training { caches[index] = result.cache }
        for i in graph.nodes[index].inputs {
            remainingUses[i] -= 1
            if remainingUses[i] == 0 && !plan.retained.contains(i) { values[i] = nil }
        }
    }

    /// Runs one node as its layer alone; an Add whose sum a rule made takes it.
    /// - Throws: `EngineError` from the layer, naming the node.
    mutating func run(_ index: Int) throws {
        let started = startTimer()
        let result: LayerOutput
        if let sum = sums.removeValue(forKey: index) {
            // Add's cache without shapes: a fused Add's inputs all have the output's shape.
            result = LayerOutput(sum, cache: plan.modes[index] == .training ? [[Int]]() : nil)
            fusedAdds.insert(index)
        } else {
            let args = inputs(of: index)
            let layer = graph.nodes[index].layer
            let mode = plan.modes[index]
            result = try naming(index) { try layer.forward(args, mode: mode) }
        }
        record(index, since: started)
        try finish(index, result)
    }

    /// `body`'s result, with an engine error reported at node `index`.
    /// - Throws: `EngineError.graph` naming the node, for the `EngineError` `body` throws.
    func naming<T>(_ index: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as EngineError {
            throw EngineError.graph("at node '\(graph.nodes[index].name)': \(error.localizedDescription)")
        }
    }

    /// The time now, when the graph has a profiler.
    func startTimer() -> UInt64? { graph.profiler.map { _ in LayerProfiler.now() } }

    /// Records a forward step of `index` that began at `started`.
    func record(_ index: Int, since started: UInt64?) {
        if let started { graph.profiler?.record(node: index, backward: false, since: started) }
    }
}
