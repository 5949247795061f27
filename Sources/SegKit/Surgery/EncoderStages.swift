import SegKitEngine

/// One resolution level of an encoder: the last node at 1/stride of the input
/// size before the resolution shrinks, the tap a decoder's skip connection reads.
public struct EncoderStage: Equatable, Sendable {
    public let stride: Int
    public let node: Int
    public let name: String
    /// Shape at the classifier's own input size (batch omitted).
    public let height: Int, width: Int, channels: Int
}

/// Finds the stages of the encoder part of `graph` (every node the classifier
/// head's input depends on, or the whole graph if it has no head), measured at
/// the declared input size. Nodes whose size is not the input size divided by
/// an integer stride (a ZeroPadding2D before a strided convolution) are not taps.
public func encoderStages(_ graph: Graph) throws -> [EncoderStage] {
    guard graph.inputIndices.count == 1 else {
        throw SurgeryError.unsupported(layer: "input", reason: "stage detection needs a model with one image input")
    }
    let shapes = try graph.staticShapes()
    let input = shapes[graph.inputIndices[0]]
    guard input.count == 4, let ih = input[1], let iw = input[2] else {
        throw SurgeryError.unsupported(layer: graph.nodes[graph.inputIndices[0]].name,
                                       reason: "stage detection needs a fixed input size, found \(describe(input))")
    }
    let last = (try? ClassifierHead.find(in: graph, shapes: shapes))?.featureNode ?? graph.outputIndices[0]
    var encoder = Set([last])
    for i in graph.nodes.indices.reversed() where encoder.contains(i) { encoder.formUnion(graph.nodes[i].inputs) }
    var byStride: [Int: EncoderStage] = [:]
    for i in graph.nodes.indices where encoder.contains(i) {
        let s = shapes[i]
        guard s.count == 4, let h = s[1], let w = s[2], let c = s[3], h > 0, w > 0,
              ih % h == 0, iw % w == 0, ih / h == iw / w else { continue }
        byStride[ih / h] = EncoderStage(stride: ih / h, node: i, name: graph.nodes[i].name, height: h, width: w, channels: c)
    }
    return byStride.values.sorted { $0.stride < $1.stride }
}
