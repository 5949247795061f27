import SegKitEngine

/// Builds a segmenter from a recipe: on an imported classifier (heatmap,
/// transposed, fcn, unet) or from scratch (unet-scratch).
public struct SegmenterBuilder {
    /// The recipe every `build` follows.
    public var recipe: Recipe

    /// A builder for `recipe`; nothing is checked until `build`.
    public init(recipe: Recipe) { self.recipe = recipe }

    /// The segmenter for `classifier` (nil only for unet-scratch). Every imported
    /// layer is kept and frozen (but those the recipe unfreezes). The segmenter
    /// is built on a copy (`Graph.copy()`): `classifier` is not changed, and one
    /// import can serve any number of builds. The result maps NHWC images
    /// `[N, H, W, C]` to scores `[N, H, W, classes]` (logits, or probabilities for a
    /// heatmap of a softmax head).
    ///
    /// - Throws: `RecipeError.incompatible` with the reason when the recipe does
    ///   not apply (no classifier given, no encoder stages, a stage name that is
    ///   not a stage, a head SegKit cannot convert names its layer, no channel
    ///   rule for `input_channels`, no class count); `RecipeError.invalid` when no
    ///   input size suits a `valid` unet-scratch; `SurgeryError` for a model with
    ///   several outputs and no `output` chosen (`.severalOutputs`), an `output`
    ///   that is not one (`.noSuchOutput`), or a classifier that cannot be
    ///   converted (`.unsupported`, `.noClassifierHead`); `EngineError` from the
    ///   graph and the new layers' shapes.
    public func build(classifier: Graph?) throws -> BuiltSegmenter {
        if recipe.decoder == .unetScratch { return try UNetScratch(recipe: recipe).build() }
        guard var source = try classifier?.copy() else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "it needs a classifier (--classifier MODEL)")
        }
        if let output = recipe.output { source = try selectingOutput(source, named: output) }
        source = try withoutInputResizing(source)
        if source.outputIndices.count > 1 {
            throw SurgeryError.severalOutputs(source.outputIndices.map { source.nodes[$0].name })
        }
        if let channels = recipe.inputChannels { source = try adaptInputChannels(source, to: channels) }
        freezeImported(source)
        let stages = try chosenStages(source)
        guard !stages.isEmpty else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the classifier has no encoder stages")
        }
        switch recipe.decoder {
        case .unet:
            return try PretrainedUNet(recipe: recipe, encoder: source, stages: stages).build()
        default:
            return try buildOnClassMap(source, stages: stages)
        }
    }

    /// Every imported layer is frozen, then the recipe's `unfreeze` names or top
    /// `stages` are made trainable again. `graph` is the builder's own copy.
    func freezeImported(_ graph: Graph) {
        for l in graph.layers { l.isTrainable = false }
        for l in graph.layers where recipe.unfreeze.contains(l.name) { l.isTrainable = true }
        guard recipe.unfreezeStages > 0, let stages = try? encoderStages(graph), stages.count > 1 else { return }
        // The top N stages: every node after the tap that ends stage count-1-N.
        let boundary = stages[max(0, stages.count - 1 - recipe.unfreezeStages)].node
        for (i, node) in graph.nodes.enumerated() where i > boundary { node.layer.isTrainable = true }
    }

    /// The detected stages, or those the recipe names (finest first).
    func chosenStages(_ graph: Graph) throws -> [EncoderStage] {
        let detected = try encoderStages(graph)
        guard let names = recipe.stages else { return detected }
        let size = try referenceInputSize(graph)
        let geometry = try graph.geometry(height: size.height, width: size.width)
        let shapes = try graph.staticShapes()
        return try names.map { name in
            guard let node = graph.index(of: name), let g = geometry[node], let stride = g.integerStride, let c = shapes[node].last ?? nil else {
                throw RecipeError.incompatible(recipe: recipe.name, message: "stage layer '\(name)' is not a 4-D layer of the encoder at an integer stride")
            }
            return EncoderStage(stride: stride, node: node, name: name, height: g.rows.size, width: g.cols.size, channels: c,
                                offsetRows: g.rows.offset, offsetCols: g.cols.offset,
                                receptiveRows: g.rows.receptiveField, receptiveCols: g.cols.receptiveField)
        }
    }

    /// heatmap, transposed and fcn: the convolutionalized classifier's class map, then a decoder.
    func buildOnClassMap(_ classifier: Graph, stages: [EncoderStage]) throws -> BuiltSegmenter {
        let scores = try ClassScores(classifier, recipe: recipe)
        let classes = scores.classes
        let g = scores.graph
        let canvas = DecoderCanvas(graph: g, reference: try referenceInputSize(classifier))
        var x = scores.output
        guard let stride = try canvas.geometry(x).integerStride else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the class map's stride is not one integer on both axes")
        }
        var rng = SeededGenerator(seed: recipe.seed)
        let stageNode = Dictionary(stages.map { ($0.stride, g.index(of: $0.name)!) }, uniquingKeysWith: { a, _ in a })
        /// A Conv2DTranspose by `factor`, bilinear-initialised (kernel 2f − f mod 2, FCN's `upsample_filt`), `same` padding.
        func upsample(_ x: Int, factor: Int, kernel k: Int? = nil, name: String, bias: Bool) throws -> Int {
            let size = k ?? (2 * factor - factor % 2)
            let up = try Conv2DTranspose(name: canvas.uniqueName(name), kernel: Initializer.bilinear(size: size, channels: classes),
                                         bias: bias ? Tensor(zeros: [classes]) : nil, strides: (factor, factor), padding: .same)
            return try g.add(up, inputs: [x])
        }
        /// `x` plus a zero-initialised 1x1 projection of the stage tap at `s`, aligned.
        func fuse(_ x: Int, tap: Int, projection: String, sum: String) throws -> Int {
            let project = try Conv2D(name: canvas.uniqueName(projection), kernel: Tensor(zeros: [1, 1, try canvas.channels(tap), classes]),
                                     bias: Tensor(zeros: [classes]))
            let p = try g.add(project, inputs: [tap])
            let (a, b) = try canvas.aligned(x, p, name: sum)
            return try g.add(ElementwiseMerge(name: canvas.uniqueName(sum), .add), inputs: [a, b])
        }
        switch recipe.decoder {
        case .heatmap:
            if stride > 1 {
                x = try g.add(UpSampling2D(name: canvas.uniqueName("upsample_x\(stride)"), size: (stride, stride),
                                           interpolation: recipe.upsampling == "nearest" ? .nearest : .bilinear), inputs: [x])
            }
        case .transposed:
            var current = stride
            for (step, next) in DecoderCanvas.ladder(from: stride, stages: stages).enumerated() {
                let factor = current / next
                // For k = 3 and factor 2 the bilinear kernel [½, 1, ½]² per class is exact linear
                // interpolation: before training the decoder upsamples the class scores, so it
                // starts from the heatmap rather than from noise.
                let k = factor == 2 ? recipe.kernelSize : 2 * factor - factor % 2
                if k >= 2 {
                    x = try upsample(x, factor: factor, kernel: k, name: "up\(step + 1)", bias: true)
                } else {
                    let kernel = Initializer.glorot([k, k, classes, classes], fanIn: k * k * classes, fanOut: k * k * classes, &rng)
                    x = try g.add(Conv2DTranspose(name: canvas.uniqueName("up\(step + 1)"), kernel: kernel, bias: Tensor(zeros: [classes]),
                                                  strides: (factor, factor), padding: .same), inputs: [x])
                }
                if recipe.skips, let tap = stageNode[next] {
                    x = try fuse(x, tap: tap, projection: "proj\(next == 1 ? "_input" : "_s\(next)")", sum: "skip\(step + 1)")
                }
                current = next
            }
        case .fcn:
            let fusions = ["32s": 0, "16s": 1, "8s": 2][recipe.fcn]!
            let ladder = DecoderCanvas.ladder(from: stride, stages: stages).filter { stageNode[$0] != nil }
            guard ladder.count >= fusions else {
                throw RecipeError.incompatible(recipe: recipe.name,
                    message: "fcn-\(recipe.fcn) fuses \(fusions) finer stage(s), and the encoder has \(ladder.count) below its 1/\(stride) class map")
            }
            var current = stride
            for (i, next) in ladder.prefix(fusions).enumerated() {
                x = try upsample(x, factor: current / next, name: "upscore\(i + 1)", bias: false)
                x = try fuse(x, tap: stageNode[next]!, projection: "score_s\(next)", sum: "fuse_s\(next)")
                current = next
            }
            if current > 1 { x = try upsample(x, factor: current, name: "upscore_final", bias: false) }
        case .unet, .unetScratch:
            break
        }
        g.outputIndices = [x]
        return BuiltSegmenter(graph: g, recipe: recipe, classes: classes, totalStride: leastCommonStride(try g.geometry(height: canvas.reference.height, width: canvas.reference.width)),
                              referenceSize: canvas.reference, stages: stages, output: scores.isProbability ? "probabilities" : "logits")
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
