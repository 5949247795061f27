import Foundation
import SegKitEngine
import SegKitKeras

/// Writes a comparison's report: `index.html` (one self-contained page, inline
/// SVG charts, images as PNG files beside it), `results.json` and `results.csv`.
public struct ComparisonReport {
    public let results: [ContenderResult]
    public let classNames: [String]
    public let background: Int
    public let commandLine: String
    public let recipeFiles: [(name: String, text: String)]
    public let title: String

    public init(results: [ContenderResult], classNames: [String], background: Int, commandLine: String,
                recipeFiles: [(name: String, text: String)], title: String = "SegKit comparison") {
        self.results = results
        self.classNames = classNames
        self.background = background
        self.commandLine = commandLine
        self.recipeFiles = recipeFiles
        self.title = title
    }

    static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    var contenders: [String] { results.reduce(into: [String]()) { if !$0.contains($1.contender) { $0.append($1.contender) } } }
    var labelCounts: [Int] { Array(Set(results.map(\.labels))).sorted() }
    func colour(_ contender: String) -> String { Self.colours[(contenders.firstIndex(of: contender) ?? 0) % Self.colours.count] }

    public static let csvHeader = "contender,labels,total_params,trainable_params,training_seconds,images_per_second,pixel_accuracy,mean_iou,mean_iou_no_background"

    public var csv: String {
        ([Self.csvHeader] + results.map { r in
            "\(r.contender),\(r.labels),\(r.totalParameters),\(r.trainableParameters),\(String(format: "%.2f", r.trainingSeconds)),"
                + "\(String(format: "%.1f", r.imagesPerSecond)),\(String(format: "%.4f", r.pixelAccuracy)),\(String(format: "%.4f", r.meanIoU)),"
                + String(format: "%.4f", r.meanIoUNoBackground)
        }).joined(separator: "\n") + "\n"
    }

    public var json: JSONValue {
        func opt(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
        return ["class_names": .array(classNames.map { .string($0) }), "background_class": .number(Double(background)),
                "command": .string(commandLine),
                "results": .array(results.map { r in
                    ["contender": .string(r.contender), "labels": .number(Double(r.labels)),
                     "total_params": .number(Double(r.totalParameters)), "trainable_params": .number(Double(r.trainableParameters)),
                     "training_seconds": .number(r.trainingSeconds), "images_per_second": .number(r.imagesPerSecond),
                     "pixel_accuracy": .number(r.pixelAccuracy), "mean_iou": .number(r.meanIoU),
                     "mean_iou_no_background": .number(r.meanIoUNoBackground), "per_class_iou": .array(r.perClassIoU.map(opt)),
                     "history": .array(r.history.map { h in
                        ["epoch": .number(Double(h.epoch)), "loss": .number(Double(h.loss)), "val_loss": opt(h.valLoss.map(Double.init)),
                         "val_mean_iou": opt(h.valMeanIoU), "val_pixel_accuracy": opt(h.valPixelAccuracy)]
                     })]
                })]
    }

    /// The text table `compare` prints.
    public var table: [[String]] {
        results.map { r in
            [r.contender, "\(r.labels)", "\(r.totalParameters)", "\(r.trainableParameters)", String(format: "%.1fs", r.trainingSeconds),
             r.imagesPerSecond > 0 ? String(format: "%.1f", r.imagesPerSecond) : "—", String(format: "%.4f", r.pixelAccuracy),
             String(format: "%.4f", r.meanIoU), String(format: "%.4f", r.meanIoUNoBackground)]
        }
    }
    public static let tableHeader = ["contender", "N", "params", "trainable", "train time", "img/s", "pixel acc", "mIoU", "mIoU (no bg)"]

    /// Writes the page and its files into `folder`; `examples` are (title, file) image rows already written there.
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
        <p>Each contender trained on the first N labelled images with the same optimizer settings and epoch budget,
        scored on the same test set (mIoU over classes present; \"no bg\" leaves out the background class).</p>
        """
        page += "<table><tr>" + Self.tableHeader.map { "<th>\(e($0))</th>" }.joined() + "</tr>"
        for n in labelCounts {
            let rows = results.filter { $0.labels == n }
            let best = rows.map(\.meanIoU).max()
            for r in rows {
                let cells = table[results.firstIndex { $0.contender == r.contender && $0.labels == n }!]
                page += "<tr\(r.meanIoU == best ? " class=\"best\"" : "")>" + cells.map { "<td>\(e($0))</td>" }.joined() + "</tr>"
            }
        }
        page += "</table><div class=\"charts\">"
        // Label efficiency: test mIoU against N.
        page += "<figure>" + SVGChart.lines(
            title: "Label efficiency: test mIoU by labelled images", xLabel: "labelled training images (N)", yLabel: "test mIoU",
            xTicks: labelCounts.enumerated().map { (Double($0.offset), "\($0.element)") }, yMax: 1,
            series: contenders.map { c in (c, colour(c), labelCounts.enumerated().compactMap { i, n in
                results.first { $0.contender == c && $0.labels == n }.map { (Double(i), $0.meanIoU) } }) }) + "</figure>"
        // Learning curves at the largest N.
        let curves = contenders.compactMap { c -> (String, String, [(Double, Double)])? in
            guard let r = results.first(where: { $0.contender == c && $0.labels == largest }), !r.history.isEmpty else { return nil }
            return (c, colour(c), r.history.map { (Double($0.epoch), $0.valMeanIoU ?? 0) })
        }
        let epochs = curves.flatMap { $0.2.map(\.0) }.max() ?? 1
        page += "<figure>" + SVGChart.lines(title: "Learning curves (N = \(largest)): validation mIoU", xLabel: "epoch", yLabel: "val mIoU",
                                            xTicks: (1...max(Int(epochs), 1)).map { (Double($0), "\($0)") }, yMax: 1, series: curves) + "</figure>"
        let losses = contenders.compactMap { c -> (String, String, [(Double, Double)])? in
            guard let r = results.first(where: { $0.contender == c && $0.labels == largest }), !r.history.isEmpty else { return nil }
            return (c, colour(c), r.history.map { (Double($0.epoch), Double($0.loss)) })
        }
        let maxLoss = max(losses.flatMap { $0.2.map(\.1) }.max() ?? 1, 1e-3)
        page += "<figure>" + SVGChart.lines(title: "Learning curves (N = \(largest)): training loss", xLabel: "epoch", yLabel: "loss",
                                            xTicks: (1...max(Int(epochs), 1)).map { (Double($0), "\($0)") }, yMax: maxLoss, series: losses) + "</figure>"
        page += "<figure>" + SVGChart.bars(title: "Per-class test IoU (N = \(largest))", categories: classNames, yLabel: "IoU",
                                           series: contenders.compactMap { c in results.first { $0.contender == c && $0.labels == largest }.map { (c, colour(c), $0.perClassIoU) } })
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
