import SegKitSupport
import ArgumentParser
import Foundation
import SegKit
import SegKitEngine
import SegKitKeras

/// `segkit compare`: frozen-encoder recipes against a U-Net from scratch, at several labelled-set sizes.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare recipes on a classifier with a from-scratch U-Net at several labelled-set sizes; write a report.")

    @Option(help: "The Keras classifier.") var classifier: String
    @Option(help: "Architecture for a weights-only classifier file.") var config: String?
    @Option(help: "The classifier's output to use, for a model with several.") var output: String?
    @Option(help: "Comma-separated recipes to build on the classifier.") var recipes: String = "transposed-skips,fcn-8s,heatmap-bilinear"
    @Option(help: "The from-scratch baseline recipe ('none' for no baseline).") var baseline: String = "unet-scratch"
    @OptionGroup var data: DataOptions
    @Option(help: "Test data (same forms as --data).") var testData: String
    @Option(help: "Labelled-set sizes: the first N training samples.") var labels: String = "50,100,200"
    @Option(parsing: .unconditional, help: "Validation samples, taken from the end of --data (after the largest N).") var valCount: Int = 32
    @Option(parsing: .unconditional, help: "Stop a contender after this many epochs without a better validation mIoU (its best epoch's weights are scored; default 10).")
    var patience: Int?
    @Option(parsing: .unconditional, help: "The most epochs a contender trains (default 100 with patience, none with --budget-seconds).") var maxEpochs: Int?
    @Option(parsing: .unconditional, help: "Instead of patience: train each contender for this many seconds of wall-clock time (feature cache included).")
    var budgetSeconds: Double?
    @Option(parsing: .unconditional, help: "Exactly this many epochs per contender, no early stopping (instead of --patience/--max-epochs).")
    var epochs: Int?
    @Option(parsing: .unconditional, help: "Runs per contender and N, with seeds --seed, --seed+1, …; the report shows mean and range.")
    var seeds: Int = 1
    @Option(parsing: .unconditional) var batch: Int = 16
    @Option var optimizer: TrainingConfig.OptimizerKind = .adam
    @Option(parsing: .unconditional) var lr: Float = 1e-3
    @Option(parsing: .unconditional) var seed: UInt64 = 0
    @Option(name: .customLong("set"), help: "Override options of every recipe, KEY=VALUE (repeatable; or KEY=VALUE,KEY=VALUE).") var overrides: [String] = []
    @Option(parsing: .unconditional, help: "Test images shown in the report.") var examples: Int = 6
    @Option(parsing: .unconditional, help: "Segmentation classes, when the data's differ from the classifier's (every recipe then gets a new score layer).")
    var classes: Int?
    @Option(parsing: .unconditional, help: "A class id that does not count (default: the data layout's, e.g. VOC's 255).") var ignoreLabel: Int32?
    @Option(parsing: .unconditional, help: "Train on random H,W crops (default: whole images, in size buckets when sizes differ).") var crop: String?
    @Option(help: "A run trained elsewhere, scored and shown beside the others: [NAME=]PATH[:N], PATH train.py's output folder (best.keras, history.csv) or a .keras file (history NAME.history.csv beside it), N the labelled images it was trained on (default: the largest --labels). Repeatable.")
    var addRun: [String] = []
    @Option(help: "Report folder.") var out: String

    static let defaultPatience = 10
    static let defaultMaxEpochs = 100

    func validate() throws {
        if let epochs { try require(epochs, in: 1...1_000_000, "--epochs") }
        if let patience { try require(patience, in: 1...1_000_000, "--patience") }
        if let maxEpochs { try require(maxEpochs, in: 1...1_000_000, "--max-epochs") }
        if let budgetSeconds { try require(budgetSeconds, in: 1...1e9, "--budget-seconds") }
        try require(seeds, in: 1...1000, "--seeds")
        // One stopping rule: a fixed number of epochs, a time budget, or patience (up to --max-epochs).
        if epochs != nil, budgetSeconds != nil || patience != nil || maxEpochs != nil {
            throw ValidationError("--epochs is a fixed number of epochs: give it without --patience, --max-epochs or --budget-seconds")
        }
        if budgetSeconds != nil, patience != nil { throw ValidationError("give --patience or --budget-seconds (a fixed time), not both") }
        try require(batch, in: 1...65_536, "--batch")
        try require(lr, in: 1e-12...100, "--lr")
        try require(valCount, in: 1...10_000_000, "--val-count")
        if let classes { try require(classes, in: 1...65_536, "--classes") }
        try require(examples, in: 0...1000, "--examples")
        try checkSpec {
            _ = try TrainingConfig.parseLabelCounts(labels)
            if let crop { _ = try TrainingConfig.parseCrop(crop) }
            for o in overrides { _ = try OptionSpec("--set", o).settings(o) }
        }
    }

    func run() throws {
        _ = try runComparison(commandLine: (["segkit"] + CommandLine.arguments.dropFirst()).joined(separator: " "))
    }

    func runComparison(commandLine: String) throws -> ComparisonReport {
        let counts = try TrainingConfig.parseLabelCounts(labels)
        let folder = try recipeFolder()
        let probe = try loadModel(classifier, config: config)
        let classes = try classes ?? naming(classifier) {
            try segmentationClasses(of: try output.map { try selectingOutput(probe.graph, named: $0) } ?? probe.graph)
        }
        let channels = inputChannels(of: probe.graph)
        let loaded = try data.open(classes: classes, channels: channels, ignoreLabel: ignoreLabel)
        let all = loaded.samples
        let test = try data.open(testData, classes: classes, channels: channels, ignoreLabel: loaded.ignoreLabel).samples
        let classNames = loaded.classes?.names.count == classes ? loaded.classes!.names : SegmenterMetadata.defaultNames(classes)
        let largest = counts.last!
        guard all.count >= largest + 1 else { throw ValidationError("--data has \(all.count) samples; --labels needs \(largest) plus validation samples") }
        let val = all.selecting(Array(max(largest, all.count - valCount)..<all.count))
        var training = TrainingConfig()
        // The stopping rule: a fixed number of epochs, a time budget, or (default) patience up to --max-epochs.
        if let epochs {
            training.epochs = epochs
        } else if let budgetSeconds {
            training.epochs = maxEpochs ?? 1_000_000
            training.budgetSeconds = budgetSeconds
        } else {
            training.epochs = maxEpochs ?? Self.defaultMaxEpochs
            training.patience = patience ?? Self.defaultPatience
        }
        training.batchSize = batch
        training.optimizer = optimizer
        training.learningRate = lr
        training.seed = seed
        training.ignoreLabel = loaded.ignoreLabel
        training.backgroundClass = loaded.classes?.background
        if let crop { training.crop = try TrainingConfig.parseCrop(crop) }
        training.inputScale = try data.inputScale.map(InputScaling.init(parsing:)) ?? .defaultScaling(for: probe.graph)
        var comparison = Comparison(recipes: recipes.split(separator: ",").map(String.init), baseline: baseline == "none" ? nil : baseline,
                                    labelCounts: counts, training: training, recipeFolder: folder) {
            // The one import: every contender is built on its own copy of it.
            probe
        }
        comparison.seeds = seeds
        // Runs trained elsewhere are read before anything trains: a bad --add-run fails in seconds, not after the comparison.
        var added: [(AddedRun, SegmenterFile, [EpochRecord])] = []
        for spec in addRun {
            let run = try AddedRun(spec, largest: largest)
            guard !(comparison.contenders + added.map(\.0.name)).contains(run.name) else {
                throw ValidationError("--add-run \(spec): '\(run.name)' is already a contender's name (rename the file or folder)")
            }
            let file: SegmenterFile
            do { file = try SegmenterFile(run.segmenter) } catch {
                throw ValidationError("--add-run \(spec): \(run.segmenter) is not a segmenter SegKit can run (\(error))")
            }
            guard file.classes == classes else { throw ValidationError("--add-run \(spec): the segmenter has \(file.classes) classes, this comparison \(classes)") }
            added.append((run, file, try run.history.map { try EpochRecord.parseCSV(try String(contentsOfFile: $0, encoding: .utf8), file: $0) } ?? []))
        }
        comparison.overrides = overrides + (output.map { ["output=\($0)"] } ?? []) + (self.classes.map { ["classes=\($0)"] } ?? [])
        let rule = epochs.map { "\($0) epoch(s) each" }
            ?? budgetSeconds.map { String(format: "%.0f s of training each", $0) }
            ?? "each until \(training.patience ?? 0) epoch(s) without a better validation mIoU, at most \(training.epochs)"
        print("Comparing \(comparison.contenders.joined(separator: ", ")) at N = \(counts.map(String.init).joined(separator: ", ")); "
              + "\(val.count) validation and \(test.count) test image(s); \(rule)" + (seeds > 1 ? "; \(seeds) seeds" : ""))
        // The example images show each contender's first seed at the largest N.
        var kept: [String: Segmenter] = [:]
        let started = Date()
        let background = loaded.classes?.background ?? classes - 1
        var results = try comparison.run(train: all, validation: val, test: test, classes: classes, background: background,
                                         progress: { print(String(format: "[%5.0fs] ", Date().timeIntervalSince(started)) + $0) },
                                         observer: ProgressPrinter(batchSize: batch), keep: { name, n, seed, seg in if n == largest, seed == training.seed { kept[name] = seg.runner } })
        var contenders = comparison.contenders
        for (run, file, history) in added {
            print("\(run.name): trained elsewhere on \(run.labels) labelled image(s), \(history.count) epoch(s) in its history; scoring it")
            results.append(try .external(name: run.name, labels: run.labels, segmenter: file.runner, history: history, classes: classes, test: test,
                                         inputScale: try file.inputScaling(override: data.inputScale), batch: batch, ignoreLabel: loaded.ignoreLabel,
                                         background: background))
            contenders.append(run.name)
            if run.labels == largest { kept[run.name] = file.runner }
        }
        // Example images: input, ground truth, and each contender's prediction, as overlays.
        try FileManager.default.createDirectory(atPath: out + "/images", withIntermediateDirectories: true)
        let palette = ClassPalette(classes: classes, background: background)
        var rows: [(caption: String, files: [(label: String, file: String)])] = []
        for i in 0..<min(examples, test.count) {
            let one = try test.sample(i)
            let x = try Tensor(shape: [1, one.height, one.width, one.channels],
                               scalars: test.isByteValued ? one.pixels.map(training.inputScale.apply) : one.pixels)
            var files: [(String, String)] = []
            func save(_ label: String, _ name: String, _ labels: [Int]) throws {
                try writeAtomically("\(out)/images/\(name)") {
                    try PNGImage.write($0, width: one.width, height: one.height, channels: 3,
                                       pixels: palette.overlay(pixels: one.pixels, channels: one.channels, labels: labels))
                }
                files.append((label, "images/\(name)"))
            }
            try save("image", "test\(i)_image.png", [Int](repeating: classes - 1, count: one.height * one.width))
            try save("ground truth", "test\(i)_truth.png", one.mask.map(Int.init))
            for c in contenders {
                guard let runner = kept[c] else { continue }
                let scores = try runner.scores(x)
                try save(c, "test\(i)_\(c).png", argmax(scores))
            }
            rows.append(("test image \(i)", files))
        }
        // The recipe files as written, and the --set overrides every one of them ran with.
        let setLine = overrides.isEmpty ? "" : "\n# this comparison overrode: " + overrides.map { "--set \($0)" }.joined(separator: " ") + "\n"
        let recipeTexts = comparison.contenders.compactMap { name -> (String, String)? in
            (try? String(contentsOfFile: "\(folder)/\(name).yaml", encoding: .utf8)).map { (name, $0 + setLine) }
        }
        let report = ComparisonReport(results: results, classNames: classNames, background: background, commandLine: commandLine,
                                      recipeFiles: recipeTexts, baseline: comparison.baseline, training: training,
                                      onClassifier: Set(comparison.recipes))
        try report.write(to: out, examples: rows)
        printTable(header: ComparisonReport.tableHeader, rows: report.table, rightAligned: ComparisonReport.numericColumns)
        print("")
        for line in report.verdict.lines { print(line) }
        print("Report: \(out)/index.html (also results.json, results.csv); \(String(format: "%.0f", Date().timeIntervalSince(started)))s in all")
        return report
    }
}

