import SegKitSupport
import SegKitEngine

/// What went wrong rewriting a graph, naming the layer.
public enum SurgeryError: SegKitError, Equatable {
    /// The head is not one SegKit converts (how far the walk back from the output got).
    case noClassifierHead(String)
    /// A layer SegKit cannot convert or run at any input size, and why.
    case unsupported(layer: String, reason: String)
    /// A model with several outputs: which one is the classifier's must be chosen (`--output NAME`).
    case severalOutputs([String])
    /// `--output NAME` names no output of the model; `outputs` lists them.
    case noSuchOutput(String, outputs: [String])

    /// The message printed to the user, naming the layer or outputs.
    public var errorDescription: String? {
        switch self {
        case let .noClassifierHead(m): return "cannot convolutionalize: \(m)"
        case let .unsupported(layer, reason): return "cannot convolutionalize layer '\(layer)': \(reason)"
        case let .severalOutputs(names):
            return "the model has \(names.count) outputs (\(names.joined(separator: ", "))); choose the classifier's with --output NAME"
        case let .noSuchOutput(name, outputs):
            return "the model has no output '\(name)'; its outputs are \(outputs.joined(separator: ", "))"
        }
    }
}

/// The graph restricted to the output named `name` (a node name): a
/// multi-output model (main and auxiliary classifiers) becomes the classifier
/// one of them is. Layers are shared with `graph`.
///
/// - Throws: `SurgeryError.noSuchOutput` listing the outputs; `EngineError.graph`
///   from rebuilding the graph (not expected for a valid graph).
public func selectingOutput(_ graph: Graph, named name: String) throws -> Graph {
    let names = graph.outputIndices.map { graph.nodes[$0].name }
    guard let chosen = graph.outputIndices.first(where: { graph.nodes[$0].name == name }) else {
        throw SurgeryError.noSuchOutput(name, outputs: names)
    }
    let needed = ancestors(of: [chosen], in: graph)
    let (g, map) = try replay(graph, include: { needed.contains($0) })
    g.outputIndices = [map[chosen]!]
    return g
}

/// Refuses a graph a segmenter cannot be made of: a PReLU with a slope per pixel
/// (`shared_axes` not covering height and width: it runs at one input size), a
/// Permute that moves height and width (the maps after it would lie transposed
/// against the image).
///
/// - Throws: `SurgeryError.unsupported` naming the layer and the reason.
func requireAnyInputSize(_ graph: Graph) throws {
    for node in graph.nodes {
        if let p = node.layer as? Permute, p.dims.count == 3, p.dims != [1, 2, 3] {
            throw SurgeryError.unsupported(layer: node.name, reason: "Permute \(p.dims) moves the image's height and width: the maps after it lie transposed against the image")
        }
        if let p = node.layer as? PReLU, p.alpha.value.rank == 3, p.alpha.value.shape[0] != 1 || p.alpha.value.shape[1] != 1 {
            throw SurgeryError.unsupported(layer: node.name, reason: "PReLU has a slope per pixel (alpha \(p.alpha.value.shape)): it runs at one input size only; a segmenter needs shared_axes [1, 2]")
        }
    }
}

