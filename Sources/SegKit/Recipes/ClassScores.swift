import SegKitEngine

/// The class-score map a heatmap, transposed or FCN decoder starts from: the
/// convolutionalized classifier with its score layer kept (`head: keep`) or
/// replaced by a zero-initialised one (`head: new`, or another class count), and
/// its final softmax dropped where a decoder is trained (the decoder works on
/// class scores, the loss applies the softmax).
///
/// A Flatten head's k×k convolution gets `same` padding: its `valid` map would be
/// k − 1 cells smaller than the encoder's, and each cell now sees the window
/// around it (interior cells equal the classifier's windows, shifted).
///
/// A single sigmoid unit (a binary classifier) becomes two classes, 0 = negative
/// and 1 = positive: its score z becomes the pair (0, z), whose softmax is
/// (1 − σ(z), σ(z)) — the classifier's own probability, and a map `eval` scores
/// with argmax (positive where z > 0) like any other.
struct ClassScores {
    let graph: Graph
    let output: Int
    let classes: Int
    /// Whether `output` holds probabilities (a heatmap of a softmax or sigmoid classifier).
    let isProbability: Bool

    init(_ classifier: Graph, recipe: Recipe) throws {
        let net = try ClassMapNet(classifier)
        let source = net.graph
        let featureNode = net.map[net.head.featureNode]!
        let scoreNode = net.scoreNode ?? featureNode
        let scoreConv = net.scoreNode.flatMap { source.nodes[$0].layer as? Conv2D }
        // The layers after the score layer: activations, BatchNormalization, Dropout.
        let toOutput = ancestors(of: source.outputIndices, in: source)
        let tail = Array(source.nodes.indices.filter { $0 > scoreNode && toOutput.contains($0) })
        for t in tail where source.nodes[t].inputs.count != 1 || !(source.nodes[t].layer is ActivationLayer || source.nodes[t].layer is BatchNormalization) {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the classifier's head has '\(source.nodes[t].name)' (\(source.nodes[t].layer.kind)) after its score layer; SegKit converts heads whose score layer is followed only by activations and BatchNormalization")
        }
        let finalActivations = tail.compactMap { (source.nodes[$0].layer as? ActivationLayer)?.activation } + (scoreConv.map { [$0.activation] } ?? [])
        let ownClasses = try source.staticShapes()[scoreNode].last.flatMap { $0 } ?? 0
        let binary = ownClasses == 1 && finalActivations.contains(.sigmoid)
        if ownClasses == 1 && !binary && recipe.head == .keep && recipe.classes == nil {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the classifier has one output unit without a sigmoid; give --classes K and --head new")
        }
        let own = binary ? 2 : ownClasses
        let classes = recipe.classes ?? own
        let newHead = recipe.head == .new || classes != own
        let heatmap = recipe.decoder == .heatmap
        if newHead && heatmap {
            throw RecipeError.incompatible(recipe: recipe.name,
                                          message: "a heatmap needs no training, so it keeps the classifier's \(own) classes (drop --classes/--head new)")
        }
        // The score layer as the recipe wants it.
        func dropProbability(_ a: Activation) -> Activation { a == .softmax || a == .sigmoid ? .linear : a }
        var replacement: Conv2D?
        if let conv = scoreConv {
            let k = conv.kernel.value
            var kernel = k, bias = conv.bias?.value
            var activation = heatmap ? conv.activation : dropProbability(conv.activation)
            if newHead {
                kernel = Tensor(zeros: [k.shape[0], k.shape[1], k.shape[2], classes])
                bias = Tensor(zeros: [classes])
                activation = .linear
            } else if binary {
                kernel = Tensor(zeros: [k.shape[0], k.shape[1], k.shape[2], 2])
                for i in 0..<(k.count) { kernel.scalars[2 * i + 1] = k.scalars[i] }
                bias = Tensor(zeros: [2])
                bias!.scalars[1] = conv.bias?.value.scalars[0] ?? 0
                activation = heatmap && conv.activation == .sigmoid ? .softmax : .linear
            }
            let r = try Conv2D(name: conv.name, kernel: kernel, bias: bias, strides: conv.strides,
                               padding: conv.kernelSize != (1, 1) && scoreNode > featureNode ? .same : conv.padding,
                               dilation: conv.dilation, groups: newHead || binary ? 1 : conv.groups, activation: activation)
            replacement = r
        }
        // The head's k×k convolutions (a Flatten head) get `same` padding.
        let toScore = ancestors(of: [scoreNode], in: source)
        let (g, map) = try replay(source, include: { toScore.contains($0) }, substitute: { i, node in
            if i == scoreNode { return replacement }
            guard i > featureNode, let c = node.layer as? Conv2D, c.kernelSize != (1, 1), c.padding == .valid else { return nil }
            let same = try Conv2D(name: c.name, kernel: c.kernel.value, bias: c.bias?.value, strides: c.strides, padding: .same,
                                  dilation: c.dilation, groups: c.groups, activation: c.activation)
            return same
        })
        // A new head starts from zeros: it trains whatever the classifier's layer was.
        if newHead { replacement?.isTrainable = true }
        var x = map[scoreNode]!
        if scoreConv == nil && newHead {
            let conv = try Conv2D(name: DecoderCanvas(graph: g, reference: (1, 1)).uniqueName("segmentation_scores"),
                                  kernel: Tensor(zeros: [1, 1, ownClasses, classes]), bias: Tensor(zeros: [classes]))
            x = try g.add(conv, inputs: [x])
        }
        var probability = heatmap && finalActivations.contains(where: { $0 == .softmax || $0 == .sigmoid })
        if !newHead {
            for t in tail {
                let node = source.nodes[t]
                if let a = node.layer as? ActivationLayer, a.activation == .softmax || a.activation == .sigmoid {
                    guard heatmap else { continue }
                    // A sigmoid on a binary head's pair (0, z) is the pair's softmax.
                    let layer = binary ? ActivationLayer(name: a.name, .softmax, kerasKind: "Activation") : a
                    x = try g.add(layer, inputs: [x], nodeName: node.name)
                } else {
                    if binary {
                        throw RecipeError.incompatible(recipe: recipe.name, message: "the binary head's '\(node.name)' (\(node.layer.kind)) acts on its one unit; SegKit cannot make it two classes")
                    }
                    x = try g.add(node.layer, inputs: [x], nodeName: node.name)
                }
            }
        } else {
            probability = false
        }
        g.outputIndices = [x]
        self.graph = g
        self.output = x
        self.classes = classes
        self.isProbability = probability
    }
}

/// The segmentation classes a classifier's own head gives: its output units, or
/// 2 for a single sigmoid unit (negative, positive).
///
/// - Throws: `SurgeryError` when the model has no classifier head SegKit reads
///   (`.noClassifierHead`, `.unsupported`, `.severalOutputs`); `EngineError`
///   from the graph's shapes.
public func segmentationClasses(of classifier: Graph) throws -> Int {
    let net = try ClassMapNet(classifier)
    let node = net.scoreNode ?? net.map[net.head.featureNode]!
    let units = (try net.graph.staticShapes()[node].last ?? nil) ?? 0
    return units == 1 ? 2 : units
}
