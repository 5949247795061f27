import SegKitSupport
import Foundation
import Yams

/// A segmenter recipe: which decoder to attach to a classifier, and how.
/// Recipes are YAML files (`Recipes/*.yaml`); every key has a default here, and
/// `--set KEY=VALUE` overrides any of them. The README documents the schema.
public struct Recipe: Decodable, Equatable, Sendable {
    /// The recipe's `decoder:` key: how the segmenter's decoder is built.
    public enum Decoder: String, Decodable, Sendable {
        /// Convolutionalized classifier + weightless upsampling to the input size.
        case heatmap
        /// One stride-2 Conv2DTranspose per downsampling step (optionally with skips).
        case transposed
        /// Long et al.'s FCN: bilinear-initialised upsampling with fused score layers.
        case fcn
        /// U-Net decoder (concatenated skips) on the pretrained encoder.
        case unet
        /// A U-Net trained from scratch: no classifier.
        case unetScratch = "unet-scratch"
    }

    /// The recipe's `head:` key: `keep` scores the classifier's own classes (its
    /// convolutionalized head); `new` adds a fresh score layer for `classes`.
    public enum Head: String, Decodable, Sendable { case keep, new }

    /// The recipe's name (`name:`), written to segkit.json.
    public var name: String
    /// The decoder kind (`decoder:`).
    public var decoder: Decoder
    /// heatmap: "bilinear" or "nearest".
    public var upsampling: String = "bilinear"
    /// transposed: add 1x1-projected skips from every encoder stage of matching resolution.
    public var skips: Bool = false
    /// fcn: how many stages to fuse: "32s" (none), "16s" (one), "8s" (two).
    public var fcn: String = "8s"
    /// Keep the classifier's classes or score new ones (`head:`).
    public var head: Head = .keep
    /// Segmentation classes (head: new, or unet-scratch).
    public var classes: Int?
    /// Channels of decoder convolutions at the finest level (doubling per level, U-Net style).
    public var decoderFilters: Int = 16
    /// Kernel size of the transposed decoder's convolutions.
    public var kernelSize: Int = 3
    /// Adds a BatchNormalization after each new decoder convolution (`batch_norm:`).
    public var batchNorm: Bool = false
    /// Dropout rate in [0, 1) in the new decoder blocks (`dropout:`); 0 adds none.
    public var dropout: Float = 0
    /// Weight initialisation of new U-Net convolutions (unet, unet-scratch).
    public enum Init: String, Decodable, Sendable {
        /// He normal, N(0, √(2/fan_in)): the U-Net paper's.
        case he
        /// Glorot uniform, U(±√(6/(fan_in + fan_out))): Keras's default.
        case glorot
    }
    /// The initialiser of new U-Net convolutions (`init:`).
    public var initializer: Init = .he
    /// Imported layers made trainable again: names, or the top N encoder stages.
    public var unfreeze: [String] = []
    /// The N coarsest encoder stages made trainable (`unfreeze: {stages: N}`).
    public var unfreezeStages: Int = 0
    /// Encoder stage taps by layer name, overriding detection (finest first).
    public var stages: [String]?
    /// Seed of the new layers' initial weights (and dropout masks).
    public var seed: UInt64 = 0
    /// unet-scratch: levels, first level's filters, "same" or "valid" (crop and copy).
    public var depth: Int = 4
    /// unet-scratch: filters of the first level (`base_filters:`), doubling per level.
    public var baseFilters: Int = 16
    /// unet-scratch: "same", or "valid" for Ronneberger et al.'s unpadded convolutions with crop-and-copy skips.
    public var padding: String = "same"
    /// unet-scratch: channels of the input images (`input_channels:`); nil takes the data's.
    public var inputChannels: Int?
    /// The classifier's output to convert, for a model with several (a main and an auxiliary classifier).
    public var output: String?

    enum CodingKeys: String, CodingKey {
        case name, decoder, upsampling, skips, fcn, head, classes, decoderFilters = "decoder_filters",
             kernelSize = "kernel_size", batchNorm = "batch_norm", dropout, initializer = "init", unfreeze, stages, seed, depth,
             baseFilters = "base_filters", padding, inputChannels = "input_channels", output
    }

