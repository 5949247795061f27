/// Whether a forward pass is for prediction or for a training step.
///
/// Training mode uses batch statistics in (trainable) BatchNormalization and
/// applies dropout, and makes every layer keep what its backward pass needs.
public enum ExecutionMode: Sendable {
    case inference
    case training
}

/// A layer's static output shape: `nil` marks a dimension unknown until run time
/// (the batch, and the spatial size of a fully convolutional net).
public typealias StaticShape = [Int?]

/// What a forward pass returns: the output and, in training mode, what the
/// layer's backward pass needs (opaque to everyone but that layer).
public struct LayerOutput {
    public var output: Tensor
    public var cache: Any?

    public init(_ output: Tensor, cache: Any? = nil) {
        self.output = output
        self.cache = cache
    }
}

/// A 1x1 convolution of `input` (NHWC) with `kernel` [1, 1, in, out] plus
/// `bias`: what a pointwise projection layer computes, handed to the layer
/// that folds it into its output.
public struct PointwiseProjection {
    public let input: Tensor
    public let kernel: Tensor
    public let bias: [Float]?
}

/// A node type of the graph: forward and backward of one op, its parameters,
/// and whether it trains.
///
/// Layers are classes because one layer may be applied at several graph nodes
/// (Keras's shared layers); everything a particular application needs for its
/// backward pass travels in `LayerOutput.cache`, never in the layer.
public class Layer {
    public let name: String
    /// The Keras class name this layer corresponds to ("Conv2D", "Dense", ...).
    public var kind: String { String(describing: type(of: self)) }
    public let parameters: [Parameter]

    /// Frozen (false) or trainable (true). Freezing a layer freezes its parameters;
    /// a frozen BatchNormalization also runs in inference mode, as in Keras.
    /// Whether training mode changes what the layer computes (Dropout), not
    /// only what it keeps for its backward pass.
    public var trainingChangesOutput: Bool { false }

    public var isTrainable: Bool = true {
        didSet { for p in parameters { p.isTrainable = isTrainable } }
    }

    /// `parameters` in Keras's weight order (trainable ones first, as Keras saves them).
    init(name: String, parameters: [Parameter] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// A layer equal to this one that shares no state with it: the same kind,
    /// name and configuration, its own parameters holding this one's values
    /// (tensors are copied on write) and this one's trainability, no gradients.
    /// Training or freezing either one leaves the other as it was.
    ///
    /// - Throws: `EngineError.invalidArgument` for a layer kind with no copy
    ///   (every engine layer has one).
    public final func copy() throws -> Layer {
        let c = try makeCopy()
        c.isTrainable = isTrainable
        for (mine, theirs) in zip(parameters, c.parameters) { theirs.isTrainable = mine.isTrainable }
        return c
    }

    /// A new layer of this kind and configuration whose parameters hold this
    /// layer's values: what `copy()` builds on. Every layer overrides it.
    func makeCopy() throws -> Layer {
        throw EngineError.invalidArgument(op: kind, message: "cannot be copied")
    }

    /// How many inputs the layer takes (nil: two or more, as the merge layers).
    public var inputArity: Int? { 1 }

    /// A merge layer (Add, Multiply, Concatenate): Keras passes its inputs as one list.
    public var isMerge: Bool { inputArity == nil }

    public func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        throw EngineError.invalidArgument(op: kind, message: "has no output-shape rule")
    }

