/// A one-input layer that can add its input's gradient into a tensor instead of
/// returning one: MaxPooling2D, whose gradient scatters into a few positions.
protocol AddsInputGradientInPlace: Layer {
    /// Adds dL/d(input) into `inputGradient`, the gradient the input already
    /// has from its other readers; false, having done nothing, where the layer
    /// cannot (another shape, another reduction), and the graph calls `backward`.
    /// - Throws: `EngineError` for a cache from another pass.
    func backward(_ gradOutput: Tensor, cache: Any?, addingInputGradientTo inputGradient: inout Tensor) throws -> Bool
}

/// The backward pass's rule for a one-input node whose input already holds a
/// gradient from its other readers (a U-Net's pooled skip: the encoder map
/// feeds both the pooling and the decoder): the node's layer adds its
/// gradient into that one, a pass fewer over the input's size than returning
/// a tensor for the graph to add.
enum InPlaceGradientAdd {
    /// Runs the rule for `index`: true when its gradient was added in place.
    /// - Throws: `EngineError` from the layer's backward pass.
    static func backward(_ index: Int, _ grad: Tensor, in graph: Graph, pass: ForwardPass, needsGradient: [Bool],
                         grads: inout [Tensor?]) throws -> Bool {
        let node = graph.nodes[index]
        guard node.inputs.count == 1, let source = node.inputs.first, needsGradient[source], grads[source] != nil,
              let layer = node.layer as? AddsInputGradientInPlace else { return false }
        return try layer.backward(grad, cache: pass.caches[index], addingInputGradientTo: &grads[source]!)
    }
}
