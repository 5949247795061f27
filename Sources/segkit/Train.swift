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
    @Option(parsing: .unconditional, help: "Fraction of --data held out for validation when no --val-data.") var valFraction: Double = 0.1
    @Option(parsing: .unconditional) var epochs: Int = 10
    @Option(parsing: .unconditional) var batch: Int = 16
    @Option var optimizer: TrainingConfig.OptimizerKind = .adam
    @Option(parsing: .unconditional) var lr: Float = 1e-3
    @Option(parsing: .unconditional) var momentum: Float = 0.9
    @Option(parsing: .unconditional) var weightDecay: Float = 0
    @Option var schedule: TrainingConfig.Schedule = .constant
    @Option var loss: SegmentationLoss = .ce
    @Option(parsing: .unconditional, help: "auto, or one weight per class (comma-separated).") var classWeights: String?
    @Option(parsing: .unconditional, help: "U-Net border weights W0,SIGMA (e.g. 10,5).") var borderWeight: String?
    @Option(help: "Comma-separated: flip, shift, elastic, scale:A-B (random rescale by A…B before the crop, e.g. scale:0.5-2.0).")
    var augment: String?
    @Option(parsing: .unconditional, help: "Train on random H,W crops (smaller images padded with ignored pixels); without it, whole images in size buckets.")
    var crop: String?
    @Option(parsing: .unconditional) var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Stop after this many epochs without a better val mIoU.") var patience: Int?
    @Option(parsing: .unconditional, help: "Memory for the frozen-encoder feature cache before it spills to disk.") var cacheMb: Int = 1024
    @Flag(help: "Do not cache frozen-encoder features.") var noCache = false
    @Option(parsing: .unconditional, help: "A class id that does not count in the loss or the metrics.") var ignoreLabel: Int32?
    @Option(help: "Continue a run from its .last.keras checkpoint.") var resume: String?
    @Option(help: "Where the best segmenter goes; beside it NAME.last.keras (checkpoint) and NAME.history.csv.") var out: String

    func validate() throws {
        try require(epochs, in: 1...1_000_000, "--epochs")
        try require(batch, in: 1...65_536, "--batch")
        try require(lr, in: 1e-12...100, "--lr")
        try require(momentum, in: 0...0.9999, "--momentum")
        try require(weightDecay, in: 0...10, "--weight-decay")
        try require(valFraction, in: 0...0.99, "--val-fraction")
        if let patience { try require(patience, in: 1...1_000_000, "--patience") }
        try require(cacheMb, in: 0...(1 << 30), "--cache-mb")
        guard out.hasSuffix(".keras") else { throw ValidationError("--out \(out): a trained segmenter is a .keras file (its checkpoint is NAME.last.keras)") }
        try checkSpec {
            if let classWeights, classWeights != "auto" { _ = try TrainingConfig.parseClassWeights(classWeights, classes: classWeights.split(separator: ",").count) }
            if let borderWeight { _ = try TrainingConfig.parseBorderWeight(borderWeight) }
            if let augment { _ = try TrainingConfig.parseAugment(augment) }
            if let crop { _ = try TrainingConfig.parseCrop(crop) }
        }
    }

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
        config.schedule = schedule
        config.loss = loss
        if let classWeights {
            let weights = try TrainingConfig.parseClassWeights(classWeights, classes: classes)
            config.classWeights = weights
            config.autoClassWeights = weights == nil
        }
        // Class weights act through the weighted losses: given with plain cross-entropy
        // they switch to weighted-ce; weighted-ce without weights uses auto.
        if classWeights != nil && loss == .ce {
            config.loss = .weightedCE
            print("--class-weights: training with weighted cross-entropy (--loss weighted-ce)")
        }
        if loss == .weightedCE && classWeights == nil {
            config.autoClassWeights = true
            print("--loss weighted-ce without --class-weights: weights from the training masks' class frequencies (auto)")
        }
        if let borderWeight { config.borderWeight = try TrainingConfig.parseBorderWeight(borderWeight) }
        if let augment { (config.augment, config.scaleRange) = try TrainingConfig.parseAugment(augment) }
        if let crop { config.crop = try TrainingConfig.parseCrop(crop) }
        config.seed = seed
        config.patience = patience
        config.cacheMB = cacheMb
        config.useCache = !noCache
        config.ignoreLabel = ignoreLabel
        config.inputScale = try file.inputScaling(override: data.inputScale)

        let channels = inputChannels(of: model.graph)
        let loaded = try data.open(classes: classes, channels: channels, ignoreLabel: ignoreLabel)
        config.ignoreLabel = loaded.ignoreLabel
        config.backgroundClass = loaded.classes?.background ?? file.stored.background
        var train = loaded.samples
        var val: (any LabelledImages)?
        if let valData {
            val = try data.open(valData, classes: classes, channels: channels, ignoreLabel: loaded.ignoreLabel).samples
        } else if valFraction > 0 {
            let held = max(1, Int(Double(train.count) * valFraction))
            guard held < train.count else { throw ValidationError("--val-fraction \(valFraction) leaves no training samples of the \(train.count)") }
            val = train.selecting(Array((train.count - held)..<train.count))
            train = train.first(train.count - held)
        }
        print("Training \(model.name) on \(train.count) sample(s) of \(data.data) (\(sizeSummary(train))), validating on \(val?.count ?? 0); "
              + "input scale \(config.inputScale)" + (config.ignoreLabel.map { "; label \($0) ignored" } ?? ""))
        print(batchingSummary(train, config))
        let trainer = try Trainer(graph: model.graph, classes: classes, config: config, runner: file.runner)
        if resume != nil {
            guard let state = model.trainingState else { throw ValidationError("\(start) holds no training state (use NAME.last.keras)") }
            try trainer.restore(from: state)
            print("Resuming at epoch \(trainer.epoch + 1), step \(trainer.step)")
        }
        var metadata = meta.object ?? [:]
        metadata["input_scale"] = .string(config.inputScale.description)
        // The data's class names, when the segmenter had none of its own.
        if let names = loaded.classes?.names, names.count == classes, file.classNames == SegmenterFile.defaultNames(classes) {
            metadata["class_names"] = .array(names.map(JSONValue.string))
        }
        if let background = config.backgroundClass, background < classes { metadata["background_class"] = .number(Double(background)) }
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
            _ = try trainer.fit(train: train, val: val, observer: ProgressPrinter(batchSize: batch),
                                checkpoint: { try save($0, last, true) }, improved: { try save($0, out, false) })
        } catch let e as TrainingError {
            // Interrupted is not success: the conventional status of a run ended by SIGINT.
            if case .interrupted = e { print("\(e)\nresume with: segkit train \(segmenter) … --resume \(last) --out \(out)"); throw ExitCode(130) }
            throw e
        }
        let best = val == nil ? String(format: "Lowest training loss %.4f", -trainer.bestScore)
                              : String(format: "Best val mIoU %.4f", trainer.bestScore)
        print("\(best) → \(out); checkpoint \(last); history \(history); peak memory \(Int(Benchmarks.peakRSSMiB)) MiB")
    }

    /// NAME.keras → (NAME.last.keras, NAME.history.csv).
    static func companions(of out: String) -> (String, String) {
        let base = out.hasSuffix(".keras") ? String(out.dropLast(6)) : out
        return (base + ".last.keras", base + ".history.csv")
    }

    /// Fails before training, not after it, when the output folder is not writable.
    /// The probe is created in place (FileManager.createFile writes through a temporary
    /// it leaves behind when killed) and named like `writeAtomically`'s temporaries,
    /// so a probe a killed run left is removed by the next write of `path`.
    static func checkWritable(_ path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let dir = folder.isEmpty ? "." : folder
        let probe = dir + "/.\((path as NSString).lastPathComponent).segkit-\(getpid())-probe"
        let fd = open(probe, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write to \(dir): the output folder is missing or not writable") }
        close(fd)
        unlink(probe)
    }
}