/// `graph` without the Resizing, CenterCrop and RandomCrop layers of its input
/// preprocessing (reached from the input through rescaling, normalisation and
/// augmentation layers only): a classifier trained at a fixed size resizes every
/// image to it, but a segmenter must see each image at its own size, pixel for
/// pixel, so it is fed the native size instead. Layers are shared; the input
/// takes any size (`[nil, nil, nil, C]`; a grey `(H, W)` input reshaped to
/// `(H, W, 1)` becomes a `[nil, nil, nil, 1]` input).
///
/// - Throws: `SurgeryError.unsupported` for a graph that runs at one size only
///   (`requireAnyInputSize`) or a rank-3 input not reshaped to `(H, W, 1)`;
///   `EngineError.graph` from rebuilding the graph (not expected for a valid graph).
public func withoutInputResizing(_ graph: Graph) throws -> Graph {
    guard graph.inputIndices.count == 1 else { return graph }
    try requireAnyInputSize(graph)
    var skipped: [Int: Int] = [:]    // a dropped node → the node it forwards
    var node = graph.inputIndices[0]
    // Grey images without a channel axis, (H, W) → Reshape((H, W, 1)): the segmenter
    // takes (H, W, 1) images of any size.
    var greyInput = false
    if let input = graph.nodes[node].layer as? InputLayer, input.shape.count == 3 {
        let consumers = graph.nodes.indices.filter { graph.nodes[$0].inputs.contains(node) }
        guard consumers.count == 1, let reshape = graph.nodes[consumers[0]].layer as? Reshape, let target = reshape.target,
              target.count == 3, target[2] == 1 else {
            throw SurgeryError.unsupported(layer: graph.nodes[node].name, reason: "a segmenter needs image input (H, W, C), or (H, W) reshaped to (H, W, 1) first")
        }
        skipped[consumers[0]] = node
        greyInput = true
        node = consumers[0]
    }
    while true {
        let consumers = graph.nodes.indices.filter { graph.nodes[$0].inputs.contains(node) }
        guard consumers.count == 1, let next = consumers.first else { break }
        let layer = graph.nodes[next].layer
        if layer is Resizing || layer is CenterCrop || (layer as? PassThrough)?.kerasClass == "RandomCrop" {
            skipped[next] = skipped[node] ?? node
        } else if !(layer is PassThrough || layer is Rescaling || layer is Normalization) {
            break
        }
        node = next
    }
    guard !skipped.isEmpty else { return graph }
    let g = Graph()
    var map: [Int: Int] = [:]
    for (i, n) in graph.nodes.enumerated() {
        if let input = n.layer as? InputLayer {
            var shape = input.shape
            for k in 1..<max(1, shape.count - 1) { shape[k] = nil }
            map[i] = try g.addInput(name: n.name, shape: greyInput ? [nil, nil, nil, 1] : shape)
        } else if let source = skipped[i] {
            map[i] = map[source]
        } else {
            map[i] = try g.add(n.layer, inputs: n.inputs.map { map[$0]! }, nodeName: n.name)
        }
    }
    g.outputIndices = graph.outputIndices.map { map[$0]! }
    return g
}

/// Every node `nodes` depend on, themselves included.
func ancestors(of nodes: [Int], in graph: Graph) -> Set<Int> {
    var needed = Set(nodes)
    for i in graph.nodes.indices.reversed() where needed.contains(i) { needed.formUnion(graph.nodes[i].inputs) }
    return needed
}

/// A classifier's head: the layers between its last spatial feature map and its
/// output, as Keras classifiers write them —
/// - global pooling (kept as a 1x1 map or not) or a Flatten, then any mix of Dense,
///   BatchNormalization, Dropout, activations, Reshapes of a 1x1 map and 1x1
///   convolutions on the pooled 1x1 map (Keras's MobileNet and MobileNetV3 tops);
/// - all-convolutional heads (a Conv2D with one filter per class, global pooling,
///   softmax): the map before the pooling is already the class map;
/// - Dense applied to a 4-D map.
struct ClassifierHead {
    enum Entry { case globalPooling(Int), flatten(Int), featureMap }
    /// The node whose output is the last 4-D feature map (the class map for
    /// all-convolutional heads).
    var featureNode: Int
    var entry: Entry
    /// Head nodes after the entry, up to the output, in order.
    var chain: [Int]
    /// Where the encoder ends: `featureNode`, or the input of an all-convolutional
    /// head's score convolution (decoders tap the features, not the class scores).
    var encoderEnd: Int
    /// An all-convolutional head's score convolution, whose node is `featureNode` or precedes it.
    var scoreConvolution: Int?

