import SegKitSupport
import Foundation
import SegKitEngine

/// Writes a comparison's report: `index.html` (one self-contained page, inline
/// SVG charts, images as PNG files beside it), `results.json` and `results.csv`.
public struct ComparisonReport {
    /// Every run: one per (contender, N, seed).
    public let results: [ContenderResult]
    /// Class names by id, for the per-class chart, the legend and `results.json`.
    public let classNames: [String]
    /// The background class: left out of "mIoU (no bg)" and of the legend.
    public let background: Int
    /// The command that made the comparison, shown under "How this was made".
    public let commandLine: String
    /// Each recipe's name and YAML text, shown on the page.
    public let recipeFiles: [(name: String, text: String)]
    /// The page's title and heading.
    public let title: String
    /// The from-scratch contender, for the verdict (nil: none was compared).
    public let baseline: String?
    /// The runs' stopping rule, for the verdict and the page's description.
    public let training: TrainingConfig
    /// Every (contender, N) over its seeds.
    public let summaries: [ContenderSummary]
    /// The comparison in words: the page's first lines and `results.json`'s `verdict`.
    public let verdict: ComparisonVerdict

    /// Groups `results` into `summaries` and derives the `verdict`; `onClassifier` names the
    /// contenders built on the classifier (nil: every one but `baseline`).
    public init(results: [ContenderResult], classNames: [String], background: Int, commandLine: String,
                recipeFiles: [(name: String, text: String)], title: String = "SegKit comparison", baseline: String? = nil,
                training: TrainingConfig = TrainingConfig(), onClassifier: Set<String>? = nil) {
        self.results = results
        self.classNames = classNames
        self.background = background
        self.commandLine = commandLine
        self.recipeFiles = recipeFiles
        self.title = title
        self.baseline = baseline
        self.training = training
        summaries = ContenderSummary.group(results)
        verdict = ComparisonVerdict(summaries: summaries, baseline: baseline, training: training, onClassifier: onClassifier)
    }

    static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    var contenders: [String] { results.reduce(into: [String]()) { if !$0.contains($1.contender) { $0.append($1.contender) } } }
    var labelCounts: [Int] { Array(Set(results.map(\.labels))).sorted() }
    func colour(_ contender: String) -> String { Self.colours[(contenders.firstIndex(of: contender) ?? 0) % Self.colours.count] }
    func summary(_ contender: String, _ labels: Int) -> ContenderSummary? {
        summaries.first { $0.contender == contender && $0.labels == labels }
    }

    /// How every trained run was stopped, in words.
    var stoppingRule: String {
        if let budget = training.budgetSeconds {
            return String(format: "for %.0f s of wall-clock time each (at most %d epochs)", budget, training.epochs)
        }
        if let patience = training.patience {
            return "until its validation mIoU had not improved for \(patience) epoch(s), at most \(training.epochs)"
        }
        return "for \(training.epochs) epoch(s)"
    }

    /// `results.csv`'s first line: seconds, images per second, and accuracy and mIoU as fractions 0…1.
    public static let csvHeader = "contender,labels,seed,total_params,trainable_params,epochs_run,best_epoch,stopped_by,training_seconds,"
        + "images_per_second,pixel_accuracy,mean_iou,mean_iou_no_background"

    /// One row per run (contender, N, seed).
    public var csv: String {
        ([Self.csvHeader] + results.map { r in
            "\(r.contender),\(r.labels),\(r.seed),\(r.totalParameters),\(r.trainableParameters),\(r.epochsRun),\(r.bestEpoch.map(String.init) ?? ""),"
                + "\(r.stopReason?.rawValue ?? ""),\(String(format: "%.2f", r.trainingSeconds)),"
                + "\(String(format: "%.1f", r.imagesPerSecond)),\(String(format: "%.4f", r.pixelAccuracy)),\(String(format: "%.4f", r.meanIoU)),"
                + String(format: "%.4f", r.meanIoUNoBackground)
        }).joined(separator: "\n") + "\n"
    }