/// `--add-run [NAME=]PATH[:N]`: a segmenter trained elsewhere and its history.
struct AddedRun {
    let name: String
    let segmenter: String
    let history: String?
    let labels: Int

    /// - Throws: `ValidationError` naming what is missing.
    init(_ spec: String, largest: Int) throws {
        var path = spec, labels = largest, given: String?
        // NAME=PATH names the contender (two train.py outputs are both called `trained`).
        if let eq = spec.firstIndex(of: "="), !spec[..<eq].contains("/") {
            (given, path) = (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
        }
        if let colon = path.lastIndex(of: ":"), let n = Int(path[path.index(after: colon)...]) {
            guard n >= 1 else { throw ValidationError("--add-run \(spec): N must be at least 1") }
            (path, labels) = (String(path[..<colon]), n)
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw ValidationError("--add-run \(spec): \(path) does not exist") }
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        if isFolder.boolValue {
            segmenter = trimmed + "/best.keras"
            guard FileManager.default.fileExists(atPath: segmenter) else { throw ValidationError("--add-run \(spec): no best.keras in \(path)") }
            history = FileManager.default.fileExists(atPath: trimmed + "/history.csv") ? trimmed + "/history.csv" : nil
            name = given ?? (trimmed as NSString).lastPathComponent
        } else {
            segmenter = path
            let companion = Checkpoint.companions(of: path).history
            history = FileManager.default.fileExists(atPath: companion) ? companion : nil
            name = given ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        }
        self.labels = labels
    }
}
