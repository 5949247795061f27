import SegKitSupport
import Foundation
import Testing
import SegKitEngine
import SegKitKeras
import TestFixtures
@testable import SegKit

@Suite(.serialized) struct CompareTests {
    @Test func aMiniatureComparisonWritesTheReportWithEveryContenderAndSize() throws {
        let p = try TinyProblem(count: 24)
        var training = TrainingConfig()
        training.epochs = 1
        training.batchSize = 8
        training.seed = 3
        var comparison = Comparison(recipes: ["heatmap-bilinear", "transposed-skips"], baseline: "unet-scratch", labelCounts: [8, 16],
                                    training: training, recipeFolder: recipeFolder) {
            try KerasModel.load(Fixtures.path("plain_cnn.k3.keras"))
        }
        comparison.overrides = ["depth=2"]   // the baseline stays small for a unit test; other recipes ignore it
        let results = try comparison.run(train: p.train, validation: p.val.first(8), test: p.val, classes: 11, background: 10,
                                         progress: { _ in }, observer: nil)
        #expect(results.count == 6)
        #expect(results.first { $0.contender == "heatmap-bilinear" }?.trainingSeconds == 0, "a heatmap is evaluated as it is")
        #expect(results.filter { $0.contender != "heatmap-bilinear" }.allSatisfy { $0.history.count == 1 })

        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let report = ComparisonReport(results: results, classNames: FashionCanvas.classNames, background: 10, commandLine: "segkit compare …",
                                      recipeFiles: [("transposed-skips", "name: transposed-skips")])
        try report.write(to: folder, examples: [])
        for file in ["index.html", "results.json", "results.csv"] { #expect(FileManager.default.fileExists(atPath: "\(folder)/\(file)")) }
        let json = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: folder + "/results.json")), source: "results.json")
        let rows = try #require(json["results"]?.array)
        for c in ["heatmap-bilinear", "transposed-skips", "unet-scratch"] {
            #expect(Set(rows.filter { $0["contender"]?.string == c }.compactMap { $0["labels"]?.int }) == [8, 16], "\(c)")
        }
        let html = try String(contentsOfFile: folder + "/index.html", encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("Label efficiency") && html.contains("Per-class test IoU"))
        #expect(try String(contentsOfFile: folder + "/results.csv", encoding: .utf8).split(separator: "\n").count == 7)
    }

    @Test func theSameSeedGivesTheSameTable() throws {
        let p = try TinyProblem(count: 16)
        var training = TrainingConfig()
        training.epochs = 1
        training.batchSize = 8
        var tables: [[[String]]] = []
        for _ in 0..<2 {
            let comparison = Comparison(recipes: ["transposed-skips"], baseline: nil, labelCounts: [8], training: training,
                                        recipeFolder: recipeFolder) { try KerasModel.load(Fixtures.path("plain_cnn.k3.keras")) }
            let results = try comparison.run(train: p.train, validation: p.val.first(4), test: p.val, classes: 11, background: 10,
                                             progress: { _ in }, observer: nil)
            tables.append(results.map { [$0.contender, "\($0.labels)", "\($0.meanIoU)", "\($0.pixelAccuracy)"] })
        }
        #expect(tables[0] == tables[1])
    }

    @Test func twoSeedsGiveBothRunsAndTheBandInResultsJSON() throws {
        let p = try TinyProblem(count: 16)
        var training = TrainingConfig()
        training.epochs = 3
        training.patience = 1
        training.seed = 3
        training.batchSize = 2   // several steps an epoch: the seed orders them
        // unet-pretrained: its new layers are He-initialised from the recipe's seed.
        var comparison = Comparison(recipes: ["heatmap-bilinear", "unet-pretrained"], baseline: nil, labelCounts: [8], training: training,
                                    recipeFolder: recipeFolder) { try KerasModel.load(Fixtures.path("plain_cnn.k3.keras")) }
        comparison.seeds = 2
        let results = try comparison.run(train: p.train, validation: p.val.first(4), test: p.val, classes: 11, background: 10,
                                         progress: { _ in }, observer: nil)
        #expect(results.filter { $0.contender == "unet-pretrained" }.map(\.seed) == [3, 4])
        #expect(results.filter { $0.contender == "heatmap-bilinear" }.count == 1, "nothing to train: one run serves every seed")
        #expect(results.filter { $0.contender == "unet-pretrained" }.allSatisfy { $0.bestEpoch != nil && $0.stopReason != nil })

        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ComparisonReport(results: results, classNames: FashionCanvas.classNames, background: 10, commandLine: "segkit compare …",
                             recipeFiles: [], training: training).write(to: folder, examples: [])
        let json = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: folder + "/results.json")), source: "results.json")
        let summary = try #require(json["summary"]?.array?.first { $0["contender"]?.string == "unet-pretrained" })
        #expect(summary["seeds"]?.array?.compactMap(\.int) == [3, 4])
        let iou = try #require(summary["mean_iou"])
        let (low, mean, high) = (try #require(iou["min"]?.double), try #require(iou["mean"]?.double), try #require(iou["max"]?.double))
        #expect(low < high && low <= mean && mean <= high, "two seeds, two different results: a band")
        #expect(try String(contentsOfFile: folder + "/index.html", encoding: .utf8).contains("<polygon"), "the label-efficiency chart draws the band")
    }

    /// A made-up run for the verdict's tests.
    func run(_ contender: String, _ labels: Int, seed: UInt64 = 0, mIoU: Double, trainable: Int = 1000, seconds: Double = 10,
             epochs: Int = 12, best: Int = 2, stop: Trainer.StopReason? = .patience) -> ContenderResult {
        ContenderResult(contender: contender, labels: labels, seed: seed, totalParameters: 5000, trainableParameters: trainable,
                        trainingSeconds: seconds, imagesPerSecond: 1, bestEpoch: best, stopReason: stop, pixelAccuracy: 0.9, meanIoU: mIoU,
                        meanIoUNoBackground: mIoU, perClassIoU: [],
                        history: (1...epochs).map { EpochRecord(epoch: $0, loss: 1, learningRate: 1e-3, seconds: seconds / Double(epochs)) })
    }

    func verdict(_ results: [ContenderResult], patience: Int? = 10) -> [String] {
        var training = TrainingConfig()
        training.epochs = 40
        training.patience = patience
        return ComparisonVerdict(summaries: ContenderSummary.group(results), baseline: "unet-scratch", training: training).lines
    }

    @Test func reportTextCannotCloseAnAttribute() {
        #expect(SVGChart.escape(#"a "b" <c> & 'd'"#) == "a &quot;b&quot; &lt;c&gt; &amp; &#39;d&#39;")
    }

    @Test func theVerdictNamesTheCrossoverAndWhetherItIsBeyondTheSeedSpread() {
        let lines = verdict([
            run("fcn-8s", 20, seed: 0, mIoU: 0.50), run("fcn-8s", 20, seed: 1, mIoU: 0.52),
            run("unet-scratch", 20, seed: 0, mIoU: 0.20), run("unet-scratch", 20, seed: 1, mIoU: 0.25),
            run("fcn-8s", 60, seed: 0, mIoU: 0.50), run("fcn-8s", 60, seed: 1, mIoU: 0.56),
            run("unet-scratch", 60, seed: 0, mIoU: 0.51), run("unet-scratch", 60, seed: 1, mIoU: 0.54),
            run("fcn-8s", 180, seed: 0, mIoU: 0.55), run("fcn-8s", 180, seed: 1, mIoU: 0.58),
            run("unet-scratch", 180, seed: 0, mIoU: 0.60, seconds: 80), run("unet-scratch", 180, seed: 1, mIoU: 0.63, seconds: 80),
        ])
        #expect(lines[0] == "A segmenter on the classifier wins up to N = 20 and the U-Net from scratch from N = 180 on: "
                + "the crossover lies between 20 and 180 labelled images. Too close to call at N = 60: the two overlap across seeds.")
        #expect(lines.contains { $0.hasPrefix("N = 20: fcn-8s 0.510 (0.500–0.520) against unet-scratch") && $0.contains("beyond the seed spread") })
        #expect(lines.contains { $0.hasPrefix("N = 60: fcn-8s") && $0.contains("inconclusive at this N") })
        #expect(lines.contains { $0.hasPrefix("N = 180: unet-scratch 0.615 (0.600–0.630)") && $0.contains("beyond the seed spread") })
        #expect(lines.contains { $0.hasPrefix("Training cost at N = 180") && $0.contains("8.0x") })
        #expect(!lines.contains { $0.hasPrefix("Still improving") })
    }

    @Test func overlappingSeedsAtEveryNMakeTheComparisonInconclusive() {
        let lines = verdict([
            run("fcn-8s", 20, seed: 0, mIoU: 0.40), run("fcn-8s", 20, seed: 1, mIoU: 0.50),
            run("unet-scratch", 20, seed: 0, mIoU: 0.43), run("unet-scratch", 20, seed: 1, mIoU: 0.45),
            run("fcn-8s", 60, seed: 0, mIoU: 0.50), run("fcn-8s", 60, seed: 1, mIoU: 0.60),
            run("unet-scratch", 60, seed: 0, mIoU: 0.55), run("unet-scratch", 60, seed: 1, mIoU: 0.58),
        ])
        #expect(lines[0] == "Inconclusive: at every N tried (20, 60) the best segmenter on the classifier and the U-Net from scratch (unet-scratch) overlap across seeds.")
        #expect(lines.contains { $0.hasPrefix("N = 20: fcn-8s 0.450 (0.400–0.500) against unet-scratch 0.440 (0.430–0.450)") && $0.hasSuffix("inconclusive at this N).") })
        #expect(lines.contains { $0.hasPrefix("N = 60: unet-scratch") })
    }

    @Test func oneSeedPerRunSaysTheSpreadIsUnknown() {
        let lines = verdict([run("fcn-8s", 20, mIoU: 0.3), run("unet-scratch", 20, mIoU: 0.6)])
        #expect(lines[0] == "The U-Net from scratch (unet-scratch) beats every segmenter on the classifier at N = 20, by 0.300 at N = 20 mIoU.")
        #expect(lines.contains { $0.contains("--seeds 2") })
    }

    @Test func aRunStoppedByMaxEpochsIsALowerBound() {
        let lines = verdict([run("fcn-8s", 20, mIoU: 0.5), run("unet-scratch", 20, mIoU: 0.3, epochs: 40, best: 38, stop: .epochs)])
        #expect(lines.contains { $0 == "Still improving when stopped by --max-epochs 40: unet-scratch at N = 20; those figures are lower bounds (give more epochs or time)." })
        // Without patience (a fixed number of epochs) only a run whose last epoch was its best counts.
        let fixed = verdict([run("fcn-8s", 20, mIoU: 0.5, best: 12, stop: .epochs), run("unet-scratch", 20, mIoU: 0.3, epochs: 12, best: 5, stop: .epochs)],
                            patience: nil)
        #expect(fixed.contains { $0.hasPrefix("Still improving") && $0.contains("fcn-8s at N = 20") && !$0.contains("unet-scratch") })
    }

    @Test func runsAddedFromElsewhereAreNotSegmentersOnTheClassifierAndTheBudgetIsNamedOnlyWhenItStopped() {
        var training = TrainingConfig()
        training.epochs = 1_000_000
        training.budgetSeconds = 60
        let results = [run("fcn-8s", 20, mIoU: 0.3, epochs: 5, best: 5, stop: .budget), run("unet-scratch", 20, mIoU: 0.4, epochs: 9, best: 3, stop: .budget),
                       run("my-keras-unet", 20, mIoU: 0.6, epochs: 4, best: 4, stop: nil)]
        let lines = ComparisonVerdict(summaries: ContenderSummary.group(results), baseline: "unet-scratch", training: training,
                                      onClassifier: ["fcn-8s"]).lines
        #expect(lines[0].hasPrefix("The U-Net from scratch (unet-scratch) beats every segmenter on the classifier"), "not my-keras-unet: \(lines[0])")
        #expect(lines.contains { $0 == "Still improving when stopped by the 60 s budget (--budget-seconds): fcn-8s at N = 20; those figures are lower bounds (give more epochs or time)." })
    }
}