    public func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        throw EngineError.invalidArgument(op: kind, message: "has no forward pass")
    }

    /// The layer's output plus `addend` (a tensor of the output's shape) in one
    /// pass, for an Add that only this layer's output feeds; nil where the
    /// layer cannot, and the graph runs the Add itself. Offered only by layers
    /// whose backward pass does not read their output: the Add's gradient
    /// reaches this layer unchanged.
    public func forward(_ inputs: [Tensor], mode: ExecutionMode, adding addend: Tensor) throws -> LayerOutput? { nil }

    /// Whether the layer is a 1x1, stride-1, ungrouped, linear convolution,
    /// which another layer may fold into its own output (a skip connection's
    /// projection): then `pointwiseProjection(of:mode:)` describes it.
    public var isPointwiseProjection: Bool { false }

    /// This layer, applied to `inputs`, as a term for another layer's
    /// `forward(_:mode:plus:)`, with the backward cache a forward pass in
    /// `mode` would have made; nil where the layer is not such a projection.
    public func pointwiseProjection(of inputs: [Tensor], mode: ExecutionMode) throws -> (term: PointwiseProjection, cache: Any?)? { nil }

    /// Whether `forward(_:mode:plus:)` may fold a projection into the output.
    public var foldsPointwiseProjections: Bool { false }

    /// The layer's output plus `projection` (of a tensor with the output's
    /// height and width) in one pass, for an Add of the two that nothing else
    /// reads: the projection's products are summed in the output's registers,
    /// so neither its output nor the Add's pass over it is ever written. Nil
    /// where the layer cannot for these shapes, and the graph runs all three.
    public func forward(_ inputs: [Tensor], mode: ExecutionMode, plus projection: PointwiseProjection) throws -> LayerOutput? { nil }

    /// Whether `forward(concatenationOf:mode:)` may be offered the parts of a
    /// channel concatenation that feeds only this layer.
    public var foldsConcatenatedInputs: Bool { false }

    /// The layer applied to the concatenation of `parts` on the channel axis,
    /// each part read where it is (the concatenation is never written), with
    /// a backward pass that returns the concatenation's gradient as usual.
    /// Nil where the layer cannot for these shapes, and the graph concatenates.
    public func forward(concatenationOf parts: [Tensor], mode: ExecutionMode) throws -> LayerOutput? { nil }

    /// After `forward(concatenationOf:mode:)`: the backward pass, returning the
    /// gradients of the parts (for those `needed`) instead of the
    /// concatenation's, which then needs no backward pass of its own. Nil,
    /// having done nothing, where the layer cannot: the graph then calls
    /// `backward` and the concatenation's.
    public func backward(_ gradOutput: Tensor, cache: Any?, toConcatenatedParts needed: [Bool]) throws -> [Tensor?]? { nil }

    /// Given dL/d(output), accumulates dL/d(parameter) into every trainable parameter
    /// and returns dL/d(input) for each input whose `needInputGradients` entry is true
    /// (nil for the others, so no work is spent on them).
    public func backward(
        _ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]
    ) throws -> [Tensor?] {
        throw EngineError.invalidArgument(op: kind, message: "has no backward pass")
    }

    /// For a one-input layer whose input also feeds other layers: adds
    /// dL/d(input) into `inputGradient`, the gradient the input already has from
    /// them, instead of returning a tensor the graph would then add (a pass
    /// fewer over the input's size, e.g. a U-Net's pooled skip). False where the
    /// layer cannot, and the graph calls `backward`.
    public func backward(_ gradOutput: Tensor, cache: Any?, addingInputGradientTo inputGradient: inout Tensor) throws -> Bool { false }

    /// Number of scalars in all parameters, as Keras counts them.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// The cache a backward pass needs, or a clear error when it is missing
    /// (a backward pass after an inference-mode forward).
    func requireCache<T>(_ cache: Any?, as type: T.Type) throws -> T {
        guard let c = cache as? T else {
            throw EngineError.invalidArgument(
                op: "\(kind) '\(name)'", message: "backward needs a training-mode forward pass first")
        }
        return c
    }
}

/// Checks an input count and rank before a layer touches the data.
func expectRank(_ rank: Int, _ tensor: Tensor, layer: Layer) throws {
    guard tensor.rank == rank else {
        throw EngineError.shapeMismatch(
            op: "\(layer.kind) '\(layer.name)'", expected: "a rank-\(rank) input", found: "shape \(tensor.shape)")
    }
}

func expectStaticRank(_ rank: Int, _ shape: StaticShape, layer: Layer) throws {
    guard shape.count == rank else {
        throw EngineError.shapeMismatch(
            op: "\(layer.kind) '\(layer.name)'", expected: "a rank-\(rank) input", found: "shape \(describe(shape))")
    }
}

/// "(None, 16, 16, 64)" as Keras prints shapes.
public func describe(_ shape: StaticShape) -> String {
    "(" + shape.map { $0.map(String.init) ?? "None" }.joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
}
