import SegKitEngine

/// Builds a segmenter from a recipe: on an imported classifier (heatmap,
/// transposed, fcn, unet) or from scratch (unet-scratch).
public struct SegmenterBuilder {
    public var recipe: Recipe

    public init(recipe: Recipe) { self.recipe = recipe }

    public func build(classifier: Graph?) throws -> BuiltSegmenter {
        if recipe.decoder == .unetScratch { return try UNetScratch(recipe: recipe).build() }
        guard let classifier else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "it needs a classifier (--classifier MODEL)")
        }
        var source = classifier
        if let channels = recipe.inputChannels { source = try adaptInputChannels(source, to: channels) }
        freezeImported(source)
        let stages = try chosenStages(source)
        guard let deepest = stages.last else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the classifier has no encoder stages")
        }
        switch recipe.decoder {
        case .unet:
            return try PretrainedUNet(recipe: recipe, encoder: source, stages: stages).build()
        default:
            return try buildOnClassMap(source, stages: stages, stride: deepest.stride)
        }
    }

    /// Every imported layer is frozen, then the recipe's `unfreeze` names or top
    /// `stages` are made trainable again.
    func freezeImported(_ graph: Graph) {
        for l in graph.layers { l.isTrainable = false }
        for l in graph.layers where recipe.unfreeze.contains(l.name) { l.isTrainable = true }
        guard recipe.unfreezeStages > 0, let stages = try? encoderStages(graph), stages.count > 1 else { return }
        // The top N stages: every node after the tap that ends stage count-1-N.
        let boundary = stages[max(0, stages.count - 1 - recipe.unfreezeStages)].node
        for (i, node) in graph.nodes.enumerated() where i > boundary { node.layer.isTrainable = true }
    }

    func chosenStages(_ graph: Graph) throws -> [EncoderStage] {
        let detected = try encoderStages(graph)
        guard let names = recipe.stages else { return detected }
        let shapes = try graph.staticShapes()
        let input = shapes[graph.inputIndices[0]]
        return try names.map { name in
            guard let node = graph.index(of: name), let h = shapes[node][1], let w = shapes[node][2], let c = shapes[node][3],
                  let ih = input[1], ih % h == 0 else {
                throw RecipeError.incompatible(recipe: recipe.name, message: "stage layer '\(name)' is not a 4-D layer of the encoder at an integer stride")
            }
            return EncoderStage(stride: ih / h, node: node, name: name, height: h, width: w, channels: c)
        }
    }

    /// heatmap, transposed and fcn: the convolutionalized classifier's class map, then a decoder.
    func buildOnClassMap(_ classifier: Graph, stages: [EncoderStage], stride: Int) throws -> BuiltSegmenter {
        var fcn = try convolutionalize(classifier)
        // A Flatten head became a k×k `valid` convolution, whose map is k − 1 cells
        // smaller than 1/stride of the input; a decoder needs it aligned with the
        // encoder stages, so it gets `same` padding (each cell sees the window
        // around it; interior cells equal the classifier's windows, shifted).
        let deepestTap = fcn.index(of: stages.last!.name) ?? 0
        fcn = try replay(fcn, substitute: { i, node in
            guard i > deepestTap, let c = node.layer as? Conv2D, c.kernelSize != (1, 1), c.padding == .valid else { return nil }
            let same = try Conv2D(name: c.name, kernel: c.kernel.value, bias: c.bias?.value, strides: c.strides, padding: .same,
                                  dilation: c.dilation, groups: c.groups, activation: c.activation)
            same.isTrainable = c.isTrainable
            return same
        }).0
        let headOut = fcn.outputIndices[0]
        guard let headConv = fcn.nodes[headOut].layer as? Conv2D else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the classifier's head does not end in a Dense layer")
        }
        let ownClasses = headConv.filters
        let classes = recipe.classes ?? ownClasses
        let newHead = recipe.head == .new || classes != ownClasses
        let trainable = recipe.decoder != .heatmap
        if newHead && !trainable {
            throw RecipeError.incompatible(recipe: recipe.name,
                                          message: "a heatmap needs no training, so it keeps the classifier's \(ownClasses) classes (drop --classes/--head new)")
        }
        if newHead || trainable {
            // A new zero-initialised score layer replaces the last Dense, or the kept
            // one loses its softmax so the decoder works on class scores (logits).
            let replacement: Conv2D
            if newHead {
                let inChannels = headConv.kernel.value.shape[2]
                replacement = try Conv2D(name: headConv.name, kernel: Tensor(zeros: [1, 1, inChannels, classes]), bias: Tensor(zeros: [classes]))
            } else {
                replacement = try Conv2D(name: headConv.name, kernel: headConv.kernel.value, bias: headConv.bias?.value,
                                         activation: headConv.activation == .softmax ? .linear : headConv.activation)
                replacement.isTrainable = headConv.isTrainable
            }
            fcn = try replay(fcn, substitute: { i, _ in i == headOut ? replacement : nil }).0
        }
        var rng = SeededGenerator(seed: recipe.seed)
        let g = fcn
        var x = g.outputIndices[0]
        let stageNode = Dictionary(stages.map { ($0.stride, g.index(of: $0.name)!) }, uniquingKeysWith: { a, _ in a })
        switch recipe.decoder {
        case .heatmap:
            x = try g.add(UpSampling2D(name: "upsample_x\(stride)", size: (stride, stride),
                                       interpolation: recipe.upsampling == "nearest" ? .nearest : .bilinear), inputs: [x])
        case .transposed:
            guard stride & (stride - 1) == 0 else {
                throw RecipeError.incompatible(recipe: recipe.name, message: "the encoder's total stride \(stride) is not a power of two")
            }
            var s = stride
            var step = 1
            while s > 1 {
                s /= 2
                // Bilinear initialisation (for k = 3 the kernel [½, 1, ½]² per class is exact
                // linear interpolation): before training the decoder upsamples the class
                // scores, so it starts from the heatmap rather than from noise.
                let k = recipe.kernelSize
                let kernel = k >= 2 ? Initializer.bilinear(size: k, channels: classes)
                    : Initializer.glorot([k, k, classes, classes], fanIn: k * k * classes, fanOut: k * k * classes, &rng)
                let up = try Conv2DTranspose(name: "up\(step)", kernel: kernel, bias: Tensor(zeros: [classes]), strides: (2, 2), padding: .same)
                x = try g.add(up, inputs: [x])
                if recipe.skips, let tap = stageNode[s] {
                    let channels = try g.staticShapes()[tap][3]!
                    let project = try Conv2D(name: "proj\(s == 1 ? "_input" : "_s\(s)")", kernel: Tensor(zeros: [1, 1, channels, classes]), bias: Tensor(zeros: [classes]))
                    let p = try g.add(project, inputs: [tap])
                    x = try g.add(ElementwiseMerge(name: "skip\(step)", .add), inputs: [x, p])
                }
                step += 1
            }
        case .fcn:
            let fusions = ["32s": 0, "16s": 1, "8s": 2][recipe.fcn]!
            var s = stride
            for i in 0..<fusions {
                guard s % 2 == 0, let tap = stageNode[s / 2] else {
                    throw RecipeError.incompatible(recipe: recipe.name, message: "fcn-\(recipe.fcn) needs an encoder stage at 1/\(s / 2)")
                }
                x = try g.add(Conv2DTranspose(name: "upscore\(i + 1)", kernel: Initializer.bilinear(size: 4, channels: classes), bias: nil,
                                              strides: (2, 2), padding: .same), inputs: [x])
                let channels = try g.staticShapes()[tap][3]!
                let score = try g.add(Conv2D(name: "score_s\(s / 2)", kernel: Tensor(zeros: [1, 1, channels, classes]), bias: Tensor(zeros: [classes])),
                                      inputs: [tap])
                x = try g.add(ElementwiseMerge(name: "fuse_s\(s / 2)", .add), inputs: [x, score])
                s /= 2
            }
            if s > 1 {
                x = try g.add(Conv2DTranspose(name: "upscore_final", kernel: Initializer.bilinear(size: 2 * s, channels: classes), bias: nil,
                                              strides: (s, s), padding: .same), inputs: [x])
            }
        case .unet, .unetScratch:
            break
        }
        g.outputIndices = [x]
        return BuiltSegmenter(graph: g, recipe: recipe, classes: classes, totalStride: stride, stages: stages,
                              output: recipe.decoder == .heatmap ? "probabilities" : "logits")
    }

    /// Adapts the first convolution to data with another channel count: grey data
    /// on a colour classifier sums the kernel over its input channels (a grey image
    /// is R = G = B); colour data on a grey classifier spreads the kernel evenly
    /// over the channels (the same response to a grey image). Other pairs have no
    /// rule that keeps the classifier's meaning, and are refused.
    func adaptInputChannels(_ graph: Graph, to channels: Int) throws -> Graph {
        let input = graph.inputIndices[0]
        guard let declared = (graph.nodes[input].layer as? InputLayer)?.shape.last ?? nil else { return graph }
        if declared == channels { return graph }
        guard channels == 1 || declared == 1 else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "no rule adapts a \(declared)-channel classifier to \(channels)-channel data (only 1 ↔ C)")
        }
        // The first convolution, reached through layers that ignore the channel count.
        var node = input
        var first: Int?
        while first == nil {
            guard let next = graph.nodes.indices.first(where: { graph.nodes[$0].inputs.contains(node) }) else { break }
            let layer = graph.nodes[next].layer
            if layer is Conv2D { first = next; break }
            if let r = layer as? Rescaling, r.scale.count == 1, r.offset.count == 1 { node = next; continue }
            if layer is ZeroPadding2D { node = next; continue }
            break
        }
        guard let convNode = first, let conv = graph.nodes[convNode].layer as? Conv2D, conv.groups == 1 else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the classifier's first layer is not a convolution SegKit can adapt to \(channels) channels")
        }
        let k = conv.kernel.value
        let (kh, kw, cin, cout) = (k.shape[0], k.shape[1], k.shape[2], k.shape[3])
        var adapted = Tensor(zeros: [kh, kw, channels, cout])
        for t in 0..<(kh * kw) {
            for o in 0..<cout {
                if channels == 1 {
                    var sum: Float = 0
                    for c in 0..<cin { sum += k.scalars[(t * cin + c) * cout + o] }
                    adapted.scalars[t * cout + o] = sum
                } else {
                    for c in 0..<channels { adapted.scalars[(t * channels + c) * cout + o] = k.scalars[t * cout + o] / Float(channels) }
                }
            }
        }
        let replacement = try Conv2D(name: conv.name, kernel: adapted, bias: conv.bias?.value, strides: conv.strides, padding: conv.padding,
                                     dilation: conv.dilation, activation: conv.activation)
        return try replay(graph, substitute: { i, _ in i == convNode ? replacement : nil },
                          inputShape: { s in Array(s.dropLast()) + [channels] }).0
    }
}
