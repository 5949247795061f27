/// A convolution into whose weights a following BatchNormalization's inference
/// map can be folded: Conv2D and DepthwiseConv2D, whose kernels both hold the
/// output channel on their last (flattened) axis.
protocol FoldsBatchNormalization: Layer {
    var kernel: Parameter { get }
    var bias: Parameter? { get }
    var activation: Activation { get }
    /// Channels of the output (the kernel's last flattened axis).
    var outputChannels: Int { get }

    /// activation(conv(x; kernel) + bias) in inference, with `kernel` (the
    /// layer's kernel shape) and `bias` (one value per output channel) in place
    /// of the layer's own.
    /// - Throws: `EngineError` when `x` does not fit the layer.
    func inferenceOutput(_ x: Tensor, kernel: Tensor, bias: [Float], activation: Activation) throws -> Tensor
}

/// A convolution that can read its input as if a ZeroPadding2D had padded it
/// (the zeros are never written): DepthwiseConv2D, whose kernel treats every
/// tap outside the input as zero.
protocol ReadsZeroPadding: FoldsBatchNormalization {
    /// `inferenceOutput` of `x` padded by `rows` (top, bottom) and `cols` (left, right).
    /// - Throws: `EngineError` when the padded `x` does not fit the layer.
    func inferenceOutput(_ x: Tensor, padding rows: (Int, Int), _ cols: (Int, Int), kernel: Tensor, bias: [Float],
                         activation: Activation) throws -> Tensor
}

/// A convolution whose folded output can take a residual's other operand in
/// the same pass: Conv2D (the last convolution of a ResNet or MobileNetV2 block).
protocol AddsResidual: FoldsBatchNormalization {
    /// activation(conv(x; kernel) + bias + addend) in inference: `inferenceOutput`
    /// with `addend` added to each chunk of the output before the activation,
    /// while the chunk is in cache; nil when `addend` does not have the
    /// output's shape (NHWC).
    /// - Throws: `EngineError` when `x` does not fit the layer.
    func inferenceOutput(_ x: Tensor, kernel: Tensor, bias: [Float], adding addend: Tensor, activation: Activation) throws -> Tensor?
}

/// The execution plan's rule for Conv → BatchNormalization (→ Add) (→ Activation), the
/// block every Keras Applications encoder is made of: where all of them run in
/// inference (prediction, or a frozen encoder during training, where no
/// gradient passes) and each feeds only the next, the normalization's map
/// y = γ·(z − μ)/√(σ² + ε) + β is folded into the convolution,
///
///     kernel' = kernel · s,  bias' = (bias − μ) · s + β,  s = γ / √(σ² + ε)
///
/// per output channel (Ioffe & Szegedy 2015's inference transform; TensorFlow's
/// and ONNX Runtime's graph optimisers do the same), and the activation runs on
/// each chunk of the output as it is made: one pass over the output instead of
/// three. A ZeroPadding2D before a depthwise convolution with `valid` padding
/// (MobileNet's and EfficientNet's stride-2 blocks) joins the chain too: the
/// kernel reads the unpadded input with the zeros as padding, so the padded
/// copy is never made. Where the normalization's output is one operand of a
/// two-operand Add whose other operand is made before the convolution runs (a
/// residual block's shortcut: ResNet's conv3 → BN → Add → ReLU, MobileNetV2's
/// projection → BN → Add), the sum is made in the same pass and the Add's
/// separate pass over the map goes. The file's weights are never changed: the folded ones are derived,
/// and remade when any of their parameters changes (`Parameter.version`).
struct BatchNormalizationFold {
    /// A ZeroPadding2D the convolution reads through, if any.
    let padding: Int?
    let convolution: Int
    let normalization: Int
    /// The residual Add the normalization's output goes into, and the Add's other operand (made earlier).
    let residual: (add: Int, addend: Int)?
    /// The activation layer the chain ends with, if any.
    let activation: Int?

    /// The node whose value the chain produces.
    var end: Int { activation ?? residual?.add ?? normalization }

    /// The nodes the chain runs besides its convolution, whose passes it makes unnecessary.
    var absorbed: [Int] { [padding, normalization, residual?.add, activation].compactMap { $0 } }