/// How training batches are formed, and what the feature cache does with them, in words.
func batchingSummary(_ train: any LabelledImages, _ config: TrainingConfig) -> String {
    var parts: [String] = []
    if let range = config.scaleRange { parts.append("images rescaled by \(range.lowerBound)-\(range.upperBound)") }
    if let crop = config.crop {
        parts.append("random crops of \(crop.height) rows x \(crop.width) columns (smaller images padded with ignored pixels)")
    } else if config.scaleRange != nil || train.uniformSize == nil {
        let sizes = train.sizeCounts.count
        parts.append(config.scaleRange != nil
            ? "one image per batch (rescaled images differ in size; --crop H,W batches them)"
            : "\(sizes) image sizes: each batch holds images of one size (size buckets; --crop H,W mixes them)")
        if config.scaleRange != nil { return "Batches: " + parts.joined(separator: ", ") }
    } else {
        parts.append("whole \(train.size(of: 0).width)x\(train.size(of: 0).height) images")
    }
    if !config.augment.isEmpty { parts.append(config.augment.map(\.rawValue).sorted().joined(separator: "+")) }
    // Crops alone can come from the cache (windows of whole-image maps); anything else changes the pixels every step.
    let changesPixels = config.scaleRange != nil || !config.augment.isEmpty
    return "Batches: " + parts.joined(separator: ", ")
        + (changesPixels && config.useCache ? "; no frozen-encoder feature cache (every step sees new pixels)" : "")
}
