import ArgumentParser
import Foundation
import SegKit
import SegKitKeras

/// `segkit demo`: the main job on the built-in running example, nothing to supply.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run SegKit's main job on the built-in example: a Keras Fashion-MNIST classifier turned into segmenters, compared with a U-Net from scratch.")

    @Option(help: "Report folder.") var out: String = "demo-report"
    @Option(help: "Labelled-set sizes to compare.") var labels: String = "20,60,180"
    @Option(parsing: .unconditional) var epochs: Int = 8

    func validate() throws {
        try require(epochs, in: 1...1_000_000, "--epochs")
        try checkSpec { _ = try TrainingConfig.parseLabelCounts(labels) }
    }

    func run() throws {
        print(versionText())
        let classifier = try recipeFolder() + "/demo/classifier.keras"
        print("\n1. The classifier (trained with Keras by Recipes/demo/train_classifier.py): \(classifier)")
        try printSummary(try loadModel(classifier))
        print("\n2. Data: Fashion-MNIST items pasted on 128x128 canvases (Debian's dataset-fashion-mnist), 1-3 items each, class 10 = background")
        let largest = try TrainingConfig.parseLabelCounts(labels).last ?? 180
        let compare = try Compare.parse([
            "--classifier", classifier, "--recipes", "heatmap-bilinear,transposed-skips", "--baseline", "unet-scratch",
            "--data", "fashion-canvas:count=\(largest + 32),size=128,items=1-3,seed=1",
            "--test-data", "fashion-canvas:count=64,size=128,items=1-3,seed=2,split=test",
            "--labels", labels, "--epochs", "\(epochs)", "--batch", "8", "--lr", "0.003", "--examples", "6", "--out", out,
        ])
        print("\n3. Compare: heatmap-bilinear (no training), transposed-skips (frozen encoder), unet-scratch (everything trained)")
        let report = try compare.runComparison(commandLine: "segkit demo --out \(out) --labels \(labels) --epochs \(epochs)")
        if let best = report.results.filter({ $0.labels == largest }).max(by: { $0.meanIoU < $1.meanIoU }) {
            print("\nAt N = \(largest) the best test mIoU is \(best.contender)'s, \(String(format: "%.3f", best.meanIoU)).")
        }
    }
}
