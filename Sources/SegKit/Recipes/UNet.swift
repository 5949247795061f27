import SegKitEngine

/// U-Net building blocks shared by the pretrained-encoder and from-scratch U-Nets:
/// two 3x3 conv + ReLU (optional BatchNorm), and the 2x2 stride-2 transposed
/// convolution up, initialised as the recipe's `init` says (He normal, the
/// paper's; or Glorot uniform, Keras's default).
struct UNetBlocks {
    let graph: Graph
    /// Names new layers so that they never clash with imported ones.
    let canvas: DecoderCanvas
    let padding: Padding
    let batchNorm: Bool
    let initializer: Recipe.Init
    var rng: SeededGenerator

    /// A new kernel of `shape` ([kh, kw, in, out] for a convolution, [kh, kw, out, in] transposed).
    mutating func kernel(_ shape: [Int], fanIn: Int, fanOut: Int) -> Tensor {
        switch initializer {
        case .he: return Initializer.he(shape, fanIn: fanIn, &rng)
        case .glorot: return Initializer.glorot(shape, fanIn: fanIn, fanOut: fanOut, &rng)
        }
    }

    mutating func convPair(_ x: Int, filters: Int, name: String) throws -> Int {
        var x = x
        for part in ["a", "b"] {
            let cin = try graph.staticShapes()[x][3]!
            let conv = try Conv2D(name: canvas.uniqueName("\(name)_\(part)"), kernel: kernel([3, 3, cin, filters], fanIn: 9 * cin, fanOut: 9 * filters),
                                  bias: Tensor(zeros: [filters]), padding: padding, activation: batchNorm ? .linear : .relu())
            x = try graph.add(conv, inputs: [x])
            if batchNorm {
                x = try graph.add(BatchNormalization(name: canvas.uniqueName("\(name)_\(part)_bn"), channels: filters,
                                                     gamma: Tensor(repeating: 1, shape: [filters]), beta: Tensor(zeros: [filters])), inputs: [x])
                x = try graph.add(ActivationLayer(name: canvas.uniqueName("\(name)_\(part)_relu"), .relu(), kerasKind: "ReLU"), inputs: [x])
            }
        }
        return x
    }

    /// Up by `factor`: a factor x factor, stride-`factor` transposed convolution (2x2/2 in the paper).
    mutating func up(_ x: Int, filters: Int, factor: Int = 2, name: String) throws -> Int {
        let cin = try graph.staticShapes()[x][3]!
        // He's fan-in: the inputs one output sums over (a stride-k transposed k x k conv: k·k·cin taps of
        // which one per channel lands on each pixel, so the paper's √(2/(k²·cin)) as before); Glorot's
        // bound uses fan_in + fan_out and is the same whichever way round Keras counts them.
        let w = kernel([factor, factor, filters, cin], fanIn: factor * factor * cin, fanOut: factor * factor * filters)
        return try graph.add(Conv2DTranspose(name: canvas.uniqueName(name), kernel: w, bias: Tensor(zeros: [filters]),
                                             strides: (factor, factor), padding: .valid), inputs: [x])
    }

    mutating func classifier(_ x: Int, classes: Int) throws -> Int {
        let cin = try graph.staticShapes()[x][3]!
        return try graph.add(Conv2D(name: canvas.uniqueName("logits"), kernel: Initializer.glorot([1, 1, cin, classes], fanIn: cin, fanOut: classes, &rng),
                                    bias: Tensor(zeros: [classes])), inputs: [x])
    }
}

/// The classifier's convolutional part (head removed) as a U-Net encoder, every
/// imported layer up to the encoder's end kept: per stage (finest last), up by a
/// transposed convolution whose kernel and stride are the stages' stride ratio
/// (2x2/2 between stride-2 stages, 3x3/3 after a 3x3/3 pooling), the map and the
/// stage's features cropped to the pixels both cover, concatenated, two 3x3
/// conv + ReLU; a final 1x1 conv to the classes. The finest stage is the input's
/// resolution (the input image itself when no layer runs at stride 1).
struct PretrainedUNet {
    let recipe: Recipe
    let encoder: Graph
    let stages: [EncoderStage]