    /// `results`: every run; `summary`: per (contender, N) the mean, min and max over seeds; `verdict`: the report's sentences.
    public var json: JSONValue {
        func opt(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
        func spread(_ s: Spread) -> JSONValue { ["mean": .number(s.mean), "min": .number(s.min), "max": .number(s.max)] }
        return ["class_names": .array(classNames.map { .string($0) }), "background_class": .number(Double(background)),
                "command": .string(commandLine), "stopping_rule": .string(stoppingRule),
                "verdict": .array(verdict.lines.map { .string($0) }),
                "summary": .array(summaries.map { s in
                    ["contender": .string(s.contender), "labels": .number(Double(s.labels)), "seeds": .array(s.runs.map { .number(Double($0.seed)) }),
                     "mean_iou": spread(s.meanIoU), "mean_iou_no_background": spread(s.meanIoUNoBackground), "pixel_accuracy": spread(s.pixelAccuracy),
                     "training_seconds": spread(s.trainingSeconds), "epochs_run": spread(s.epochs), "best_epoch": s.bestEpoch.map(spread) ?? .null,
                     "per_class_iou": .array(s.perClassIoU.map(opt))]
                }),
                "results": .array(results.map { r in
                    ["contender": .string(r.contender), "labels": .number(Double(r.labels)), "seed": .number(Double(r.seed)),
                     "total_params": .number(Double(r.totalParameters)), "trainable_params": .number(Double(r.trainableParameters)),
                     "epochs_run": .number(Double(r.epochsRun)), "best_epoch": opt(r.bestEpoch.map(Double.init)),
                     "stopped_by": r.stopReason.map { .string($0.rawValue) } ?? .null,
                     "training_seconds": .number(r.trainingSeconds), "images_per_second": .number(r.imagesPerSecond),
                     "pixel_accuracy": .number(r.pixelAccuracy), "mean_iou": .number(r.meanIoU),
                     "mean_iou_no_background": .number(r.meanIoUNoBackground), "per_class_iou": .array(r.perClassIoU.map(opt)),
                     "history": .array(r.history.map { h in
                        ["epoch": .number(Double(h.epoch)), "loss": .number(Double(h.loss)), "val_loss": opt(h.valLoss.map(Double.init)),
                         "val_mean_iou": opt(h.valMeanIoU), "val_pixel_accuracy": opt(h.valPixelAccuracy), "seconds": .number(h.seconds)]
                     })]
                })]
    }

    /// The text table `compare` prints: one row per (contender, N), figures as
    /// the mean over seeds with the range in brackets when seeds differ.
    public var table: [[String]] {
        summaries.map { s in
            let r = s.runs[0]
            func range(_ x: Spread?) -> String {
                guard let x else { return "—" }
                return x.min == x.max ? String(format: "%.0f", x.mean) : String(format: "%.0f–%.0f", x.min, x.max)
            }
            return [s.contender, "\(s.labels)", "\(s.runs.count)", "\(r.totalParameters)", "\(r.trainableParameters)",
                    s.trained ? range(s.epochs) : "—", range(s.bestEpoch),
                    s.trained ? String(format: "%.1fs", s.trainingSeconds.mean) : "—",
                    s.imagesPerSecond > 0 ? String(format: "%.1f", s.imagesPerSecond) : "—",
                    s.pixelAccuracy.text("%.3f"), s.meanIoU.text("%.3f"), s.meanIoUNoBackground.text("%.3f")]
        }
    }
    /// The column titles of `table` (params: scalars; train time: seconds; img/s: training images per second).
    public static let tableHeader = ["contender", "N", "runs", "params", "trainable", "epochs", "best", "train time", "img/s", "pixel acc",
                                     "mIoU", "mIoU (no bg)"]
    /// Columns of `table` printed right-aligned.
    public static let numericColumns = Set(1...11)

    /// Writes `results.csv`, `results.json` and `index.html` into `folder` (created when
    /// missing), each atomically; `examples` are the test-image rows (a caption, then a
    /// label and a PNG file name per column) whose files are already there.
    ///
    /// - Throws: `FileError` when a file cannot be written or replaced, Foundation's
    ///   `CocoaError` when `folder` cannot be created or a text cannot be written.
    public func write(to folder: String, examples: [(caption: String, files: [(label: String, file: String)])]) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeAtomically(folder + "/results.csv") { try csv.write(toFile: $0, atomically: false, encoding: .utf8) }
        try writeAtomically(folder + "/results.json") { try json.jsonText.write(toFile: $0, atomically: false, encoding: .utf8) }
        try writeAtomically(folder + "/index.html") { try html(examples: examples).write(toFile: $0, atomically: false, encoding: .utf8) }
    }