    /// The chains of `graph` among the nodes a forward pass runs, keyed by
    /// their convolution: each link read by the next alone (`uses` counts a
    /// node's readers in this pass), none kept or given, none of them claimed
    /// by another rule (`claimed`), all in inference (`runsInInference`).
    static func find(in graph: Graph, running: (Int) -> Bool, uses: [Int], kept: Set<Int>, claimed: Set<Int>,
                     runsInInference: (Int) -> Bool) -> [Int: BatchNormalizationFold] {
        var reader = [Int?](repeating: nil, count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() where running(index) {
            for input in node.inputs { reader[input] = index }
        }
        func linkable(_ i: Int) -> Bool { running(i) && !claimed.contains(i) && runsInInference(i) }
        func readOnlyBy(_ i: Int) -> Int? { uses[i] == 1 && !kept.contains(i) ? reader[i] : nil }
        var folds: [Int: BatchNormalizationFold] = [:]
        for (index, node) in graph.nodes.enumerated() {
            guard let conv = node.layer as? FoldsBatchNormalization, conv.activation == .linear, linkable(index),
                  let b = readOnlyBy(index), linkable(b), let bn = graph.nodes[b].layer as? BatchNormalization,
                  bn.channels == conv.outputChannels
            else { continue }
            var residual: (add: Int, addend: Int)?
            if conv is AddsResidual, let a = readOnlyBy(b), linkable(a), let merge = graph.nodes[a].layer as? ElementwiseMerge,
               merge.operation == .add, graph.nodes[a].inputs.count == 2,
               let addend = graph.nodes[a].inputs.first(where: { $0 != b }), addend < index,
               !claimed.contains(addend) {
                residual = (a, addend)
            }
            var activation: Int?
            if let a = readOnlyBy(residual?.add ?? b), linkable(a), graph.nodes[a].layer is ActivationLayer { activation = a }
            var padding: Int?
            if conv is ReadsZeroPadding, let p = node.inputs.first, graph.nodes[p].layer is ZeroPadding2D, linkable(p),
               readOnlyBy(p) == index { padding = p }
            folds[index] = BatchNormalizationFold(padding: padding, convolution: index, normalization: b, residual: residual,
                                                  activation: activation)
        }
        return folds
    }

    /// The node whose value the chain reads: the padding's input, or the convolution's.
    func source(in graph: Graph) -> Int { graph.nodes[padding ?? convolution].inputs[0] }

    /// The chain's output for its source's value `x` and, with a residual, the
    /// value of the Add's other operand `addend`.
    /// - Throws: `EngineError` when `x` does not fit the convolution, or the
    ///   Add's or the activation's layer rejects its inputs.
    func output(of x: Tensor, addend: Tensor?, in graph: Graph) throws -> Tensor {
        let conv = graph.nodes[convolution].layer as! FoldsBatchNormalization
        let bn = graph.nodes[normalization].layer as! BatchNormalization
        let weights = graph.foldedWeights.weights(for: self, conv: conv, bn: bn)
        let act = activation.map { (graph.nodes[$0].layer as! ActivationLayer).activation } ?? .linear
        if let padding, let pad = graph.nodes[padding].layer as? ZeroPadding2D, let reader = conv as? ReadsZeroPadding {
            return try reader.inferenceOutput(x, padding: pad.rows, pad.cols, kernel: weights.kernel, bias: weights.bias, activation: act)
        }
        guard let residual, let addend, let adder = conv as? AddsResidual else {
            return try conv.inferenceOutput(x, kernel: weights.kernel, bias: weights.bias, activation: act)
        }
        if let y = try adder.inferenceOutput(x, kernel: weights.kernel, bias: weights.bias, adding: addend, activation: act) { return y }
        // An Add that broadcasts: its own pass, in its operands' order.
        let z = try conv.inferenceOutput(x, kernel: weights.kernel, bias: weights.bias, activation: .linear)
        let operands = graph.nodes[residual.add].inputs.map { $0 == normalization ? z : addend }
        let sum = try graph.nodes[residual.add].layer.forward(operands, mode: .inference).output
        guard let activation else { return sum }
        return try graph.nodes[activation].layer.forward([sum], mode: .inference).output
    }
}

/// The folded kernels and biases of a graph's chains, each kept with the
/// versions of the parameters it was made from.
final class FoldedWeightCache {
    private struct Entry {
        var versions: [UInt64]
        var kernel: Tensor
        var bias: [Float]
    }
    private var entries: [Int: Entry] = [:]

    func weights(for fold: BatchNormalizationFold, conv: FoldsBatchNormalization, bn: BatchNormalization) -> (kernel: Tensor, bias: [Float]) {
        let sources = [conv.kernel, conv.bias, bn.gamma, bn.beta, bn.movingMean, bn.movingVariance]
        let versions = sources.map { $0.map { $0.version &+ 1 } ?? 0 }
        if let e = entries[fold.normalization], e.versions == versions { return (e.kernel, e.bias) }
        let (scale, shift) = bn.inferenceScaleAndShift()
        var kernel = conv.kernel.value
        let cout = scale.count
        kernel.scalars.withUnsafeMutableBufferPointer { k in
            var i = 0
            while i < k.count {
                for o in 0..<cout { k[i + o] *= scale[o] }
                i += cout
            }
        }
        let bias = conv.bias?.value.scalars ?? [Float](repeating: 0, count: cout)
        let folded = (0..<cout).map { bias[$0] * scale[$0] + shift[$0] }
        entries[fold.normalization] = Entry(versions: versions, kernel: kernel, bias: folded)
        return (kernel, folded)
    }
}

extension BatchNormalizationFold {
    /// Runs the chain at its convolution's turn: the chain's last node gets the value.
    /// - Throws: `EngineError` naming the convolution's node.
    func run(_ state: inout ForwardState) throws {
        let started = state.startTimer()
        let graph = state.graph
        let x = state.values[source(in: graph)]!
        let addend = residual.map { state.values[$0.addend]! }
        let y = try state.naming(convolution) { try output(of: x, addend: addend, in: graph) }
        state.record(convolution, since: started)
        // The links before the last are read by nothing but the next.
        let unread = LayerOutput(Tensor(zeros: [0]))
        if let padding { try state.finish(padding, unread) }
        try state.finish(convolution, unread)
        for node in [normalization, residual?.add, activation].compactMap({ $0 }) {
            try state.finish(node, node == end ? LayerOutput(y) : unread)
        }
    }
}
