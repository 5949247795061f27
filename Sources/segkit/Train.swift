import ArgumentParser
import Foundation
import HDF5
import SegKit
import SegKitEngine
import SegKitKeras

/// `segkit train`: fine-tunes a segmenter's unfrozen layers on labelled data.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a segmenter's unfrozen layers on a labelled set.")

    @Argument(help: "The segmenter (.keras) from `segkit build`, or a checkpoint.")
    var segmenter: String
    @OptionGroup var data: DataOptions
    @Option(help: "Validation data (same forms as --data).") var valData: String?
    @Option(help: "Fraction of --data held out for validation when no --val-data.") var valFraction: Double = 0.1
    @Option var epochs: Int = 10
    @Option var batch: Int = 16
    @Option(help: "sgd or adam.") var optimizer: String = "adam"
    @Option var lr: Float = 1e-3
    @Option var momentum: Float = 0.9
    @Option var weightDecay: Float = 0
    @Option(help: "constant, step or cosine.") var schedule: String = "constant"
    @Option(help: "ce, weighted-ce, dice or ce+dice.") var loss: String = "ce"
    @Option(help: "auto, or one weight per class (comma-separated).") var classWeights: String?
    @Option(help: "U-Net border weights W0,SIGMA (e.g. 10,5).") var borderWeight: String?
    @Option(help: "Comma-separated: flip, shift, elastic.") var augment: String?
    @Option var seed: UInt64 = 0
    @Option(help: "Stop after this many epochs without a better val mIoU.") var patience: Int?
    @Option(help: "Memory for the frozen-encoder feature cache before it spills to disk.") var cacheMb: Int = 1024
    @Flag(help: "Do not cache frozen-encoder features.") var noCache = false
    @Option(help: "A class id that does not count in the loss or the metrics.") var ignoreLabel: Int32?
    @Option(help: "Continue a run from its .last.keras checkpoint.") var resume: String?
    @Option(help: "Where the best segmenter goes; beside it NAME.last.keras (checkpoint) and NAME.history.csv.") var out: String

    func run() throws {
        let start = resume ?? segmenter
        let file = try SegmenterFile(start)
        let (model, meta, classes) = (file.model, file.metadata, file.classes)
        let (last, history) = Self.companions(of: out)
        try Self.checkWritable(out)
        var config = TrainingConfig()
        config.epochs = epochs
        config.batchSize = batch
        config.optimizer = optimizer
        config.learningRate = lr
        config.momentum = momentum
        config.weightDecay = weightDecay
        guard let s = TrainingConfig.Schedule(rawValue: schedule) else { throw ValidationError("--schedule: constant, step or cosine") }
        config.schedule = s
        guard let l = SegmentationLoss(rawValue: loss) else { throw ValidationError("--loss: ce, weighted-ce, dice or ce+dice") }
        config.loss = l
        if let classWeights {
            if classWeights == "auto" { config.autoClassWeights = true } else {
                let w = classWeights.split(separator: ",").compactMap { Float($0) }
                guard w.count == classes else { throw ValidationError("--class-weights needs \(classes) numbers or auto") }
                config.classWeights = w
            }
        }
        if let borderWeight {
            let v = borderWeight.split(separator: ",").compactMap { Float($0) }
            guard v.count == 2, v[1] > 0 else { throw ValidationError("--border-weight takes W0,SIGMA") }
            config.borderWeight = (v[0], v[1])
        }
        if let augment {
            config.augment = Set(try augment.split(separator: ",").map { name in
                guard let a = Augmentation(rawValue: String(name)) else { throw ValidationError("--augment: flip, shift, elastic") }
                return a
            })
        }
        config.seed = seed
        config.patience = patience
        config.cacheMB = cacheMb
        config.useCache = !noCache
        config.ignoreLabel = ignoreLabel
        config.inputScale = try file.inputScaling(override: data.inputScale)

        var train = try data.load()
        try train.validate(classes: classes, ignoreLabel: ignoreLabel, source: data.data)
        var val: SegmentationDataset?
        if let valData {
            val = try DataSource.parse(valData, fashionFolder: data.fashionDir).load()
            try val!.validate(classes: classes, ignoreLabel: ignoreLabel, source: valData)
        } else if valFraction > 0 {
            let held = max(1, Int(Double(train.count) * valFraction))
            guard held < train.count else { throw ValidationError("--val-fraction leaves no training samples") }
            val = train.subset(Array((train.count - held)..<train.count))
            train = train.prefix(train.count - held)
        }
        print("Training \(model.name) on \(train.count) sample(s) of \(data.data), validating on \(val?.count ?? 0); input scale \(config.inputScale)")
        let trainer = try Trainer(graph: model.graph, classes: classes, config: config, runner: file.runner)
        if resume != nil {
            guard let state = model.trainingState else { throw ValidationError("\(start) holds no training state (use NAME.last.keras)") }
            try trainer.restore(from: state)
            print("Resuming at epoch \(trainer.epoch + 1), step \(trainer.step)")
        }
        var metadata = meta.object ?? [:]
        metadata["input_scale"] = .string(config.inputScale.description)
        let interrupt = InterruptFlag()
        interrupt.install()
        trainer.shouldStop = { interrupt.isRaised }
        let save = { (t: Trainer, path: String, withState: Bool) throws in
            var writer = KerasWriter(graph: t.graph, name: model.name, metadata: .object(metadata))
            if withState {
                let state = try ScratchFile()
                try state.withPath { try t.saveState(to: $0) }
                writer.extraFiles = ["segkit_state.h5": state]
            }
            try writer.write(to: path)
            try writeAtomically(history) { p in
                try ([EpochRecord.csvHeader] + t.history.map(\.csvLine)).joined(separator: "\n").appending("\n")
                    .write(toFile: p, atomically: false, encoding: .utf8)
            }
        }
        do {
            _ = try trainer.fit(train: train, val: val, observer: ProgressPrinter(),
                                checkpoint: { try save($0, last, true) }, improved: { try save($0, out, false) })
        } catch let e as TrainingError {
            if case .interrupted = e { print("\(e)\nresume with: segkit train \(segmenter) … --resume \(last) --out \(out)"); return }
            throw e
        }
        let best = val == nil ? String(format: "Lowest training loss %.4f", -trainer.bestScore)
                              : String(format: "Best val mIoU %.4f", trainer.bestScore)
        print("\(best) → \(out); checkpoint \(last); history \(history)")
    }

    /// NAME.keras → (NAME.last.keras, NAME.history.csv).
    static func companions(of out: String) -> (String, String) {
        let base = out.hasSuffix(".keras") ? String(out.dropLast(6)) : out
        return (base + ".last.keras", base + ".history.csv")
    }

    /// Fails before training, not after it, when the output folder is not writable.
    static func checkWritable(_ path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let dir = folder.isEmpty ? "." : folder
        let probe = dir + "/.segkit-write-test-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: probe, contents: Data("x".utf8)) else {
            throw ValidationError("cannot write to \(dir): the output folder is missing or not writable")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }
}

/// `--data` and how its pixels are scaled.
struct DataOptions: ParsableArguments {
    @Option(help: "An HDF5 file (images, masks) or fashion-canvas:[count=N,size=S,items=A-B,split=train|test,seed=K].")
    var data: String
    @Option(help: "Where Fashion-MNIST's IDX files are (default: Debian's dataset-fashion-mnist).") var fashionDir: String?
    @Option(help: "unit, raw, symmetric or mean-std:M,S (default: the segmenter's, else unit; raw if it has its own Rescaling).")
    var inputScale: String?
    @Flag(help: "Skip unreadable or mismatched image/mask pairs (and say how many) instead of stopping at the first.")
    var skipBad = false

    func load() throws -> SegmentationDataset {
        var skipped: [String] = []
        let d = try DataSource.parse(data, fashionFolder: fashionDir).load(skipBad: skipBad) { skipped.append($0) }
        if !skipped.isEmpty {
            FileHandle.standardError.write(Data("skipped \(skipped.count) bad sample(s) of \(data):\n  \(skipped.prefix(10).joined(separator: "\n  "))\n".utf8))
        }
        return d
    }

}