    /// Walks back from the graph's only output.
    ///
    /// - Throws: `SurgeryError.severalOutputs` for a multi-output model,
    ///   `SurgeryError.noClassifierHead` naming the layer where the walk stopped.
    static func find(in graph: Graph, shapes: [StaticShape]) throws -> ClassifierHead {
        guard graph.outputIndices.count == 1 else {
            throw SurgeryError.severalOutputs(graph.outputIndices.map { graph.nodes[$0].name })
        }
        func isOneByOne(_ node: Int) -> Bool {
            let s = shapes[node]
            return s.count == 2 || (s.count == 4 && s[1] == 1 && s[2] == 1)
        }
        // The head: every node from the output back over per-pixel layers on pooled
        // (1x1) values — a DAG where an activation like hard-swish multiplies two of them.
        func isHeadLayer(_ i: Int) -> Bool {
            let n = graph.nodes[i]
            switch n.layer {
            case is Dense:
                return n.inputs.count == 1
            case is Dropout, is ActivationLayer, is BatchNormalization, is LayerNormalization, is Rescaling:
                return isOneByOne(n.inputs[0])
            case let r as Reshape:
                // Reshapes between (C) and (1, 1, C), and Flatten of a 1x1 map.
                return isOneByOne(n.inputs[0]) && (r.target != nil || shapes[n.inputs[0]].count == 4)
            case let c as Conv2D:
                return c.kernelSize == (1, 1) && c.strides == (1, 1) && c.groups == 1 && isOneByOne(n.inputs[0])
                    && shapes[n.inputs[0]].count == 4
            case is ElementwiseMerge:
                return n.inputs.allSatisfy(isOneByOne)
            default:
                return false
            }
        }
        var head = Set<Int>()
        var boundary = Set<Int>()
        var pending = [graph.outputIndices[0]]
        while let i = pending.popLast() {
            guard !head.contains(i), !boundary.contains(i) else { continue }
            if isHeadLayer(i) {
                head.insert(i)
                pending += graph.nodes[i].inputs
            } else {
                boundary.insert(i)
            }
        }
        let chain = head.sorted()
        // A linear head whose walk ended on one node, or none: that node is the entry.
        guard boundary.count == 1, let node = boundary.first else {
            let names = boundary.sorted().map { "'\(graph.nodes[$0].name)' (\(graph.nodes[$0].layer.kind))" }
            throw SurgeryError.noClassifierHead("the head draws on \(names.joined(separator: ", ")); SegKit converts heads with one global pooling or Flatten entry")
        }
        let n = graph.nodes[node]
        if n.layer is GlobalPooling2D {
            var head = ClassifierHead(featureNode: n.inputs[0], entry: .globalPooling(node), chain: chain,
                                      encoderEnd: n.inputs[0], scoreConvolution: nil)
            if !chain.contains(where: { graph.nodes[$0].layer is Dense || graph.nodes[$0].layer is Conv2D }) {
                // No trainable layer after the pooling: the pooled map holds the class scores.
                head.scoreConvolution = scoreConvolution(before: n.inputs[0], in: graph)
                if let score = head.scoreConvolution { head.encoderEnd = graph.nodes[score].inputs[0] }
            }
            return head
        }
        if let reshape = n.layer as? Reshape, reshape.target == nil, shapes[n.inputs[0]].count == 4 {
            return ClassifierHead(featureNode: n.inputs[0], entry: .flatten(node), chain: chain, encoderEnd: n.inputs[0], scoreConvolution: nil)
        }
        if shapes[node].count == 4, chain.contains(where: { graph.nodes[$0].layer is Dense }) {
            return ClassifierHead(featureNode: node, entry: .featureMap, chain: chain, encoderEnd: node, scoreConvolution: nil)
        }
        throw SurgeryError.noClassifierHead(
            "the head leads back to '\(n.name)' (\(n.layer.kind), output \(describe(shapes[node]))), not to a global pooling or a Flatten of a 4-D feature map")
    }

    /// The convolution that makes an all-convolutional head's class map: reached
    /// from the pooled node back over BatchNormalization, activations and Dropout.
    static func scoreConvolution(before node: Int, in graph: Graph) -> Int? {
        var i = node
        while true {
            let n = graph.nodes[i]
            switch n.layer {
            case is Conv2D: return i
            case is BatchNormalization, is ActivationLayer, is Dropout: i = n.inputs[0]
            default: return nil
            }
        }
    }
}
