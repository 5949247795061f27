import Foundation
import HDF5
import SegKitKeras
import SegKitSupport

/// The files of one training run, in one place: the best segmenter `NAME.keras`,
/// the checkpoint `NAME.last.keras` (the segmenter with the trainer's
/// `TrainingState` in its `segkit_state.h5` archive entry, which Keras ignores)
/// and the history `NAME.history.csv` (one `EpochRecord` per line).
///
/// Every file is replaced atomically (`writeAtomically`, `KerasWriter`): a run
/// killed while saving leaves the previous whole file, never a half-written one
/// and never no checkpoint.
public struct Checkpoint {
    /// The archive entry that holds the trainer's state.
    public static let stateEntry = "segkit_state.h5"

    /// Where the best segmenter goes (a `.keras` path).
    public let best: String
    /// The checkpoint beside it: NAME.last.keras.
    public let last: String
    /// The per-epoch history beside it: NAME.history.csv.
    public let history: String
    /// The Keras model name the files carry.
    public var modelName: String
    /// The `segkit.json` stored in both Keras files.
    public var metadata: SegmenterMetadata

    /// The run writing to `best` (NAME.keras) and its companions.
    public init(best: String, modelName: String, metadata: SegmenterMetadata) {
        self.best = best
        (last, history) = Self.companions(of: best)
        self.modelName = modelName
        self.metadata = metadata
    }

    /// NAME.keras → (NAME.last.keras, NAME.history.csv).
    public static func companions(of best: String) -> (last: String, history: String) {
        let base = best.hasSuffix(".keras") ? String(best.dropLast(6)) : best
        return (base + ".last.keras", base + ".history.csv")
    }

    /// Writes `trainer`'s segmenter to `last` with its state, and the history.
    /// - Throws: `FileError`, `HDF5Error` or `KerasExportError` from the writes.
    public func saveLast(_ trainer: Trainer) throws { try save(trainer, to: last, withState: true) }

    /// Writes `trainer`'s segmenter to `best` (no state), and the history.
    /// - Throws: `FileError`, `HDF5Error` or `KerasExportError` from the writes.
    public func saveBest(_ trainer: Trainer) throws { try save(trainer, to: best, withState: false) }

    private func save(_ trainer: Trainer, to path: String, withState: Bool) throws {
        var writer = KerasWriter(graph: trainer.graph, name: modelName, metadata: metadata.json)
        if withState {
            let state = try ScratchFile()
            try state.withPath { try trainer.saveState(to: $0) }
            writer.extraFiles = [Self.stateEntry: state]
        }
        try writer.write(to: path)
        try writeAtomically(history) { p in
            try ([EpochRecord.csvHeader] + trainer.history.map(\.csvLine)).joined(separator: "\n").appending("\n")
                .write(toFile: p, atomically: false, encoding: .utf8)
        }
    }

    /// Continues `trainer` from a checkpoint read as `model` (from `file`):
    /// epoch, step, optimizer state, best score and history.
    /// - Throws: `TrainingError.badState` when the file holds no training state
    ///   or a state that does not fit this run; `HDF5Error` for a damaged one.
    public static func resume(_ trainer: Trainer, from model: KerasModel, file: String) throws {
        guard let state = try state(of: model, file: file) else {
            throw TrainingError.badState("\(file) holds no training state (use NAME.last.keras)")
        }
        try trainer.restore(from: state)
    }

    /// The training state `model` holds (loaded with `SideFileNames.segkit`),
    /// opened for reading; nil for a file that is not a checkpoint.
    /// - Throws: `HDF5Error` naming `file` when the entry is not an HDF5 file.
    public static func state(of model: KerasModel, file: String) throws -> HDF5File? {
        // libhdf5's own descriptor keeps the scratch file alive from here.
        try model.sideFiles.entries[stateEntry].map { try $0.withPath { try HDF5File(readingFrom: $0, reportedAs: file + " " + stateEntry) } }
    }

    /// Reads a checkpoint's state completely, checking every part (what the
    /// check-model child does before the run reads the file itself).
    /// - Throws: `TrainingError.badState` naming the damaged part, `HDF5Error`.
    public static func check(_ model: KerasModel, file: String) throws {
        if let state = try state(of: model, file: file) { _ = try TrainingState.read(from: state) }
    }
}
