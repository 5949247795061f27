import SegKitEngine

/// What went wrong rewriting a graph, naming the layer.
public enum SurgeryError: Error, Equatable, CustomStringConvertible {
    case noClassifierHead(String)
    case unsupported(layer: String, reason: String)

    public var description: String {
        switch self {
        case let .noClassifierHead(m): return "cannot convolutionalize: \(m)"
        case let .unsupported(layer, reason): return "cannot convolutionalize layer '\(layer)': \(reason)"
        }
    }
}

/// The classifier head: the chain of Dense (and Dropout / activation) layers that
/// ends at the model's output, and what feeds it.
struct ClassifierHead {
    enum Entry { case globalPooling(Int), flatten(Int), featureMap }
    /// The node whose output is the last 4-D feature map.
    var featureNode: Int
    var entry: Entry
    /// Head nodes from the first after the entry to the output, in order.
    var chain: [Int]

    /// Walks back from the output over Dense, Dropout and activation nodes.
    static func find(in graph: Graph, shapes: [StaticShape]) throws -> ClassifierHead {
        guard graph.outputIndices.count == 1 else {
            throw SurgeryError.noClassifierHead("the model has \(graph.outputIndices.count) outputs; a classifier has one")
        }
        var chain: [Int] = []
        var node = graph.outputIndices[0]
        while [Dense.self, Dropout.self, ActivationLayer.self].contains(where: { type(of: graph.nodes[node].layer) == $0 }) {
            chain.insert(node, at: 0)
            node = graph.nodes[node].inputs[0]
        }
        let n = graph.nodes[node]
        if let pool = n.layer as? GlobalPooling2D, !pool.keepDims {
            return ClassifierHead(featureNode: n.inputs[0], entry: .globalPooling(node), chain: chain)
        }
        if let reshape = n.layer as? Reshape, reshape.target == nil, shapes[n.inputs[0]].count == 4 {
            return ClassifierHead(featureNode: n.inputs[0], entry: .flatten(node), chain: chain)
        }
        if shapes[node].count == 4, chain.contains(where: { graph.nodes[$0].layer is Dense }) {
            return ClassifierHead(featureNode: node, entry: .featureMap, chain: chain)
        }
        throw SurgeryError.noClassifierHead(
            "the Dense head leads back to '\(n.name)' (\(n.layer.kind), output \(describe(shapes[node]))), not to a global pooling or a Flatten of a 4-D feature map")
    }
}

/// Turns a classifier into a fully convolutional net that emits a class-score
/// map (Long et al.'s "convolutionalization"):
/// - a global pooling before the head is removed and each Dense becomes a 1x1
///   Conv2D with the same weights (kernel (in, out) viewed as (1, 1, in, out));
/// - Flatten → Dense becomes a `valid` k×k Conv2D over the k×k feature map whose
///   kernel is the Dense kernel viewed as (k, k, C, out) — Flatten's channels-last
///   order is exactly HWIO's; later Dense layers become 1x1;
/// - Dense already applied to a 4-D tensor becomes an explicit 1x1 Conv2D;
/// - Dropout is dropped; activations (a final softmax included, now over the
///   channel axis) are kept.
/// The result takes any input size; the encoder's layers (and their weights and
/// frozen flags) are shared with `graph`, not copied.
public func convolutionalize(_ graph: Graph) throws -> Graph {
    let shapes = try graph.staticShapes()
    let head = try ClassifierHead.find(in: graph, shapes: shapes)
    let out = Graph()
    var map: [Int: Int] = [:]
    // The encoder: everything the feature node depends on, in order.
    var needed = Set<Int>([head.featureNode])
    for i in graph.nodes.indices.reversed() where needed.contains(i) { needed.formUnion(graph.nodes[i].inputs) }
    for (i, node) in graph.nodes.enumerated() where needed.contains(i) {
        if let input = node.layer as? InputLayer {
            var shape = input.shape
            for k in 1..<(shape.count - 1) { shape[k] = nil }  // any spatial size
            map[i] = try out.addInput(name: node.name, shape: shape)
        } else {
            map[i] = try out.add(node.layer, inputs: node.inputs.map { map[$0]! }, nodeName: node.name)
        }
    }
    var current = map[head.featureNode]!
    var flattenedWindow: (Int, Int)? = nil
    if case .flatten = head.entry {
        let s = shapes[head.featureNode]
        guard let h = s[1], let w = s[2] else {
            throw SurgeryError.unsupported(layer: graph.nodes[head.featureNode].name, reason: "Flatten's input has no fixed size")
        }
        flattenedWindow = (h, w)
    }
    for index in head.chain {
        let node = graph.nodes[index]
        switch node.layer {
        case is Dropout:
            continue
        case let dense as Dense:
            let inUnits = dense.kernel.value.shape[0]
            let window = flattenedWindow ?? (1, 1)
            let channels = inUnits / (window.0 * window.1)
            guard channels * window.0 * window.1 == inUnits else {
                throw SurgeryError.unsupported(layer: node.name, reason: "its \(inUnits) inputs are not a \(window.0)x\(window.1) window of channels")
            }
            let kernel = try dense.kernel.value.reshaped([window.0, window.1, channels, dense.units])
            let conv = try Conv2D(name: node.name, kernel: kernel, bias: dense.bias?.value, activation: dense.activation)
            conv.isTrainable = dense.isTrainable
            current = try out.add(conv, inputs: [current], nodeName: node.name)
            flattenedWindow = nil
        default:
            current = try out.add(node.layer, inputs: [current], nodeName: node.name)
        }
    }
    out.outputIndices = [current]
    return out
}
