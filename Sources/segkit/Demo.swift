import ArgumentParser
import Foundation
import SegKit

/// `segkit demo`: the main job on the built-in running example, nothing to supply.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run SegKit's main job on the built-in example: a Keras Fashion-MNIST classifier turned into segmenters, compared with a U-Net from scratch.")

    @Option(help: "Report folder.") var out: String = "demo-report"
    @Option(help: "Labelled-set sizes to compare.") var labels: String = "20,60,180"
    @Option(parsing: .unconditional, help: "Runs per contender and N (seeds 0, 1, …).") var seeds: Int = 2
    @Option(parsing: .unconditional, help: "Epochs without a better validation mIoU before a contender stops.") var patience: Int = 8
    @Option(parsing: .unconditional, help: "The most epochs a contender trains.") var maxEpochs: Int = 40
    @Option(parsing: .unconditional, help: "Canvas side in pixels.") var size: Int = 64

    func validate() throws {
        try require(seeds, in: 1...100, "--seeds")
        try require(patience, in: 1...1_000_000, "--patience")
        try require(maxEpochs, in: 1...1_000_000, "--max-epochs")
        try require(size, in: 32...1024, "--size")
        try checkSpec { _ = try TrainingConfig.parseLabelCounts(labels) }
    }

    func run() throws {
        print(versionText())
        let classifier = try recipeFolder() + "/demo/classifier.keras"
        print("\n1. The classifier (trained with Keras by Recipes/demo/train_classifier.py): \(classifier)")
        try printSummary(try loadModel(classifier))
        print("\n2. Data: Fashion-MNIST items pasted on \(size)x\(size) canvases (Debian's dataset-fashion-mnist), 1-3 items each, class 10 = background")
        let largest = try TrainingConfig.parseLabelCounts(labels).last ?? 180
        let compare = try Compare.parse([
            "--classifier", classifier, "--recipes", "heatmap-bilinear,transposed-skips", "--baseline", "unet-scratch",
            "--data", "fashion-canvas:count=\(largest + 32),size=\(size),items=1-3,seed=1",
            "--test-data", "fashion-canvas:count=64,size=\(size),items=1-3,seed=2,split=test",
            "--labels", labels, "--seeds", "\(seeds)", "--patience", "\(patience)", "--max-epochs", "\(maxEpochs)",
            "--batch", "8", "--lr", "0.003", "--examples", "6", "--out", out,
        ])
        print("\n3. Compare: heatmap-bilinear (no training), transposed-skips (frozen encoder), unet-scratch (everything trained),"
              + " each trained until \(patience) epochs without a better validation mIoU (at most \(maxEpochs)), \(seeds) seed(s)")
        _ = try compare.runComparison(commandLine: "segkit demo --out \(out) --labels \(labels) --seeds \(seeds) --patience \(patience) "
                                      + "--max-epochs \(maxEpochs) --size \(size)")
    }
}
