import ArgumentParser
import SegKitKeras

/// `segkit check-model` (hidden): reads a model file completely and exits 0, or
/// prints the error and exits 1. The CLI runs it as a child process before
/// reading an untrusted file itself (see `loadModel`).
struct CheckModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-model", shouldDisplay: false)

    @OptionGroup var model: ModelOptions

    func run() throws { _ = try KerasModel.load(model.model, configPath: model.config) }
}
