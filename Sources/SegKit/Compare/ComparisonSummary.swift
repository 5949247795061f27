import Foundation

/// The mean and the range of one figure over a contender's seeds.
public struct Spread: Sendable, Equatable {
    /// The arithmetic mean over the seeds.
    public var mean: Double
    /// The lowest seed's value.
    public var min: Double
    /// The highest seed's value.
    public var max: Double

    /// - Precondition: `values` is not empty.
    public init(_ values: [Double]) {
        mean = values.reduce(0, +) / Double(values.count)
        min = values.min()!
        max = values.max()!
    }

    /// "0.412" for one value, "0.412 (0.390–0.431)" for a range (`format` for each number).
    public func text(_ format: String = "%.3f") -> String {
        let m = String(format: format, mean)
        return min == max ? m : "\(m) (\(String(format: format, min))–\(String(format: format, max)))"
    }
}

/// One contender at one labelled-set size over all its seeds: what the table,
/// the charts and the verdict show.
public struct ContenderSummary: Sendable {
    /// The contender's name.
    public let contender: String
    /// N: the labelled training images.
    public let labels: Int
    /// Its runs, one per seed (one only when nothing is trained).
    public let runs: [ContenderResult]

    /// - Precondition: `runs` is not empty and all are of one contender and N.
    public init(_ runs: [ContenderResult]) {
        self.runs = runs
        contender = runs[0].contender
        labels = runs[0].labels
    }

    /// Whether the contender trains anything (false for a weightless heatmap).
    public var trained: Bool { runs[0].trainableParameters > 0 }
    /// Test mIoU (0…1) over the seeds.
    public var meanIoU: Spread { Spread(runs.map(\.meanIoU)) }
    /// Test mIoU without the background class, over the seeds.
    public var meanIoUNoBackground: Spread { Spread(runs.map(\.meanIoUNoBackground)) }
    /// Test pixel accuracy (0…1) over the seeds.
    public var pixelAccuracy: Spread { Spread(runs.map(\.pixelAccuracy)) }
    /// Wall-clock training seconds per run, over the seeds.
    public var trainingSeconds: Spread { Spread(runs.map(\.trainingSeconds)) }
    /// Epochs run, over the seeds.
    public var epochs: Spread { Spread(runs.map { Double($0.epochsRun) }) }
    /// The 1-based epoch scored, over the seeds; nil when nothing is trained.
    public var bestEpoch: Spread? { trained ? Spread(runs.map { Double($0.bestEpoch ?? 0) }) : nil }
    /// Training images per second, the mean over the runs (0 when nothing is trained).
    public var imagesPerSecond: Double { runs.map(\.imagesPerSecond).reduce(0, +) / Double(runs.count) }
    /// Each class's IoU averaged over the runs in which it is defined.
    public var perClassIoU: [Double?] {
        (0..<(runs.map(\.perClassIoU.count).max() ?? 0)).map { c in
            let v = runs.compactMap { c < $0.perClassIoU.count ? $0.perClassIoU[c] : nil }
            return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        }
    }

    /// Groups runs by (contender, N), in the order first met.
    public static func group(_ results: [ContenderResult]) -> [ContenderSummary] {
        var order: [String] = [], runs: [String: [ContenderResult]] = [:]
        for r in results {
            let key = "\(r.contender)\u{0}\(r.labels)"
            if runs[key] == nil { order.append(key) }
            runs[key, default: []].append(r)
        }
        return order.map { ContenderSummary(runs[$0]!) }
    }
}
