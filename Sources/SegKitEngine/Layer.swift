/// Whether a forward pass is for prediction or for a training step.
///
/// Training mode uses batch statistics in (trainable) BatchNormalization and
/// applies dropout, and makes every layer keep what its backward pass needs.
public enum ExecutionMode: Sendable {
    /// Prediction: moving statistics, no dropout, no backward caches.
    case inference
    /// A training step: batch statistics in trainable BatchNormalization, dropout
    /// applied, and each layer's backward cache kept.
    case training
}

/// A layer's static output shape: `nil` marks a dimension unknown until run time
/// (the batch, and the spatial size of a fully convolutional net).
public typealias StaticShape = [Int?]

/// What a forward pass returns: the output and, in training mode, what the
/// layer's backward pass needs (opaque to everyone but that layer).
public struct LayerOutput {
    /// The layer's output (NHWC for image layers).
    public var output: Tensor
    /// What the layer's backward pass needs; nil in inference mode.
    public var cache: Any?

    /// Pairs an output with the backward cache the layer made for it.
    public init(_ output: Tensor, cache: Any? = nil) {
        self.output = output
        self.cache = cache
    }
}

/// A node type of the graph: forward and backward of one op, its parameters,
/// and whether it trains.
///
/// Layers are classes because one layer may be applied at several graph nodes
/// (Keras's shared layers); everything a particular application needs for its
/// backward pass travels in `LayerOutput.cache`, never in the layer.
public class Layer {
    /// Keras's layer name, unique in a Keras model (the default node name).
    public let name: String
    /// The Keras class name this layer corresponds to ("Conv2D", "Dense", ...).
    public var kind: String { String(describing: type(of: self)) }
    /// The layer's weights in Keras's save order (trainable ones first).
    public let parameters: [Parameter]

    /// Whether training mode changes what the layer computes (Dropout), not
    /// only what it keeps for its backward pass.
    public var trainingChangesOutput: Bool { false }

    /// Frozen (false) or trainable (true). Freezing a layer freezes its parameters;
    /// a frozen BatchNormalization also runs in inference mode, as in Keras.
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

    /// The static output shape for the given input shapes (nil = unknown
    /// dimension), following the Keras layer's `compute_output_shape`.
    /// - Throws: `EngineError.shapeMismatch` for inputs the layer cannot take;
    ///   `EngineError.invalidArgument` from this base class (a layer with no rule).
    public func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        throw EngineError.invalidArgument(op: kind, message: "has no output-shape rule")
    }

    /// Computes the layer's output from `inputs` (one per input node, in order),
    /// as the Keras layer's `call` does; in `.training` mode the output carries the
    /// cache `backward` needs.
    /// - Throws: `EngineError.shapeMismatch` for inputs of the wrong rank, size or
    ///   channels; `EngineError.invalidArgument` from this base class (no forward pass).
    public func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        throw EngineError.invalidArgument(op: kind, message: "has no forward pass")
    }

    /// Given dL/d(output), accumulates dL/d(parameter) into every trainable parameter
    /// and returns dL/d(input) for each input whose `needInputGradients` entry is true
    /// (nil for the others, so no work is spent on them).
    /// - Throws: `EngineError.invalidArgument` when `cache` is not one this layer's
    ///   training-mode forward pass made, or from this base class (no backward pass).
    public func backward(
        _ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]
    ) throws -> [Tensor?] {
        throw EngineError.invalidArgument(op: kind, message: "has no backward pass")
    }

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