    func html(examples: [(caption: String, files: [(label: String, file: String)])]) -> String {
        let largest = labelCounts.last ?? 0
        let e = SVGChart.escape
        var page = """
        <!doctype html><html><head><meta charset="utf-8"><title>\(e(title))</title><style>
        body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222} table{border-collapse:collapse;margin:12px 0}
        th,td{border:1px solid #ccc;padding:4px 8px;text-align:right} th{background:#f0f0f0} td:first-child{text-align:left}
        .charts{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0} figcaption{font-size:12px;color:#555}
        .grid{display:grid;gap:6px;align-items:start} .grid img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
        pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto} .best{font-weight:bold;background:#eef7ee}
        </style></head><body><h1>\(e(title))</h1>
        <p>\(verdict.lines.map(e).joined(separator: "</p><p>"))</p>
        <p style=\"font-size:13px;color:#555\">How: each contender trained on the first N labelled images with the same optimizer settings,
        \(e(stoppingRule)), and scored with its best validation epoch's weights on the same test set (mIoU over classes present;
        \"no bg\" leaves out the background class). Figures are the mean over the runs' seeds, the range in brackets.</p>
        """
        page += "<table><tr>" + Self.tableHeader.map { "<th>\(e($0))</th>" }.joined() + "</tr>"
        let rows = table
        for n in labelCounts {
            let best = summaries.filter { $0.labels == n }.map(\.meanIoU.mean).max()
            for (i, s) in summaries.enumerated() where s.labels == n {
                page += "<tr\(s.meanIoU.mean == best ? " class=\"best\"" : "")>" + rows[i].map { "<td>\(e($0))</td>" }.joined() + "</tr>"
            }
        }
        page += "</table><div class=\"charts\">"
        // Label efficiency: test mIoU against N, the band spanning the seeds.
        let ticks = labelCounts.enumerated().map { (Double($0.offset), "\($0.element)") }
        page += "<figure>" + SVGChart.lines(
            title: "Label efficiency: test mIoU by labelled images", xLabel: "labelled training images (N)", yLabel: "test mIoU",
            xTicks: ticks, yMax: 1,
            series: contenders.map { c in (c, colour(c), labelCounts.enumerated().compactMap { i, n in summary(c, n).map { (Double(i), $0.meanIoU.mean) } }) },
            bands: contenders.map { c in (colour(c), labelCounts.enumerated().compactMap { i, n in
                summary(c, n).map { (Double(i), $0.meanIoU.min, $0.meanIoU.max) } }) })
            + "<figcaption>Lines: mean over seeds; shaded: min to max.</figcaption></figure>"
        // Learning curves at the largest N: every seed's run, in its contender's colour.
        let runs = results.filter { $0.labels == largest && !$0.history.isEmpty }
        func curve(_ r: ContenderResult, _ y: (EpochRecord) -> Double) -> (String, String, [(Double, Double)]) {
            (runs.filter { $0.contender == r.contender }.count > 1 ? "\(r.contender) s\(r.seed)" : r.contender, colour(r.contender),
             r.history.map { (Double($0.epoch), y($0)) })
        }
        let epochs = runs.map(\.history.count).max() ?? 1
        let epochTicks = stride(from: 1, through: max(epochs, 1), by: max(1, epochs / 10)).map { (Double($0), "\($0)") }
        page += "<figure>" + SVGChart.lines(title: "Learning curves (N = \(largest)): validation mIoU", xLabel: "epoch", yLabel: "val mIoU",
                                            xTicks: epochTicks, yMax: 1, series: runs.map { curve($0) { $0.valMeanIoU ?? 0 } }) + "</figure>"
        let maxLoss = max(runs.flatMap { $0.history.map { Double($0.loss) } }.max() ?? 1, 1e-3)
        page += "<figure>" + SVGChart.lines(title: "Learning curves (N = \(largest)): training loss", xLabel: "epoch", yLabel: "loss",
                                            xTicks: epochTicks, yMax: maxLoss, series: runs.map { curve($0) { Double($0.loss) } }) + "</figure>"
        page += "<figure>" + SVGChart.bars(title: "Per-class test IoU (N = \(largest), mean over seeds)", categories: classNames, yLabel: "IoU",
                                           series: contenders.compactMap { c in summary(c, largest).map { (c, colour(c), $0.perClassIoU) } })
            + "</figure></div>"
        if !examples.isEmpty {
            let columns = examples[0].files.count
            page += "<h2>Test images (N = \(largest))</h2><div class=\"grid\" style=\"grid-template-columns:repeat(\(columns),auto)\">"
            for f in examples[0].files { page += "<div><b>\(e(f.label))</b></div>" }
            for row in examples { for f in row.files { page += "<div><img src=\"\(e(f.file))\" alt=\"\(e(row.caption)) \(e(f.label))\"></div>" } }
            page += "</div><p style=\"font-size:12px\">Legend: " + classNames.enumerated().map { i, n in
                i == background ? "" : "<span style=\"background:\(ClassPalette(classes: classNames.count, background: background).hex(i));padding:0 6px\">&nbsp;</span> \(e(n))"
            }.joined(separator: " &nbsp; ") + "</p>"
        }
        page += "<h2>How this was made</h2><pre>\(e(commandLine))</pre>"
        for (name, text) in recipeFiles { page += "<h3>Recipes/\(e(name)).yaml</h3><pre>\(e(text))</pre>" }
        page += "<p>Also here: <a href=\"results.json\">results.json</a>, <a href=\"results.csv\">results.csv</a>.</p></body></html>\n"
        return page
    }
}
