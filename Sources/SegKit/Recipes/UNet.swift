import SegKitEngine

/// U-Net building blocks shared by the pretrained-encoder and from-scratch U-Nets:
/// two 3x3 conv + ReLU (He-initialised, optional BatchNorm), and the 2x2
/// stride-2 transposed convolution up.
struct UNetBlocks {
    let graph: Graph
    let padding: Padding
    let batchNorm: Bool
    var rng: SeededGenerator

    mutating func convPair(_ x: Int, filters: Int, name: String) throws -> Int {
        var x = x
        for part in ["a", "b"] {
            let cin = try graph.staticShapes()[x][3]!
            let conv = try Conv2D(name: "\(name)_\(part)", kernel: Initializer.he([3, 3, cin, filters], fanIn: 9 * cin, &rng),
                                  bias: Tensor(zeros: [filters]), padding: padding, activation: batchNorm ? .linear : .relu())
            x = try graph.add(conv, inputs: [x])
            if batchNorm {
                x = try graph.add(BatchNormalization(name: "\(name)_\(part)_bn", channels: filters,
                                                     gamma: Tensor(repeating: 1, shape: [filters]), beta: Tensor(zeros: [filters])), inputs: [x])
                x = try graph.add(ActivationLayer(name: "\(name)_\(part)_relu", .relu(), kerasKind: "ReLU"), inputs: [x])
            }
        }
        return x
    }

    mutating func up(_ x: Int, filters: Int, name: String) throws -> Int {
        let cin = try graph.staticShapes()[x][3]!
        let kernel = Initializer.he([2, 2, filters, cin], fanIn: 4 * cin, &rng)
        return try graph.add(Conv2DTranspose(name: name, kernel: kernel, bias: Tensor(zeros: [filters]), strides: (2, 2), padding: .valid), inputs: [x])
    }

    mutating func classifier(_ x: Int, classes: Int) throws -> Int {
        let cin = try graph.staticShapes()[x][3]!
        return try graph.add(Conv2D(name: "logits", kernel: Initializer.glorot([1, 1, cin, classes], fanIn: cin, fanOut: classes, &rng),
                                    bias: Tensor(zeros: [classes])), inputs: [x])
    }
}

/// The classifier's convolutional part (head removed) as a U-Net encoder: per
/// stage, up by a 2x2 transposed convolution, concatenate the stage's features,
/// two 3x3 conv + ReLU; a final 1x1 conv to the classes.
struct PretrainedUNet {
    let recipe: Recipe
    let encoder: Graph
    let stages: [EncoderStage]

    func build() throws -> BuiltSegmenter {
        let deepest = stages.last!
        let shapes = try encoder.staticShapes()
        // With `head: keep` the segmentation classes are the classifier's outputs.
        let hasHead = (try? ClassifierHead.find(in: encoder, shapes: shapes)) != nil
        let ownClasses = hasHead ? (shapes[encoder.outputIndices[0]].last ?? nil) ?? 0 : 0
        guard let classes = recipe.classes ?? (ownClasses > 1 ? ownClasses : nil) else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "give --classes K (the classifier's class count is unknown)")
        }
        // The encoder: everything the deepest tap depends on; any input size.
        var needed = Set([deepest.node])
        for i in encoder.nodes.indices.reversed() where needed.contains(i) { needed.formUnion(encoder.nodes[i].inputs) }
        let (g, map) = try replay(encoder, include: { needed.contains($0) },
                                  inputShape: { s in [s[0]] + Array(repeating: nil, count: s.count - 2) + [s.last!] })
        var blocks = UNetBlocks(graph: g, padding: .same, batchNorm: recipe.batchNorm, rng: SeededGenerator(seed: recipe.seed))
        var x = map[deepest.node]!
        for stage in stages.dropLast().reversed() {
            let previous = stages.first { $0.stride > stage.stride && $0.stride <= stage.stride * 2 }!
            guard previous.stride == stage.stride * 2 else {
                throw RecipeError.incompatible(recipe: recipe.name, message: "stages 1/\(stage.stride) and 1/\(previous.stride) are not a factor 2 apart")
            }
            let filters = recipe.decoderFilters << max(0, stage.stride.trailingZeroBitCount)
            x = try blocks.up(x, filters: filters, name: "up_s\(stage.stride)")
            x = try g.add(Concatenate(name: "concat_s\(stage.stride)"), inputs: [x, map[stage.node]!])
            x = try blocks.convPair(x, filters: filters, name: "dec_s\(stage.stride)")
        }
        guard stages.first?.stride == 1 else {
            throw RecipeError.incompatible(recipe: recipe.name, message: "the finest encoder stage is at 1/\(stages.first!.stride), not the input size")
        }
        g.outputIndices = [try blocks.classifier(x, classes: classes)]
        return BuiltSegmenter(graph: g, recipe: recipe, classes: classes, totalStride: deepest.stride, stages: stages, output: "logits")
    }
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
        var blocks = UNetBlocks(graph: g, padding: padding, batchNorm: recipe.batchNorm, rng: SeededGenerator(seed: recipe.seed))
        let crops = padding == .valid ? try Self.validCrops(depth: recipe.depth) : [Int](repeating: 0, count: recipe.depth)
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
        return BuiltSegmenter(graph: g, recipe: recipe, classes: classes, totalStride: 1 << recipe.depth, stages: [], output: "logits")
    }

    /// With unpadded convolutions each skip is larger than the upsampled map by a
    /// margin that does not depend on the input size (for sizes where every
    /// pooling sees an even size): found once by following a valid size through.
    static func validCrops(depth: Int) throws -> [Int] {
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
            return crops
        }
        throw RecipeError.invalid(recipe: "unet-scratch", message: "no input size suits a valid-padding U-Net of depth \(depth)")
    }
}
