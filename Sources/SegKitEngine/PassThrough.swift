/// A Keras layer that is the identity when a model predicts: the augmentation
/// layers (RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
/// RandomContrast, RandomBrightness, …) and the noise and regularisation layers
/// (GaussianNoise, GaussianDropout, ActivityRegularization). SegKit runs it as
/// the identity in training too: its own `--augment` augments the data, and
/// imported layers are frozen. `kind` is the Keras class; `config` the layer's
/// Keras config, kept so that a written model has the layer as it was.
public final class PassThrough: Layer {
    /// The Keras class name ("RandomFlip", "GaussianNoise", ...).
    public let kerasClass: String
    /// The Keras config, opaque to the engine (SegKitKeras writes it back).
    public let config: Any?

    /// An identity layer standing for Keras class `kerasClass`.
    public init(name: String, kerasClass: String, config: Any? = nil) {
        self.kerasClass = kerasClass
        self.config = config
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        PassThrough(name: name, kerasClass: kerasClass, config: config)
    }

    public override var kind: String { kerasClass }

    /// The input's shape.
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape { inputShapes[0] }

    /// The input, unchanged, in every mode.
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput { LayerOutput(inputs[0]) }

    /// dy, unchanged.
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        [needInputGradients[0] ? gradOutput : nil]
    }
}
