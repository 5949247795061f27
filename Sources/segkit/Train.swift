import SegKitSupport
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
    @OptionGroup var training: TrainOptions
    @Option(help: "Continue a run from its .last.keras checkpoint.") var resume: String?
    @Option(help: "Where the best segmenter goes; beside it NAME.last.keras (checkpoint) and NAME.history.csv.") var out: String

    func validate() throws {
        guard out.hasSuffix(".keras") else { throw ValidationError("--out \(out): a trained segmenter is a .keras file (its checkpoint is NAME.last.keras)") }
    }

    func run() throws {
        let start = resume ?? segmenter
        let file = try SegmenterFile(start)
        let (model, classes) = (file.model, file.classes)
        try Self.checkWritable(out)
        let (config, loaded, train, val, _) = try training.prepare(file: file, data: data)
        print("Training \(model.name) on \(train.count) sample(s) of \(data.data) (\(sizeSummary(train))), validating on \(val?.count ?? 0); "
              + "input scale \(config.inputScale)" + (config.ignoreLabel.map { "; label \($0) ignored" } ?? ""))
        print(batchingSummary(train, config))
        let trainer = try Trainer(graph: model.graph, classes: classes, config: config, runner: file.runner)
        if resume != nil {
            try Checkpoint.resume(trainer, from: model, file: start)
            print("Resuming at epoch \(trainer.epoch + 1), step \(trainer.step)")
        }
        var metadata = file.stored
        metadata.inputScale = config.inputScale
        // The data's class names, when the segmenter had none of its own.
        if let names = loaded.classes?.names, names.count == classes, file.classNames == SegmenterMetadata.defaultNames(classes) {
            metadata.classNames = names
        }
        if let background = config.backgroundClass, background < classes { metadata.background = background }
        let run = Checkpoint(best: out, modelName: model.name, metadata: metadata)
        let (last, history) = (run.last, run.history)
        let interrupt = InterruptFlag()
        interrupt.install()
        trainer.shouldStop = { interrupt.isRaised }
        do {
            _ = try trainer.fit(train: train, val: val, observer: ProgressPrinter(batchSize: training.batch),
                                checkpoint: run.saveLast, improved: run.saveBest)
        } catch let e as TrainingError {
            // Interrupted is not success: the conventional status of a run ended by SIGINT.
            if case .interrupted = e { print("\(e)\nresume with: segkit train \(segmenter) … --resume \(last) --out \(out)"); throw ExitCode(130) }
            throw e
        }
        let best = val == nil ? String(format: "Lowest training loss %.4f", -trainer.bestScore)
                              : String(format: "Best val mIoU %.4f", trainer.bestScore)
        print("\(best) → \(out); checkpoint \(last); history \(history); peak memory \(Int(Benchmarks.peakRSSMiB)) MiB")
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
