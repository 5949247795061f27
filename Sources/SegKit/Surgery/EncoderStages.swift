import SegKitEngine

/// One resolution level of an encoder: the last node at an output stride that
/// every path from the input to the encoder's end passes through (a block's
/// output, never a layer inside a residual or Inception branch), the tap a
/// decoder's skip connection reads.
public struct EncoderStage: Equatable, Sendable {
    /// Output stride: input pixels per pixel of the stage's map (any integer ≥ 1).
    public let stride: Int
    /// The stage's node index in the graph the stages were found in.
    public let node: Int
    /// That node's name (the layer a recipe's `stages:` names).
    public let name: String
    /// Shape at the reference input size (batch omitted).
    public let height: Int, width: Int, channels: Int
    /// Input coordinate (pixels) of the centre of the map's pixel (0, 0): FCN's offset.
    public let offsetRows: Double, offsetCols: Double
    /// Input pixels one of the map's pixels sees (rows x columns).
    public let receptiveRows: Int, receptiveCols: Int
}

/// The input size at which SegKit lays a decoder onto an encoder: the smallest
/// size ≥ the declared one (≥ 32 for a fully convolutional classifier), searched
/// up to 511 pixels further per axis, at which every strided layer of the graph
/// divides its input exactly, so that every stage's map covers the whole input.
/// Sizes this many total strides apart give the same alignment, so decoders
/// built here run at any of them. In pixels, (height, width).
///
/// - Throws: `SurgeryError.unsupported` when the graph has not exactly one NHWC
///   (rank-4) image input.
public func referenceInputSize(_ graph: Graph) throws -> (height: Int, width: Int) {
    guard graph.inputIndices.count == 1, let input = graph.nodes[graph.inputIndices[0]].layer as? InputLayer, input.shape.count == 4 else {
        throw SurgeryError.unsupported(layer: "input", reason: "a segmenter needs a model with one NHWC image input")
    }
    let declared = (input.shape[1] ?? 32, input.shape[2] ?? 32)
    func search(axis: Int) -> Int {
        let start = axis == 0 ? declared.0 : declared.1
        for n in start..<(start + 512) {
            let g = try? graph.geometry(height: axis == 0 ? n : declared.0, width: axis == 0 ? declared.1 : n)
            if let g, g.allSatisfy({ $0.map { $0[axis].exact } ?? true }) { return n }
        }
        return start
    }
    return (search(axis: 0), search(axis: 1))
}

/// Finds the stages of the encoder part of `graph` — every node the classifier
/// head's feature map depends on (or the whole graph's first output if it has
/// no head) — from the geometry of its layers (strides multiply along the path;
/// sizes do not matter), taken at `referenceInputSize`. One stage per stride,
/// finest first.
///
/// - Throws: `SurgeryError.unsupported` for a graph without one image input or
///   that runs at one size only; `EngineError.shapeMismatch` (or `.graph`) from
///   the layers' shapes and geometry at the reference size.
public func encoderStages(_ classifier: Graph) throws -> [EncoderStage] {
    // As a segmenter sees it: at its native size (node indices are the same unless
    // an input Resizing or crop was dropped).
    let graph = try withoutInputResizing(classifier)
    let shapes = try graph.staticShapes()
    let end = (try? ClassifierHead.find(in: graph, shapes: shapes))?.encoderEnd ?? graph.outputIndices[0]
    return try encoderStages(graph, upTo: end)
}

/// The stages of the encoder that ends at node `end`.
func encoderStages(_ graph: Graph, upTo end: Int) throws -> [EncoderStage] {
    let size = try referenceInputSize(graph)
    let geometry = try graph.geometry(height: size.height, width: size.width)
    let shapes = try graph.staticShapes()
    let encoder = ancestors(of: [end], in: graph)
    // A node is a cut point when no edge of the encoder jumps over it: nodes are
    // in topological order, so an edge a → b with a < v < b is a path around v.
    var lastConsumer = Array(graph.nodes.indices)
    for b in graph.nodes.indices where encoder.contains(b) {
        for a in graph.nodes[b].inputs { lastConsumer[a] = max(lastConsumer[a], b) }
    }
    var reach = -1
    var byStride: [Int: EncoderStage] = [:]
    for v in graph.nodes.indices where encoder.contains(v) {
        defer { reach = max(reach, lastConsumer[v]) }
        guard reach <= v, let g = geometry[v], let stride = g.integerStride, !(graph.nodes[v].layer is ZeroPadding2D),
              let channels = shapes[v].last ?? nil, shapes[v].count == 4 else { continue }
        byStride[stride] = EncoderStage(stride: stride, node: v, name: graph.nodes[v].name, height: g.rows.size, width: g.cols.size,
                                        channels: channels, offsetRows: g.rows.offset, offsetCols: g.cols.offset,
                                        receptiveRows: g.rows.receptiveField, receptiveCols: g.cols.receptiveField)
    }
    return byStride.values.sorted { $0.stride < $1.stride }
}
