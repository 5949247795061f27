import SegKitSupport
import SegKitEngine

/// Builds the engine layer for one Keras layer config, given its input shapes
/// (which fix the kernel shapes). Parameters are created as zeros in Keras's
/// weight order and under Keras's weight names; the weight loader fills them.
/// Every config option either changes what the layer computes or is refused.
struct KerasLayerFactory {
    let file: String
    /// Keras 2 and 3 differ in a few defaults (hard_sigmoid's slope).
    let kerasMajor: Int
    /// Elements all the model's weights may still take (a forged config cannot make
    /// SegKit allocate more than a very large real model would).
    let budget = WeightBudget(elements: KerasLayerFactory.maxWeightElements)

    final class WeightBudget {
        var remaining: Int
        init(elements: Int) { remaining = elements }
    }

    /// The reduced-precision dtype policies seen in the config (SegKit computes
    /// in float32 with the file's weights, converted from float16 where stored so).
    final class PolicyLog { var names: Set<String> = [] }
    let policies = PolicyLog()

    /// No single size in a config may exceed this, nor the model's weights hold more
    /// than `maxWeightElements` elements in all (1 GiB of float32, above VGG16's 138M):
    /// a forged config gets an error, not an allocation.
    static let maxDimension = 1 << 20
    static let maxWeightElements = 1 << 28

    /// Builds one layer from its options and input shapes.
    typealias Reader = @Sendable (Options, [StaticShape]) throws -> Layer

    /// Keras class name (aliases included) → reader, from every layer family.
    /// Adding a Keras layer: its engine layer file, then its reader (with its
    /// class names) and its writer side by side in its family's file in
    /// `Layers/`; a new family is one more entry here and in `KerasLayerConfig.writers`.
    static let readers: [String: Reader] = Dictionary(uniqueKeysWithValues: [
        KerasConvolutionLayers.readers, KerasDenseLayers.readers, KerasNormalizationLayers.readers,
        KerasPoolingLayers.readers, KerasActivationLayers.readers, KerasMergeLayers.readers,
        KerasReshapingLayers.readers, KerasPreprocessingLayers.readers, KerasDropoutAndIdentityLayers.readers,
        KerasApplicationLayers.readers,
    ].flatMap { $0.map { ($0.key, $0.value) } })

    func make(_ spec: LayerSpec, inputShapes: [StaticShape]) throws -> Layer {
        let c = Options(spec: spec, file: file, kerasMajor: kerasMajor, budget: budget)
        // Every weight shape follows from the config and the input shapes; check it before allocating.
        for shape in inputShapes {
            for d in shape.compactMap({ $0 }) where d < 1 || d > Self.maxDimension {
                throw KerasImportError.invalidConfig(file: file, message: "layer '\(spec.name)' receives an input of size \(d) on some axis")
            }
        }
        try c.refuseChannelsFirst()
        if let policy = try c.computePolicy(), policy != "float32" { policies.names.insert(policy) }
        guard let read = Self.readers[spec.className] else {
            throw KerasImportError.unsupportedLayer(
                name: spec.name, className: spec.className, file: file,
                reason: spec.className == "Lambda" || spec.className.hasSuffix("OpLambda")
                    ? "Lambda layers hold Python code, which SegKit never executes"
                    : "SegKit does not know this layer class (custom or unsupported); it executes no code from files")
        }
        let layer = try read(c, inputShapes)
        if !spec.trainable { layer.isTrainable = false }
        return layer
    }
}
