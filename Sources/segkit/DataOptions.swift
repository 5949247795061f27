import ArgumentParser
import Foundation
import SegKit
import SegKitEngine

/// `--data` and how its masks and pixels are read.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The labelled images: a folder (images/ with PNG or JPEG, masks/ with PNG), voc:DIR[:train|val|trainval], "
                               + "pets:DIR[:trainval|test|all][:border=ignore|pet|background|class], an HDF5 file (images, masks), "
                               + "or fashion-canvas:[count=N,size=S,items=A-B,split=train|test,seed=K].", valueName: "source"))
    var data: String
    @Option(help: "Where Fashion-MNIST's IDX files are (default: Debian's dataset-fashion-mnist).") var fashionDir: String?
    @Option(help: "unit, raw, symmetric or mean-std:M,S (default: the segmenter's, else unit; raw if it has its own Rescaling).")
    var inputScale: String?
    @Option(help: "Colour-coded RGB masks: a file of 'R,G,B name' lines; line k is class k.") var maskColors: String?
    @Option(parsing: .unconditional, help: "Memory (MiB) for decoded samples; a folder or layout larger than this is decoded as batches need it, ahead of the compute.")
    var dataMemoryMb: Int = 2048
    @Flag(help: "Skip unusable image/mask pairs (unreadable, mismatched, class ids out of range) and say how many, instead of stopping at the first.")
    var skipBad = false

    /// Range and spec checks, before any file is opened.
    ///
    /// - Throws: `ValidationError` quoting the bad part.
    func validate() throws {
        try require(dataMemoryMb, in: 0...(1 << 30), "--data-memory-mb")
        try checkSpec {
            if let inputScale { _ = try InputScaling(parsing: inputScale) }
            if data.hasPrefix("fashion-canvas") || data.hasPrefix("voc:") || data.hasPrefix("pets:") { _ = try DataSource.parse(data) }
        }
    }

    /// Opens `source` (default `--data`) for a segmenter of `classes` classes and
    /// `channels` input channels, printing what was skipped or converted.
    func open(_ source: String? = nil, classes: Int?, channels: Int?, ignoreLabel: Int32?) throws -> LoadedData {
        let text = source ?? data
        var request = DataRequest(classes: classes, channels: channels, ignoreLabel: ignoreLabel, maskColours: maskColors, skipBad: skipBad)
        request.memoryBudget = dataMemoryMb << 20
        let source = try DataSource.parse(text, fashionFolder: fashionDir)
        // An HDF5 data set is read by libhdf5, which can crash on a damaged file: a child reads it first.
        if case let .hdf5(path) = source, ProcessInfo.processInfo.environment["SEGKIT_CHECK_CHILD"] == nil {
            try checkInChildProcess(["check-data", path], file: path)
        }
        let loaded = try source.open(request)
        if !loaded.skipped.isEmpty {
            let shown = loaded.skipped.prefix(10).joined(separator: "\n  ")
            FileHandle.standardError.write(Data("skipped \(loaded.skipped.count) bad sample(s) of \(text):\n  \(shown)\(loaded.skipped.count > 10 ? "\n  …" : "")\n".utf8))
        }
        for note in loaded.notes { print("\(text): \(note)") }
        return loaded
    }
}

/// The channels a model's (first) input takes, when its shape says.
func inputChannels(of graph: Graph) -> Int? {
    guard let i = graph.inputIndices.first, let input = graph.nodes[i].layer as? InputLayer else { return nil }
    return input.shape.last ?? nil
}

/// A one-line summary of a set's sizes: "64x48" or "5 sizes from 20x36 to 92x52".
func sizeSummary(_ data: any LabelledImages) -> String {
    let sizes = data.sizeCounts
    guard sizes.count > 1 else { return sizes.first.map { "\($0.width)x\($0.height)" } ?? "no images" }
    let areas = sizes.sorted { $0.height * $0.width < $1.height * $1.width }
    return "\(sizes.count) sizes from \(areas.first!.width)x\(areas.first!.height) to \(areas.last!.width)x\(areas.last!.height)"
}