    func build() throws -> BuiltSegmenter {
        let shapes = try encoder.staticShapes()
        let head = try? ClassifierHead.find(in: encoder, shapes: shapes)
        // With `head: keep` the segmentation classes are the classifier's outputs.
        let ownClasses = head != nil ? (shapes[encoder.outputIndices[0]].last ?? nil) ?? 0 : 0
        guard let classes = recipe.classes ?? (ownClasses > 1 ? ownClasses : ownClasses == 1 ? 2 : nil) else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "give --classes K (the classifier's class count is unknown)")
        }
        let end = head?.encoderEnd ?? encoder.outputIndices[0]
        // The encoder: everything its end depends on; any input size.
        let needed = ancestors(of: [end], in: encoder)
        let (g, map) = try replay(encoder, include: { needed.contains($0) },
                                  inputShape: { s in [s[0]] + Array(repeating: nil, count: s.count - 2) + [s.last!] })
        let canvas = DecoderCanvas(graph: g, reference: try referenceInputSize(encoder))
        var taps = stages.filter { needed.contains($0.node) }
        if taps.first?.stride != 1 {
            let input = encoder.inputIndices[0]
            taps.insert(EncoderStage(stride: 1, node: input, name: encoder.nodes[input].name, height: canvas.reference.height,
                                     width: canvas.reference.width, channels: (shapes[input].last ?? nil) ?? 0, offsetRows: 0, offsetCols: 0,
                                     receptiveRows: 1, receptiveCols: 1), at: 0)
        }
        var x = map[end]!
        guard let deepest = try canvas.geometry(x).integerStride else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the encoder's last map has no integer stride")
        }
        var blocks = UNetBlocks(graph: g, canvas: canvas, padding: .same, batchNorm: recipe.batchNorm,
                                initializer: recipe.initializer, rng: SeededGenerator(seed: recipe.seed))
        var current = deepest
        for next in DecoderCanvas.ladder(from: deepest, stages: taps) {
            guard let stage = taps.first(where: { $0.stride == next }) else { continue }
            let filters = recipe.decoderFilters << log2(next)
            x = try blocks.up(x, filters: filters, factor: current / next, name: "up_s\(next)")
            let (up, skip) = try canvas.aligned(x, map[stage.node]!, name: "s\(next)")
            x = try g.add(Concatenate(name: canvas.uniqueName("concat_s\(next)")), inputs: [up, skip])
            x = try blocks.convPair(x, filters: filters, name: "dec_s\(next)")
            current = next
        }
        g.outputIndices = [try blocks.classifier(x, classes: classes)]
        return BuiltSegmenter(graph: g, recipe: recipe, classes: classes,
                              totalStride: leastCommonStride(try g.geometry(height: canvas.reference.height, width: canvas.reference.width)),
                              referenceSize: canvas.reference, stages: taps, output: "logits")
    }

    /// ⌊log₂ n⌋ for n ≥ 1.
    func log2(_ n: Int) -> Int { Int.bitWidth - 1 - n.leadingZeroBitCount }
}

/// The from-scratch U-Net (Ronneberger et al.): `depth` levels of two 3x3
/// conv + ReLU and a 2x2 max pooling, a bottleneck of twice the deepest level's
/// filters with dropout, 2x2 transposed convolutions up and concatenated skips
/// (cropped to size with `valid` padding, as in the paper), a 1x1 conv to K.
struct UNetScratch {
    let recipe: Recipe

    func build() throws -> BuiltSegmenter {
        guard let classes = recipe.classes, let channels = recipe.inputChannels else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "a from-scratch U-Net needs --classes K and --input-channels C")
        }
        let padding: Padding = recipe.padding == "valid" ? .valid : .same
        let g = Graph()
        var blocks = UNetBlocks(graph: g, canvas: DecoderCanvas(graph: g, reference: (1, 1)), padding: padding, batchNorm: recipe.batchNorm,
                                initializer: recipe.initializer, rng: SeededGenerator(seed: recipe.seed))
        let (crops, validSize) = padding == .valid ? try Self.validCrops(depth: recipe.depth) : ([Int](repeating: 0, count: recipe.depth), 0)
        var x = try g.addInput(name: "image", shape: [nil, nil, nil, channels])
        var skips: [Int] = []
        for level in 0..<recipe.depth {
            x = try blocks.convPair(x, filters: recipe.baseFilters << level, name: "enc\(level)")
            skips.append(x)
            x = try g.add(Pooling2D(name: "pool\(level)", .max, poolSize: (2, 2)), inputs: [x])
        }
        x = try blocks.convPair(x, filters: recipe.baseFilters << recipe.depth, name: "bottleneck")
        if recipe.dropout > 0 {
            x = try g.add(Dropout(name: "bottleneck_dropout", rate: recipe.dropout, seed: recipe.seed), inputs: [x])
        }
        for level in (0..<recipe.depth).reversed() {
            let filters = recipe.baseFilters << level
            x = try blocks.up(x, filters: filters, name: "up\(level)")
            var skip = skips[level]
            if crops[level] > 0 {
                let c = crops[level]
                skip = try g.add(Cropping2D(name: "crop\(level)", rows: (c, c), cols: (c, c)), inputs: [skip])
            }
            x = try g.add(Concatenate(name: "concat\(level)"), inputs: [x, skip])
            x = try blocks.convPair(x, filters: filters, name: "dec\(level)")
        }
        g.outputIndices = [try blocks.classifier(x, classes: classes)]
        // A valid-padding U-Net runs at sizes where every pooling sees an even map:
        // the size found below plus multiples of 2^depth.
        return BuiltSegmenter(graph: g, recipe: recipe, classes: classes, totalStride: 1 << recipe.depth,
                              referenceSize: padding == .valid ? (validSize, validSize) : nil, stages: [], output: "logits")
    }

    /// With unpadded convolutions each skip is larger than the upsampled map by a
    /// margin that does not depend on the input size (for sizes where every
    /// pooling sees an even size): found once by following a valid size through.
    /// Returns the crops per level and the smallest such size.
    static func validCrops(depth: Int) throws -> ([Int], Int) {
        for n in 16...4096 {
            var size = n
            var skipSizes: [Int] = []
            var ok = true
            for _ in 0..<depth {
                size -= 4
                if size <= 0 || size % 2 != 0 { ok = false; break }
                skipSizes.append(size)
                size /= 2
            }
            guard ok else { continue }
            size -= 4
            guard size > 0 else { continue }
            var crops = [Int](repeating: 0, count: depth)
            for level in (0..<depth).reversed() {
                size *= 2
                crops[level] = (skipSizes[level] - size) / 2
                size -= 4
            }
            return (crops, n)
        }
        throw RecipeError.invalid(recipe: "unet-scratch", message: "no input size suits a valid-padding U-Net of depth \(depth)")
    }
}
