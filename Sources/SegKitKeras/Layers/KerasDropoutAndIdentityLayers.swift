import SegKitSupport
import SegKitEngine

/// Layers that change nothing when a model predicts: Dropout and
/// SpatialDropout2D (which SegKit applies in training), and the augmentation,
/// noise and regularisation layers imported as `PassThrough` and written back
/// with the config they came with.
enum KerasDropoutAndIdentityLayers {
    /// Layers that are the identity when a model predicts (augmentation, noise,
    /// regularisation): imported as `PassThrough`, listed as such by `inspect`.
    static let identityAtInference: Set<String> = [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
        "RandomHeight", "RandomWidth", "RandomColorDegeneration", "RandomColorJitter", "RandomGrayscale", "RandomHue",
        "RandomSaturation", "RandomSharpness", "RandomShear", "RandomPosterization", "RandomInvert", "RandomErasing",
        "RandomGaussianBlur", "RandomPerspective", "RandomElasticTransform",
        "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    ]

    static let readers: [String: KerasLayerFactory.Reader] = Dictionary(
        uniqueKeysWithValues: [("Dropout", readDropout), ("SpatialDropout2D", readDropout), ("RandomCrop", readRandomCrop)]
            + identityAtInference.map { ($0, readPassThrough) })

    static func readDropout(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        var noise: [Int?]?
        if let ns = c.value("noise_shape"), !ns.isNull {
            // (None, 1, 1, 1): one draw per image (stochastic depth); each entry a positive size or null.
            guard c.spec.className == "Dropout", let entries = ns.array, entries.count == (inputShapes.first?.count ?? -1),
                  entries.allSatisfy({ $0.isNull || ($0.int ?? 0) >= 1 }) else { throw c.unsupported("noise_shape", ns.jsonText) }
            noise = entries.map(\.int)
        }
        return try Dropout(name: c.spec.name, rate: Float(try c.double("rate")), perChannel: c.spec.className == "SpatialDropout2D",
                           noiseShape: noise, seed: UInt64(max(0, c.value("seed")?.int ?? 0)))
    }

    static func readPassThrough(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        PassThrough(name: c.spec.name, kerasClass: c.spec.className, config: c.spec.config)
    }

    static func readRandomCrop(_ c: Options, _ inputShapes: [StaticShape]) throws -> Layer {
        // At inference Keras crops and resizes a larger input (each version its own way): SegKit
        // reads it only where that is the identity, an input of exactly the crop's size.
        let (h, w) = (try c.positive("height"), try c.positive("width"))
        guard let input = inputShapes.first, input.count == 4, input[1] == h, input[2] == w else {
            throw c.unsupported("height/width", "\(h)x\(w) on an input of \(describe(inputShapes.first ?? [])) (only the identity crop)")
        }
        return PassThrough(name: c.spec.name, kerasClass: c.spec.className, config: c.spec.config)
    }

    static func write(_ layer: Layer, name: String, config c: inout [String: JSONValue]) -> String? {
        switch layer {
        case let l as Dropout:
            c["rate"] = .float(l.rate)
            if let noise = l.noiseShape { c["noise_shape"] = .array(noise.map { $0.map { .int($0) } ?? .null }) }
            return l.perChannel ? "SpatialDropout2D" : "Dropout"
        case let l as PassThrough:
            if let original = (l.config as? JSONValue)?.object {
                c = original.merging(["name": .string(name), "trainable": .bool(layer.isTrainable)]) { $1 }
            }
            return l.kerasClass
        default:
            return nil
        }
    }
}
