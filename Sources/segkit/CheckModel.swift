import ArgumentParser
import SegKit
import SegKitKeras

/// `segkit check-model` (hidden): reads a model file completely — a checkpoint's
/// training state included — and exits 0, or prints the error and exits 1. The
/// CLI runs it as a child process before reading an untrusted file itself (see `loadModel`).
struct CheckModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-model", shouldDisplay: false)

    @OptionGroup var model: ModelOptions

    func run() throws {
        let loaded = try KerasModel.load(model.model, configPath: model.config, sideFiles: .segkit)
        _ = try SegmenterMetadata.document(in: loaded, file: model.model)
        try Checkpoint.check(loaded, file: model.model)
    }
}

/// `segkit check-data` (hidden): reads an HDF5 data set completely, as
/// `check-model` does a model file (see `DataOptions.open`).
struct CheckData: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-data", shouldDisplay: false)

    @Argument var file: String

    func run() throws { _ = try SegmentationDataset.readHDF5(file) }
}
