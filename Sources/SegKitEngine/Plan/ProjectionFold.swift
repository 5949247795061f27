/// A 1x1 convolution of `input` (NHWC) with `kernel` [1, 1, in, out] plus
/// `bias`: what a pointwise projection layer computes, handed to the layer
/// that folds it into its output.
public struct PointwiseProjection {
    /// The projection's input, NHWC `[N, H, W, in]` (the folding layer's output size).
    public let input: Tensor
    /// The 1x1 kernel, HWIO `[1, 1, in, out]`.
    public let kernel: Tensor
    /// The projection's bias, `out` values, or nil.
    public let bias: [Float]?
}

/// A layer that may be folded into another's output as a `PointwiseProjection`:
/// Conv2D when it is 1x1, stride 1, ungrouped, undilated and linear (a skip
/// connection's projection).
protocol PointwiseProjecting: Layer {
    /// Whether the layer is such a projection now.
    var isPointwiseProjection: Bool { get }

    /// This layer, applied to `inputs`, as a term for another layer's
    /// `forward(_:mode:plus:)`, with the backward cache a forward pass in
    /// `mode` would have made; nil where the layer is not such a projection.
    /// - Throws: `EngineError` when `inputs` do not fit the layer.
    func pointwiseProjection(of inputs: [Tensor], mode: ExecutionMode) throws -> (term: PointwiseProjection, cache: Any?)?
}

/// A layer that can sum a pointwise projection into its output in its own
/// loops: Conv2DTranspose with a linear activation (a decoder's upsampling).
protocol FoldsPointwiseProjections: Layer {
    /// Whether `forward(_:mode:plus:)` may be offered a projection.
    var foldsPointwiseProjections: Bool { get }

    /// The layer's output plus `projection` (of a tensor with the output's
    /// height and width) in one pass: the projection's products are summed in
    /// the output's registers, so neither its output nor the Add's pass over
    /// it is ever written. Nil where the layer cannot for these shapes.
    /// - Throws: `EngineError` when `inputs` do not fit the layer.
    func forward(_ inputs: [Tensor], mode: ExecutionMode, plus projection: PointwiseProjection) throws -> LayerOutput?
}

/// The execution plan's rule for an Add of two operands read by nothing else,
/// one made by a `FoldsPointwiseProjections` layer and the other by a
/// `PointwiseProjecting` one, in either order (FCN's and the transposed
/// decoders' skip: upsampled scores + a 1x1 projection of a stage): at the
/// later operand's turn the producer computes the sum, and the earlier
/// operand, which waited, never runs on its own.
struct ProjectionFold {
    let add: Int
    /// The earlier operand, run with the later one.
    let waiting: Int
    /// The later operand: the fold runs at its turn.
    let later: Int
    /// Which operand folds the other in.
    let roles: (producer: Int, projection: Int)

    /// The folds of `graph` among the nodes a forward pass runs (`running`),
    /// keyed by the later operand: both operands made in this pass
    /// (not `given`), read once (`uses`) and not `kept`.
    static func find(in graph: Graph, running: (Int) -> Bool, given: Set<Int>, uses: [Int], kept: Set<Int>) -> [Int: ProjectionFold] {
        var folds: [Int: ProjectionFold] = [:]
        for (index, node) in graph.nodes.enumerated() where running(index) {
            guard let (earlier, later) = twoOperandAdd(node) else { continue }
            let free = { (i: Int) in !given.contains(i) && uses[i] == 1 && !kept.contains(i) }
            guard free(earlier), free(later) else { continue }
            let (first, second) = (graph.nodes[earlier].layer, graph.nodes[later].layer)
            let roles: (Int, Int)
            if (first as? FoldsPointwiseProjections)?.foldsPointwiseProjections == true, (second as? PointwiseProjecting)?.isPointwiseProjection == true {
                roles = (earlier, later)
            } else if (second as? FoldsPointwiseProjections)?.foldsPointwiseProjections == true, (first as? PointwiseProjecting)?.isPointwiseProjection == true {
                roles = (later, earlier)
            } else {
                continue
            }
            folds[later] = ProjectionFold(add: index, waiting: earlier, later: later, roles: roles)
        }
        return folds
    }

    /// The nodes the rule runs: the Add and both operands.
    var claimed: [Int] { [add, waiting, later] }

    /// Runs both operands as one pass and stores the sum for the Add; where the
    /// shapes do not fold, runs the waiting operand and then the later one as
    /// plain layers, as they would have run.
    /// - Throws: `EngineError` from the layers, naming the node.
    func run(_ state: inout ForwardState) throws {
        let started = state.startTimer()
        let (producer, projection) = roles
        let projector = state.graph.nodes[projection].layer as! PointwiseProjecting
        let folder = state.graph.nodes[producer].layer as! FoldsPointwiseProjections
        let term = try state.naming(projection) { try projector.pointwiseProjection(of: state.inputs(of: projection), mode: state.plan.modes[projection]) }
        let sum = try term.flatMap { term in
            try state.naming(producer) { try folder.forward(state.inputs(of: producer), mode: state.plan.modes[producer], plus: term.term) }
        }
        guard let term, let sum else {
            try state.run(waiting)
            try state.run(later)
            return
        }
        state.sums[add] = sum.output
        // Read by nothing but their Add, which has the sum.
        try state.finish(producer, LayerOutput(Tensor(zeros: [0]), cache: sum.cache))
        try state.finish(projection, LayerOutput(Tensor(zeros: [0]), cache: term.cache))
        state.record(producer, since: started)
    }
}
