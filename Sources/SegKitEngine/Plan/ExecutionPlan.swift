/// What one kind of forward pass over a graph runs, decided once and reused:
/// the nodes it needs, how many of them read each output, the mode each node
/// runs in, and the fusions that replace some nodes' separate passes — each
/// a rule in its own file of this folder (`ProjectionFold`, `AddInto`,
/// `ConcatenatedParts`, `BatchNormalizationFold`; `InPlaceGradientAdd` acts in
/// the backward pass). `Graph.forward` keeps the plans it made by `Key`.
///
/// Adding a fusion: a protocol for the layers that can do it, a rule with a
/// `find` over the graph (respecting the nodes other rules claimed) and a
/// `run(_:)` on the `ForwardState`, and a line each in `init` and in
/// `Graph.forward`'s loop.
struct ExecutionPlan {
    /// Everything a plan depends on besides the graph's nodes.
    struct Key: Hashable {
        /// Nodes whose outputs the caller supplies (a cached frozen encoder's features).
        let given: Set<Int>
        /// Nodes whose outputs the pass returns besides the graph's outputs.
        let kept: Set<Int>
        let outputs: [Int]
        let mode: ExecutionMode
        let inputGradients: Bool
        /// For each node, whether a gradient passes through it (training mode;
        /// empty in inference): the layers' trainability when the pass runs.
        let needsGradient: [Bool]
    }

    /// Graph inputs the pass reads (not given).
    let neededInputs: [Int]
    /// How many running nodes read each node's output.
    let uses: [Int]
    /// Nodes whose values the pass returns: the outputs and the kept nodes.
    let retained: Set<Int>
    /// The mode each node runs in: in a training pass, a node no gradient
    /// passes through runs in inference unless training changes what it
    /// computes (Dropout): the same values, without backward caches.
    let modes: [ExecutionMode]
    /// Keyed by the later operand of the fused Add.
    let projectionFolds: [Int: ProjectionFold]
    /// Keyed by producer.
    let addsInto: [Int: AddInto]
    /// Keyed by reader.
    let concatenatedParts: [Int: ConcatenatedParts]
    /// Keyed by convolution.
    let normalizationFolds: [Int: BatchNormalizationFold]
    /// The nodes that run at their own turn, in graph order: what `Graph.forward`
    /// walks (a rule runs the others at another node's turn).
    let steps: [Int]

    init(_ graph: Graph, _ key: Key) {
        let nodes = graph.nodes
        var needed = Set(key.outputs).union(key.kept)
        for i in nodes.indices.reversed() where needed.contains(i) && !key.given.contains(i) { needed.formUnion(nodes[i].inputs) }
        // Nodes the outputs and kept nodes need, given ones excluded.
        let running = nodes.indices.map { needed.contains($0) && !key.given.contains($0) }
        neededInputs = graph.inputIndices.filter { running[$0] }
        var uses = [Int](repeating: 0, count: nodes.count)
        for (i, node) in nodes.enumerated() where running[i] { for j in node.inputs { uses[j] += 1 } }
        self.uses = uses
        let retained = key.kept.union(key.outputs)
        self.retained = retained
        modes = nodes.indices.map { i in
            key.mode == .training && !key.needsGradient[i] && !nodes[i].layer.trainingChangesOutput ? .inference : key.mode
        }
        let runs = { (i: Int) in running[i] && !(nodes[i].layer is InputLayer) }

        // The rules in order of precedence; each leaves alone the nodes the earlier ones claimed.
        projectionFolds = ProjectionFold.find(in: graph, running: runs, given: key.given, uses: uses, kept: retained)
        var claimed = Set(projectionFolds.values.flatMap(\.claimed))
        addsInto = AddInto.find(in: graph, running: runs, given: key.given, uses: uses, kept: retained, claimed: claimed)
        claimed.formUnion(addsInto.keys)
        concatenatedParts = ConcatenatedParts.find(in: graph, running: runs, given: key.given, uses: uses, kept: retained, claimed: claimed)
        claimed.formUnion(concatenatedParts.values.flatMap { [$0.reader, $0.concatenation] })
        let modes = self.modes
        normalizationFolds = BatchNormalizationFold.find(in: graph, running: runs, uses: uses, kept: retained, claimed: claimed,
                                                         runsInInference: { modes[$0] == .inference })
        let elsewhere = Set(projectionFolds.values.map(\.waiting))
            .union(concatenatedParts.values.map(\.concatenation))
            .union(normalizationFolds.values.flatMap(\.absorbed))
        steps = nodes.indices.filter { runs($0) && !elsewhere.contains($0) }
    }
}

/// The plans a graph has made, by key; emptied when a node is added.
final class ExecutionPlans {
    private var plans: [ExecutionPlan.Key: ExecutionPlan] = [:]
    /// A graph runs a handful of kinds of pass (inference, training, with the
    /// feature cache's given nodes); more than this means keys that vary
    /// (kept nodes chosen per call), and the oldest plans are dropped.
    private static let limit = 16

    /// The plan for `key`, made on first use.
    func plan(for key: ExecutionPlan.Key, in graph: Graph) -> ExecutionPlan {
        if let plan = plans[key] { return plan }
        if plans.count >= Self.limit { plans.removeAll() }
        let plan = ExecutionPlan(graph, key)
        plans[key] = plan
        return plan
    }

    func removeAll() { plans.removeAll() }

    /// How many plans are kept.
    var count: Int { plans.count }
}
