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
}
