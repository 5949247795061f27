import SegKitSupport
import ArgumentParser
import Foundation
import SegKit
import SegKitEngine
import SegKitKeras

/// `segkit export-training`: the run `segkit train` would make, written out as
/// a standalone Keras 3 script (TensorFlow's distribution strategies), its
/// settings and the segmenter, for a user who outgrows one machine.
struct ExportTraining: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-training",
        abstract: "Write a training run as a standalone Keras/TensorFlow script (train.py, MirroredStrategy or MultiWorkerMirroredStrategy) with the segmenter and its settings.")

    @Argument(help: "The segmenter (.keras) from `segkit build`.") var segmenter: String
    @OptionGroup var data: DataOptions
    @OptionGroup var training: TrainOptions
    @Option(help: "The folder to write (segmenter.keras, train.py, README.md, data/ for generated data); it must not exist or be empty.")
    var out: String

    /// The line of `Recipes/export/train.py` replaced by the run's settings.
    static let marker = "CONFIG = None  # segkit export-training writes this run's settings here"

    func run() throws {
        let file = try SegmenterFile(segmenter)
        let (model, classes) = (file.model, file.classes)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw ValidationError("--out \(out) is a file; export-training writes a new folder") }
            guard ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? ["?"]).isEmpty else {
                throw ValidationError("--out \(out) exists and is not empty; export-training writes a new folder")
            }
        }
        let templatePath = try recipeFolder() + "/export/train.py"
        guard let template = try? String(contentsOfFile: templatePath, encoding: .utf8), template.contains(Self.marker) else {
            throw ValidationError("\(templatePath) is missing or has no settings line (a damaged SegKit installation)")
        }
        var (config, loaded, train, val, trainPositions) = try training.prepare(file: file, data: data)
        guard train.count > 0 else { throw ValidationError("--data \(data.data) has no training samples") }
        // Resolved here, so that Keras uses the very weights SegKit would.
        config.classWeights = try Trainer.classWeights(config, train: train, classes: classes)
        config.autoClassWeights = false
        let trainer = try Trainer(graph: model.graph, classes: classes, config: config, runner: file.runner)

        // Everything is written into a sibling scratch folder and renamed at the end: no half-written export.
        let parent = (out as NSString).deletingLastPathComponent
        let scratch = (parent.isEmpty ? "." : parent) + "/.\((out as NSString).lastPathComponent).segkit-\(getpid())"
        try? FileManager.default.removeItem(atPath: scratch)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: scratch) } }

        var settings: [String: JSONValue] = [
            "format": "segkit-training/1", "segkit_version": .string(versionText()),
            "command": .string((["segkit"] + CommandLine.arguments.dropFirst()).joined(separator: " ")),
            "segmenter": "segmenter.keras", "classes": .number(Double(classes)),
            "class_names": .array((loaded.classes?.names.count == classes ? loaded.classes!.names : file.classNames).map(JSONValue.string)),
            "background_class": config.backgroundClass.map { .number(Double($0)) } ?? .null,
            "ignore_label": config.ignoreLabel.map { .number(Double($0)) } ?? .null,
            "input_channels": .number(Double(train.channels)), "input_scale": .string(config.inputScale.description),
            "val_fraction": .number(training.valData == nil ? training.valFraction : 0),
            "epochs": .number(Double(config.epochs)), "batch": .number(Double(config.batchSize)), "optimizer": .string(config.optimizer.rawValue),
            "lr": .number(Double(config.learningRate)), "momentum": .number(Double(config.momentum)),
            "weight_decay": .number(Double(config.weightDecay)), "schedule": .string(config.schedule.rawValue),
            "loss": .string(config.loss.rawValue),
            "class_weights": config.classWeights.map { .array($0.map { .number(Double($0)) }) } ?? .null,
            "border_weight": config.borderWeight.map { ["w0": .number(Double($0.w0)), "sigma": .number(Double($0.sigma))] } ?? .null,
            "augment": .array(config.augment.map(\.rawValue).sorted().map(JSONValue.string)),
            "scale_range": config.scaleRange.map { [.number(Double($0.lowerBound)), .number(Double($0.upperBound))] } ?? .null,
            "crop": config.crop.map { [.number(Double($0.height)), .number(Double($0.width))] } ?? .null,
            "seed": .number(Double(config.seed)), "patience": config.patience.map { .number(Double($0)) } ?? .null,
            "frozen_layers": .array(model.graph.layers.filter { !$0.isTrainable && !$0.parameters.isEmpty }.map { .string($0.name) }),
            "mask_colors": try data.maskColors.map { .array(try MaskColours(path: $0).colours.map { .array($0.map { .number(Double($0)) }) }) } ?? .null,
        ]
        let trainSource = try DataExport(text: data.data, fashionFolder: data.fashionDir, base: loaded.samples, positions: trainPositions,
                                         folder: scratch, name: "train")
        settings["data"] = trainSource.source
        settings["train_files"] = trainSource.files
        settings["train_indices"] = trainSource.indices
        settings["mask_values"] = trainSource.maskValues
        if let val {
            // Held out of --data: the positions after the training ones; --val-data: all of it.
            let valSource = training.valData == nil
                ? try DataExport(text: data.data, fashionFolder: data.fashionDir, base: loaded.samples,
                                 positions: Array(trainPositions.count..<loaded.samples.count), folder: scratch, name: "train")
                : try DataExport(text: training.valData!, fashionFolder: data.fashionDir, base: val, positions: Array(0..<val.count),
                                 folder: scratch, name: "val")
            settings["val_data"] = training.valData == nil ? .null : valSource.source
            settings["val_files"] = valSource.files
            settings["val_indices"] = valSource.indices
        } else {
            settings["val_data"] = .null
        }
        settings["placement"] = try Self.placements(file.runner.sizeRule, train: train, val: val, config: config)
        // The Keras script's check: the loss of the first training images of the first one's size, in inference mode.
        let first = train.size(of: 0)
        let positions = Array((0..<train.count).filter { train.size(of: $0) == first }.prefix(min(config.batchSize, 4)))
        let loss = try trainer.inferenceLoss(positions, of: train)
        settings["check"] = ["train_positions": .array(positions.map { .number(Double($0)) }), "loss": .number(Double(loss)), "mode": "inference"]

        // A quote written as \u0027: the settings can then never close the script's r'''…''' string (a class name, a path).
        let json = JSONValue.object(settings).jsonText.replacingOccurrences(of: "'", with: "\\u0027")
        try KerasWriter(graph: model.graph, name: model.name, metadata: file.stored.json).write(to: scratch + "/segmenter.keras")
        let script = template.replacingOccurrences(of: Self.marker, with: "CONFIG = json.loads(r'''\(json)''')")
        try script.write(toFile: scratch + "/train.py", atomically: false, encoding: .utf8)
        try Self.readme(settings: settings, command: settings["command"]?.string ?? "").write(toFile: scratch + "/README.md", atomically: false, encoding: .utf8)
        if FileManager.default.fileExists(atPath: out) { try FileManager.default.removeItem(atPath: out) }   // empty, checked above
        try FileManager.default.moveItem(atPath: scratch, toPath: out)
        done = true
        print("Wrote \(out)/: segmenter.keras, train.py (\(train.count) training and \(val?.count ?? 0) validation image(s), "
              + "\(config.epochs) epoch(s)), README.md" + (FileManager.default.fileExists(atPath: out + "/data") ? ", data/" : ""))
        print(String(format: "Check: first-batch loss %.6f (SegKit); python3 %@/train.py --check compares Keras's", loss, out))
        print("Train: python3 \(out)/train.py  (MirroredStrategy; with TF_CONFIG set, MultiWorkerMirroredStrategy — see \(out)/README.md)")
    }

    /// Per axis, the placement of every length the run can feed the graph:
    /// [pad before, pad after, output start, output length] (`SizeRule`; rows and columns are independent).
    static func placements(_ rule: SizeRule, train: any LabelledImages, val: (any LabelledImages)?, config: TrainingConfig) throws -> JSONValue {
        var sizes = Set<[Int]>()
        func add(_ set: any LabelledImages) { for i in 0..<set.count { let s = set.size(of: i); sizes.insert([s.height, s.width]) } }
        // Validation images and the training images at their own sizes (the check batch is one of them).
        if let val { add(val) }
        add(train)
        var rows = Set(sizes.map { $0[0] }), cols = Set(sizes.map { $0[1] })
        if let crop = config.crop {
            rows.insert(crop.height)
            cols.insert(crop.width)
        } else if let scale = config.scaleRange {
            // Rescaled images take every length between the smallest and the largest scaled side.
            let hs = (0..<train.count).map { train.size(of: $0).height }, ws = (0..<train.count).map { train.size(of: $0).width }
            func span(_ v: [Int]) -> ClosedRange<Int> {
                max(1, Int((Float(v.min()!) * scale.lowerBound).rounded(.down)) - 1)...(Int((Float(v.max()!) * scale.upperBound).rounded(.up)) + 1)
            }
            rows.formUnion(span(hs))
            cols.formUnion(span(ws))
        }
        let anyRow = rows.min()!, anyCol = cols.min()!
        var rowTable: [String: JSONValue] = [:], colTable: [String: JSONValue] = [:]
        for r in rows.sorted() {
            let p = try rule.placement(height: r, width: anyCol)
            rowTable["\(r)"] = .array([p.padTop, p.padBottom, p.outputTop, p.outputHeight].map { .number(Double($0)) })
        }
        for c in cols.sorted() {
            let p = try rule.placement(height: anyRow, width: c)
            colTable["\(c)"] = .array([p.padLeft, p.padRight, p.outputLeft, p.outputWidth].map { .number(Double($0)) })
        }
        return ["rows": .object(rowTable), "cols": .object(colTable)]
    }

    static func readme(settings: [String: JSONValue], command: String) -> String {
        """
        # A SegKit training run for Keras/TensorFlow

        Written by `\(command)`.

        - `segmenter.keras`: the segmenter to train (Keras 3 loads it; frozen layers are listed in train.py's settings).
        - `train.py`: the same run on Keras 3 with the TensorFlow back end, no SegKit needed: the same data files and
          validation hold-out, input scaling, augmentations, loss, optimizer and schedule, frozen layers (frozen
          BatchNormalization in inference mode), early stopping and best-epoch rule. Its settings are the `CONFIG`
          line near its top.
        - `data/`: the generated data (only for `fashion-canvas:` sources).

        ## Run it

        ```sh
        pip install tensorflow            # Keras 3 comes with TensorFlow 2.16 and later
        python3 train.py --check          # Keras's loss on the first batch against SegKit's (within 1e-5)
        python3 train.py                  # every GPU of this machine (MirroredStrategy), else the CPU
        python3 train.py --out trained/ --epochs 20
        ```

        On several machines set `TF_CONFIG` on each (MultiWorkerMirroredStrategy), e.g. two workers:

        ```sh
        TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}' python3 train.py
        TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 1}}' python3 train.py
        ```

        `batch` is the global batch, split across all replicas; see train.py's header for the learning-rate rule.
        The chief (worker 0) writes `trained/best.keras` and `trained/history.csv`, which SegKit reads back:

        ```sh
        segkit eval trained/best.keras --data …
        segkit predict trained/best.keras image.png --out masks/
        segkit compare … --add-run trained/
        ```

        """
    }
}