    /// Decodes a recipe from its YAML keys, each missing one at its default, then validates it.
    /// - Throws: `DecodingError` for a missing `name` or `decoder` or a value of the
    ///   wrong type; `RecipeError.invalid` for an `unfreeze` of the wrong form or a
    ///   value out of range (upsampling, fcn, padding, classes < 2, non-positive
    ///   filters or kernel size, depth outside 1...6, dropout outside [0, 1)).
    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        self.decoder = try c.decode(Decoder.self, forKey: .decoder)
        upsampling = try c.decodeIfPresent(String.self, forKey: .upsampling) ?? upsampling
        skips = try c.decodeIfPresent(Bool.self, forKey: .skips) ?? skips
        fcn = try c.decodeIfPresent(String.self, forKey: .fcn) ?? fcn
        head = try c.decodeIfPresent(Head.self, forKey: .head) ?? head
        classes = try c.decodeIfPresent(Int.self, forKey: .classes)
        decoderFilters = try c.decodeIfPresent(Int.self, forKey: .decoderFilters) ?? decoderFilters
        kernelSize = try c.decodeIfPresent(Int.self, forKey: .kernelSize) ?? kernelSize
        batchNorm = try c.decodeIfPresent(Bool.self, forKey: .batchNorm) ?? batchNorm
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? dropout
        initializer = try c.decodeIfPresent(Init.self, forKey: .initializer) ?? initializer
        if let names = try? c.decodeIfPresent([String].self, forKey: .unfreeze) {
            unfreeze = names
        } else if let stages = try? c.decodeIfPresent([String: Int].self, forKey: .unfreeze), let n = stages["stages"] {
            unfreezeStages = n
        } else if c.contains(.unfreeze), !(try c.decodeNil(forKey: .unfreeze)) {
            throw RecipeError.invalid(recipe: name, message: "unfreeze must be a list of layer names or {stages: N}")
        }
        stages = try c.decodeIfPresent([String].self, forKey: .stages)
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        depth = try c.decodeIfPresent(Int.self, forKey: .depth) ?? depth
        baseFilters = try c.decodeIfPresent(Int.self, forKey: .baseFilters) ?? baseFilters
        padding = try c.decodeIfPresent(String.self, forKey: .padding) ?? padding
        inputChannels = try c.decodeIfPresent(Int.self, forKey: .inputChannels)
        output = try c.decodeIfPresent(String.self, forKey: .output)
        try validate()
    }

    func validate() throws {
        func bad(_ m: String) -> RecipeError { .invalid(recipe: name, message: m) }
        guard ["bilinear", "nearest"].contains(upsampling) else { throw bad("upsampling must be bilinear or nearest, not '\(upsampling)'") }
        guard ["32s", "16s", "8s"].contains(fcn) else { throw bad("fcn must be 32s, 16s or 8s, not '\(fcn)'") }
        guard ["same", "valid"].contains(padding) else { throw bad("padding must be same or valid, not '\(padding)'") }
        if let classes, classes < 2 { throw bad("classes must be at least 2") }
        guard decoderFilters >= 1, baseFilters >= 1, kernelSize >= 1 else { throw bad("filter counts and kernel_size must be positive") }
        guard (1...6).contains(depth) else { throw bad("depth must be 1 to 6") }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout must be in [0, 1)") }
    }

    /// Reads a recipe by built-in name (a file in `recipeFolder`) or by path,
    /// applying `overrides` ("key=value", the value read as YAML) before decoding.
    /// - Throws: `RecipeError.notFound` (with the built-in names) when no such file
    ///   can be read; `RecipeError.invalid` for text that is not a YAML mapping, a
    ///   key or value the recipe does not take, or a failed check; `SpecError` for
    ///   an override that is not `key=value` or names no recipe option.
    public static func load(_ nameOrPath: String, overrides: [String] = [], recipeFolder: String) throws -> Recipe {
        let path = FileManager.default.fileExists(atPath: nameOrPath) && nameOrPath.hasSuffix(".yaml")
            ? nameOrPath : (recipeFolder as NSString).appendingPathComponent(nameOrPath + ".yaml")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            let known = ((try? FileManager.default.contentsOfDirectory(atPath: recipeFolder)) ?? [])
                .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
            throw RecipeError.notFound(name: nameOrPath, known: known)
        }
        do {
            guard var node = try Yams.compose(yaml: text), var mapping = node.mapping else {
                throw RecipeError.invalid(recipe: path, message: "a recipe is a YAML mapping of keys to values")
            }
            for o in overrides {
                let spec = OptionSpec("--set", o)
                for (key, value) in try spec.settings(o) {
                    guard CodingKeys(stringValue: key) != nil else { throw spec.fail(key, "is no recipe option") }
                    mapping[Node(key)] = try Yams.compose(yaml: value) ?? Node("")
                }
            }
            node = Node.mapping(mapping)
            return try YAMLDecoder().decode(Recipe.self, from: try Yams.serialize(node: node))
        } catch let e as RecipeError {
            throw e
        } catch let e as SpecError {
            throw e
        } catch let e as DecodingError {
            throw RecipeError.invalid(recipe: path, message: Self.describe(e))
        } catch {
            throw RecipeError.invalid(recipe: path, message: "\(error)")
        }
    }
}

extension Recipe {
    /// A decoding error in the user's terms: the key and what it should be, or
    /// the recipe's own check (which Yams wraps as "not valid YAML").
    static func describe(_ e: DecodingError) -> String {
        func key(_ path: [CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch e {
        case let .typeMismatch(type, c): return "\(key(c.codingPath)): expected \(type == Int.self ? "a whole number" : type == Double.self || type == Float.self ? "a number" : type == Bool.self ? "true or false" : "\(type)")"
        case let .valueNotFound(_, c): return "\(key(c.codingPath)): a value is needed"
        case let .keyNotFound(k, _): return "\(k.stringValue): missing"
        case let .dataCorrupted(c):
            if case let .invalid(_, message)? = c.underlyingError as? RecipeError { return message }
            if let underlying = c.underlyingError { return "\(underlying)" }
            return c.codingPath.isEmpty ? c.debugDescription : "\(key(c.codingPath)): \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}

/// Why a recipe could not be read or applied.
public enum RecipeError: SegKitError, Equatable {
    /// No recipe file by that name or path; `known` lists the built-in recipes.
    case notFound(name: String, known: [String])
    /// The recipe file or its overrides break the schema (what and where in `message`).
    case invalid(recipe: String, message: String)
    /// A valid recipe that does not fit this classifier (e.g. too few stages for its skips).
    case incompatible(recipe: String, message: String)

    /// The message printed to the user, naming the recipe.
    public var errorDescription: String? {
        switch self {
        case let .notFound(name, known): return "no recipe '\(name)'; built-in recipes: \(known.joined(separator: ", "))"
        case let .invalid(recipe, message): return "recipe \(recipe): \(message)"
        case let .incompatible(recipe, message): return "recipe \(recipe) cannot be applied: \(message)"
        }
    }
}
