import SegKitEngine

/// Turns a classifier into a fully convolutional net that emits a class-score
/// map (Long et al.'s "convolutionalization", FCN §3.1):
/// - a global pooling before the head is removed and each Dense becomes a 1x1
///   Conv2D with the same weights (kernel (in, out) viewed as (1, 1, in, out));
/// - Flatten → Dense becomes a `valid` k×k Conv2D over the k×k feature map whose
///   kernel is the Dense kernel viewed as (k, k, C, out) — Flatten's channels-last
///   order is exactly HWIO's; later Dense layers become 1x1;
/// - a BatchNormalization right after a linear Dense is folded into its 1x1
///   convolution (w·γ/√(σ²+ε), (b−μ)·γ/√(σ²+ε)+β: the inference-mode identity);
///   other BatchNormalizations act per channel of the map as they did per unit;
/// - 1x1 convolutions on the pooled 1x1 map (Keras's MobileNet tops) apply at
///   every pixel; Reshapes between (C) and (1, 1, C) and Flatten of a 1x1 map go;
/// - an all-convolutional head (a score convolution, global pooling, softmax)
///   keeps its map: only the pooling goes;
/// - Dropout is dropped; activations (a final softmax included, now over the
///   channel axis) are kept.
/// The result takes any input size (NHWC `[N, H, W, C]` in, `[N, H', W', classes]`
/// out) and shares nothing with `graph`, which stays as it was: its layers are
/// copies (`Graph.copy()`), with the same weights and frozen flags.
///
/// - Throws: `SurgeryError` naming the layer SegKit cannot convert
///   (`.unsupported`, `.noClassifierHead`), or listing the outputs of a
///   multi-output model (`.severalOutputs`; pick one with `selectingOutput(_:named:)`);
///   `EngineError` from the graph's shapes or a converted layer's weights.
public func convolutionalize(_ graph: Graph) throws -> Graph {
    try ClassMapNet(graph.copy()).graph
}

/// A convolutionalized classifier and where its class scores are made.
struct ClassMapNet {
    let graph: Graph
    let head: ClassifierHead
    /// The node (in `graph`) of the last layer with weights that makes the class
    /// scores: a Conv2D (a converted Dense, a 1x1 head convolution or an
    /// all-convolutional head's score convolution).
    let scoreNode: Int?
    /// `source`'s node index → `graph`'s, for the encoder's nodes.
    let map: [Int: Int]

    init(_ classifier: Graph) throws {
        let source = try withoutInputResizing(classifier)
        let shapes = try source.staticShapes()
        let head = try ClassifierHead.find(in: source, shapes: shapes)
        let out = Graph()
        var map: [Int: Int] = [:]
        let encoder = ancestors(of: [head.featureNode], in: source)
        for (i, node) in source.nodes.enumerated() where encoder.contains(i) {
            if let input = node.layer as? InputLayer {
                var shape = input.shape
                for k in 1..<max(1, shape.count - 1) { shape[k] = nil }  // any spatial size
                map[i] = try out.addInput(name: node.name, shape: shape)
            } else {
                map[i] = try out.add(node.layer, inputs: node.inputs.map { map[$0]! }, nodeName: node.name)
            }
        }
        var current = map[head.featureNode]!
        var score = head.scoreConvolution.flatMap { map[$0] }
        var window: (Int, Int)? = nil
        if case .flatten = head.entry {
            let s = shapes[head.featureNode]
            guard let h = s[1], let w = s[2] else {
                throw SurgeryError.unsupported(layer: source.nodes[head.featureNode].name, reason: "Flatten's input has no fixed size")
            }
            window = (h, w)
        }
        // The head's nodes in order; each reads the new node of its inputs, the
        // pooled entry now being the feature map itself.
        var headMap: [Int: Int] = [:]
        switch head.entry {
        case let .globalPooling(p), let .flatten(p): headMap[p] = current
        case .featureMap: headMap[head.featureNode] = current
        }
        var folded = Set<Int>()
        for index in head.chain where !folded.contains(index) {
            let node = source.nodes[index]
            let inputs = node.inputs.map { headMap[$0]! }
            switch node.layer {
            case is Dropout, is Reshape:
                headMap[index] = inputs[0]
            case let dense as Dense:
                let inUnits = dense.kernel.value.shape[0]
                let (kh, kw) = window ?? (1, 1)
                let channels = inUnits / (kh * kw)
                guard channels * kh * kw == inUnits else {
                    throw SurgeryError.unsupported(layer: node.name, reason: "its \(inUnits) inputs are not a \(kh)x\(kw) window of channels")
                }
                var kernel = try dense.kernel.value.reshaped([kh, kw, channels, dense.units])
                var bias = dense.bias?.value
                // A BatchNormalization that alone reads a linear Dense is folded into it.
                let readers = head.chain.filter { source.nodes[$0].inputs.contains(index) }
                if readers.count == 1, let bn = source.nodes[readers[0]].layer as? BatchNormalization,
                   dense.activation == .linear, bn.channels == dense.units {
                    (kernel, bias) = Self.fold(bn, kernel: kernel, bias: bias)
                    folded.insert(readers[0])
                    headMap[readers[0]] = headMap[index]
                }
                let conv = try Conv2D(name: node.name, kernel: kernel, bias: bias, activation: dense.activation)
                current = try out.add(substitute(conv, for: dense), inputs: inputs, nodeName: node.name)
                headMap[index] = current
                if let f = folded.first(where: { source.nodes[$0].inputs.contains(index) }) { headMap[f] = current }
                score = current
                window = nil
            case let conv as Conv2D:
                current = try out.add(conv, inputs: inputs, nodeName: node.name)
                headMap[index] = current
                score = current
            default:
                current = try out.add(node.layer, inputs: inputs, nodeName: node.name)
                headMap[index] = current
            }
        }
        current = headMap[source.outputIndices[0]]!
        out.outputIndices = [current]
        self.graph = out
        self.head = head
        self.scoreNode = score
        self.map = map
    }

    /// A BatchNormalization (inference mode) after a linear layer, folded into
    /// that layer's kernel (..., out) and bias (out).
    static func fold(_ bn: BatchNormalization, kernel: Tensor, bias: Tensor?) -> (Tensor, Tensor) {
        let c = bn.channels
        var k = kernel
        var b = bias ?? Tensor(zeros: [c])
        for o in 0..<c {
            let gamma = bn.gamma?.value.scalars[o] ?? 1
            let scale = gamma / (bn.movingVariance.value.scalars[o] + bn.epsilon).squareRoot()
            for i in stride(from: o, to: k.count, by: c) { k.scalars[i] *= scale }
            b.scalars[o] = (b.scalars[o] - bn.movingMean.value.scalars[o]) * scale + (bn.beta?.value.scalars[o] ?? 0)
        }
        return (k, b)
    }
}
