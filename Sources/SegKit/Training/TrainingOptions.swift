import Foundation

/// The spec strings of `segkit train` and `compare`, parsed by `OptionSpec`.
extension TrainingConfig {
    /// `--crop H,W`: a crop of 1 to 8192 pixels per side.
    ///
    /// - Throws: `SpecError` quoting the bad part.
    public static func parseCrop(_ text: String) throws -> (height: Int, width: Int) {
        let spec = OptionSpec("--crop", text)
        let items = try spec.items()
        guard items.count == 2 else { throw spec.fail(text, "is not H,W (e.g. 256,256)") }
        return (try spec.int(items[0], in: 1...8192, "a crop height"), try spec.int(items[1], in: 1...8192, "a crop width"))
    }

    /// `--augment flip,shift,elastic,scale:A-B` (0 < A ≤ B ≤ 8).
    ///
    /// - Throws: `SpecError` quoting the bad item.
    public static func parseAugment(_ text: String) throws -> (kinds: Set<Augmentation>, scale: ClosedRange<Float>?) {
        let spec = OptionSpec("--augment", text)
        var kinds = Set<Augmentation>(), scale: ClosedRange<Float>?
        for item in try spec.items() {
            if item.hasPrefix("scale:") {
                let (a, b) = try spec.range(String(item.dropFirst(6)))
                let low = try spec.float(a, in: 0.01...8, "a scale factor"), high = try spec.float(b, in: 0.01...8, "a scale factor")
                guard low <= high else { throw spec.fail(item, "goes down: scale:A-B needs A ≤ B, e.g. scale:0.5-2.0") }
                scale = low...high
            } else {
                guard let a = Augmentation(rawValue: item) else {
                    throw spec.fail(item, "is not one of \(Augmentation.allCases.map(\.rawValue).joined(separator: ", ")), scale:A-B")
                }
                kinds.insert(a)
            }
        }
        return (kinds, scale)
    }

    /// `--class-weights auto` (nil) or one weight ≥ 0 per class.
    ///
    /// - Throws: `SpecError` quoting the bad weight, or when the count is not `classes`.
    public static func parseClassWeights(_ text: String, classes: Int) throws -> [Float]? {
        if text == "auto" { return nil }
        let spec = OptionSpec("--class-weights", text)
        let weights = try spec.items().map { try spec.float($0, in: 0...1e6, "a class weight") }
        guard weights.count == classes else { throw spec.fail(text, "gives \(weights.count) weights for \(classes) classes (or auto)") }
        return weights
    }

    /// `--border-weight W0,SIGMA` (W0 ≥ 0, SIGMA > 0 pixels).
    ///
    /// - Throws: `SpecError` quoting the bad part.
    public static func parseBorderWeight(_ text: String) throws -> (w0: Float, sigma: Float) {
        let spec = OptionSpec("--border-weight", text)
        let items = try spec.items()
        guard items.count == 2 else { throw spec.fail(text, "is not W0,SIGMA (e.g. 10,5)") }
        return (try spec.float(items[0], in: 0...1e6, "W0"), try spec.float(items[1], in: 0.01...1e6, "SIGMA (pixels)"))
    }

    /// `--labels 50,100,200`: increasing-sorted labelled-set sizes ≥ 1.
    ///
    /// - Throws: `SpecError` quoting a bad size or one given twice.
    public static func parseLabelCounts(_ text: String) throws -> [Int] {
        let spec = OptionSpec("--labels", text)
        let counts = try spec.items().map { try spec.int($0, in: 1...10_000_000, "a labelled-set size") }.sorted()
        // A size given twice would be two runs the summary merges as if they were seeds.
        if let twice = zip(counts, counts.dropFirst()).first(where: { $0.0 == $0.1 })?.0 {
            throw spec.fail(String(twice), "is given twice: each labelled-set size once (--seeds K repeats the runs)")
        }
        return counts
    }
}
