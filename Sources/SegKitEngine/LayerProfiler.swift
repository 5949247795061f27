import Foundation

/// Wall-clock time spent in each node's forward and backward pass, when a
/// graph has a profiler attached (`segkit bench` uses it; it costs two clock
/// reads per node and nothing when absent).
public final class LayerProfiler {
    /// Each run's seconds, per node, in the order run.
    public private(set) var forwardRuns: [Int: [Double]] = [:]
    /// Each backward run's seconds, per node index, in the order run.
    public private(set) var backwardRuns: [Int: [Double]] = [:]
    /// Time outside the graph's layers, by name (the bench's loss and optimizer step).
    public private(set) var otherRuns: [String: [Double]] = [:]

    /// An empty profiler; attach it with `graph.profiler = profiler`.
    public init() {}

    /// Forgets every recorded run.
    public func reset() {
        forwardRuns = [:]
        backwardRuns = [:]
        otherRuns = [:]
    }

    /// Runs `body`, recording its wall-clock time in seconds under `name` in `otherRuns`.
    /// - Throws: whatever `body` throws (rethrown; the time is recorded anyway).
    public func measure<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        let start = LayerProfiler.now()
        defer { otherRuns[name, default: []].append(Double(LayerProfiler.now() - start) / 1e9) }
        return try body()
    }

    func record(node: Int, backward: Bool, since start: UInt64) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if backward { backwardRuns[node, default: []].append(seconds) } else { forwardRuns[node, default: []].append(seconds) }
    }

    /// The median of `runs`: a layer's typical time, which a step or two the
    /// VM's other core was taken in (a millisecond layer then measured 2–3x)
    /// does not move as it moves the mean.
    public static func median(_ runs: [Double]) -> Double {
        let sorted = runs.sorted()
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
