import ArgumentParser
import Foundation
import SegKit
import SegKitEngine

/// `segkit eval`: segmentation metrics of a segmenter on labelled data.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a segmenter: pixel accuracy, mIoU, per-class IoU and Dice, confusion matrix.")

    @Argument(help: "The segmenter (.keras or .h5).") var segmenter: String
    @OptionGroup var data: DataOptions
    @Option(parsing: .unconditional) var batch: Int = 16
    @Option(parsing: .unconditional, help: "The background class, left out of 'mIoU without background' (default: the data layout's, e.g. VOC's 0, else the segmenter's stored one, else the last class).")
    var background: Int?
    @Option(parsing: .unconditional, help: "A class id that does not count.") var ignoreLabel: Int32?
    @Flag(help: "Print JSON for machines.") var json = false

    func validate() throws {
        try require(batch, in: 1...65_536, "--batch")
        if let background { try require(background, in: 0...65_535, "--background") }
    }

    func run() throws {
        let file = try SegmenterFile(segmenter)
        let classes = file.classes
        let loaded = try data.open(classes: classes, channels: inputChannels(of: file.model.graph), ignoreLabel: ignoreLabel)
        let dataset = loaded.samples
        let names = file.classNames == SegmenterMetadata.defaultNames(classes) && loaded.classes?.names.count == classes ? loaded.classes!.names : file.classNames
        let scale = try file.inputScaling(override: data.inputScale)
        let m = try Evaluator(runner: file.runner, classes: classes, inputScale: scale, batchSize: batch, ignoreLabel: loaded.ignoreLabel)
            .evaluate(dataset, progress: ImageProgress("evaluated").update).matrix
        let bg = background ?? loaded.classes?.background ?? file.stored.background ?? classes - 1
        guard bg < classes else { throw ValidationError("--background \(bg): this segmenter has classes 0 to \(classes - 1)") }
        if json {
            print(EvaluationReport(matrix: m, background: bg, classNames: names).json.jsonText)
            return
        }
        print("\(dataset.count) image(s) of \(data.data) (\(sizeSummary(dataset))), input scale \(scale)"
              + (loaded.ignoreLabel.map { ", label \($0) ignored" } ?? ""))
        print(String(format: "pixel accuracy %.4f   mean accuracy %.4f   mIoU %.4f   mIoU without background %.4f   FWIoU %.4f",
                     m.pixelAccuracy, m.meanAccuracy, m.meanIoU, m.meanIoU(excluding: bg), m.frequencyWeightedIoU))
        let rows = (0..<classes).map { c -> [String] in
            [names[c], m.perClassIoU[c].map { String(format: "%.4f", $0) } ?? "—", m.perClassDice[c].map { String(format: "%.4f", $0) } ?? "—",
             m.classAccuracy[c].map { String(format: "%.4f", $0) } ?? "—"]
        }
        printTable(header: ["class", "IoU", "Dice", "accuracy"], rows: rows, rightAligned: [1, 2, 3])
        print("confusion matrix (rows: truth, columns: prediction):")
        for (c, row) in m.counts.enumerated() { print("  " + String(format: "%2d ", c) + row.map { String(format: "%7d", $0) }.joined()) }
    }
}
