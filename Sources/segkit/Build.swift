import SegKitSupport
import ArgumentParser
import Foundation
import SegKit
import SegKitEngine
import SegKitKeras

/// `segkit build`: a segmenter from a recipe (and a classifier), as a Keras file.
struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a segmenter from a recipe in Recipes/ (or a YAML file) and a Keras classifier.")

    @Option(help: "A built-in recipe name (see Recipes/) or a .yaml file.")
    var recipe: String

    @Option(help: "The Keras classifier (not needed for unet-scratch).")
    var classifier: String?

    @Option(help: "Architecture for a weights-only classifier file.")
    var config: String?

    @Option(help: "The classifier's output to convert, for a model with several (a main and an auxiliary head).")
    var output: String?

    @Option(parsing: .unconditional, help: "Segmentation classes (a count other than the classifier's implies --head new).")
    var classes: Int?

    @Option(parsing: .unconditional, help: "Channels of the data (adapts the classifier's first convolution; required for unet-scratch).")
    var inputChannels: Int?

    @Option(help: "keep: the classifier's classes; new: a new zero-initialised score layer.")
    var head: HeadChoice?

    @Option(name: .customLong("set"), help: "Override recipe options, KEY=VALUE (repeatable; or KEY=VALUE,KEY=VALUE).")
    var overrides: [String] = []

    @Option(help: "Comma-separated class names, stored with the segmenter (default class_0, class_1, …).")
    var classNames: String?

    @Option(help: "Output Keras file (.keras, or .h5 for legacy HDF5).")
    var out: String

    func validate() throws {
        if let classes { try require(classes, in: 1...65_536, "--classes") }
        guard out.hasSuffix(".keras") || out.hasSuffix(".h5") else { throw ValidationError("--out \(out): a segmenter is written as .keras (Keras 3) or .h5 (legacy HDF5)") }
        if let inputChannels { try require(inputChannels, in: 1...4096, "--input-channels") }
        try checkSpec {
            for o in overrides { _ = try OptionSpec("--set", o).settings(o) }
            if let classNames { _ = try OptionSpec("--class-names", classNames).items() }
        }
    }

    func run() throws {
        var sets = overrides
        if let classes { sets.append("classes=\(classes)") }
        if let inputChannels { sets.append("input_channels=\(inputChannels)") }
        if let head { sets.append("head=\(head.rawValue)") }
        if let output { sets.append("output=\(output)") }
        let r = try Recipe.load(recipe, overrides: sets, recipeFolder: try recipeFolder())
        let source = try classifier.map { try loadModel($0, config: config) }
        var built = try naming(classifier) { try SegmenterBuilder(recipe: r).build(classifier: source?.graph) }
        if let classNames {
            let names = classNames.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard names.count == built.classes else {
                throw ValidationError("--class-names gives \(names.count) names for \(built.classes) classes")
            }
            built.classNames = names
        }
        try KerasWriter(graph: built.graph, name: r.name.replacingOccurrences(of: "-", with: "_"), metadata: built.metadata).write(to: out)
        let total = built.graph.parameters.reduce(0) { $0 + $1.value.count }
        let trainable = built.graph.trainableParameters.reduce(0) { $0 + $1.value.count }
        print("Built \(r.name) → \(out)")
        print("  classes: \(built.classes), output: \(built.output), total stride \(built.totalStride)"
              + (built.referenceSize.map { ", laid out at \($0.height)x\($0.width) (any size runs: SegKit mirror-pads and crops)" } ?? ""))
        if !built.stages.isEmpty {
            print("  encoder stages: " + built.stages.map { "1/\($0.stride) \($0.name)" }.joined(separator: ", "))
        }
        print("  parameters: \(total) total, \(trainable) trainable, \(total - trainable) frozen")
    }
}

/// Where the built-in recipes are: $SEGKIT_RECIPES, ./Recipes, or the Recipes
/// folder of the package the binary was built in (.build/<config>/segkit).
func recipeFolder() throws -> String {
    let fm = FileManager.default
    var candidates: [String] = []
    if let env = ProcessInfo.processInfo.environment["SEGKIT_RECIPES"] { candidates.append(env) }
    candidates.append(fm.currentDirectoryPath + "/Recipes")
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    candidates.append(exe.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Recipes").path)
    candidates.append(exe.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Recipes").path)
    guard let found = candidates.first(where: { fm.fileExists(atPath: $0 + "/transposed.yaml") }) else {
        throw ValidationError("cannot find the Recipes folder (looked in \(candidates.joined(separator: ", "))); set SEGKIT_RECIPES")
    }
    return found
}

/// Runs `body`, prefixing a surgery or recipe error with the model file it is about.
func naming<T>(_ file: String?, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as SurgeryError {
        throw ModelFileError(message: file.map { "\($0): \(e)" } ?? "\(e)")
    } catch let e as RecipeError {
        throw ModelFileError(message: file.map { "\($0): \(e)" } ?? "\(e)")
    }
}