/// How train.py finds one data source and the selected samples in it: the
/// user's own files for folders and layouts, or (for generated data) an HDF5
/// file written into the export.
struct DataExport {
    let source: JSONValue
    let files: JSONValue
    let indices: JSONValue
    /// The mask value → class table of a layout that remaps values (Pets' trimaps), else null.
    let maskValues: JSONValue

    /// `positions` are samples of `base`, the set the source opened as (which may
    /// itself select from files: `--skip-bad`); generated data is written whole.
    ///
    /// - Throws: `DataError` for a source train.py cannot read, `HDF5Error` when generated data cannot be written.
    init(text: String, fashionFolder: String?, base opened: any LabelledImages, positions selected: [Int], folder: String, name: String) throws {
        let (base, inner) = Self.unwrap(opened)
        let positions = selected.map { inner[$0] }
        let absolute = { (p: String) in URL(fileURLWithPath: p).standardizedFileURL.path }
        var values: JSONValue = .null
        switch try DataSource.parse(text, fashionFolder: fashionFolder) {
        case let .hdf5(path):
            source = ["kind": "hdf5", "path": .string(absolute(path))]
        case .fashionCanvas:
            guard let generated = base as? SegmentationDataset else { throw DataError.notFound("generated data in an unexpected form") }
            try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: "\(folder)/data/\(name).h5") { try generated.writeHDF5("\(folder)/data/\(name).h5") }
            source = ["kind": "hdf5", "path": .string("data/\(name).h5")]
        case let .folder(root):
            source = ["kind": "folder", "path": .string(absolute(root))]
        case let .voc(_, split):
            source = ["kind": "voc", "path": .string(absolute((base as? ImagePairSet)?.root ?? "")), "split": .string(split)]
        case let .pets(dir, split, border):
            source = ["kind": "pets", "path": .string(absolute(dir)), "split": .string(split), "border": .string(border.rawValue)]
        }
        if let pairs = base as? ImagePairSet {
            files = .array(positions.map { [.string(pairs.pairs[$0].image), .string(pairs.pairs[$0].mask)] })
            indices = .null
            if case let .remapped(table) = pairs.encoding {
                values = .object(Dictionary(uniqueKeysWithValues: table.map { ("\($0.key)", JSONValue.number(Double($0.value))) }))
            }
        } else {
            files = .null
            indices = .array(positions.map { .number(Double($0)) })
        }
        maskValues = values
    }

    /// The set a selection was taken from, and the selected samples' positions in it.
    static func unwrap(_ set: any LabelledImages) -> (any LabelledImages, [Int]) {
        guard let subset = set as? LabelledSubset else { return (set, Array(0..<set.count)) }
        let (base, inner) = unwrap(subset.base)
        return (base, subset.indices.map { inner[$0] })
    }
}
