import ArgumentParser
import SegKitKeras

/// The model file and, for weights-only files, its architecture.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A Keras model: .h5, .keras, or .weights.h5 (with --config).")
    var model: String

    @Option(help: "The architecture for a weights-only file: a model.to_json() file, a config.json or a .keras archive.")
    var config: String?

    func load() throws -> KerasModel { try KerasModel.load(model, configPath: config) }
}
