import Foundation

/// Wall-clock time spent in each node's forward and backward pass, when a
/// graph has a profiler attached (`segkit bench` uses it; it costs two clock
/// reads per node and nothing when absent).
public final class LayerProfiler {
    public private(set) var forwardSeconds: [Int: Double] = [:]
    public private(set) var backwardSeconds: [Int: Double] = [:]
    /// Time outside the graph's layers, by name (the bench's loss and optimizer step).
    public private(set) var otherSeconds: [String: Double] = [:]

    public init() {}

    public func reset() {
        forwardSeconds = [:]
        backwardSeconds = [:]
        otherSeconds = [:]
    }

    /// Runs `body`, adding its wall-clock time to `name`.
    public func measure<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        let start = LayerProfiler.now()
        defer { otherSeconds[name, default: 0] += Double(LayerProfiler.now() - start) / 1e9 }
        return try body()
    }

    func record(node: Int, backward: Bool, since start: UInt64) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if backward { backwardSeconds[node, default: 0] += seconds } else { forwardSeconds[node, default: 0] += seconds }
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
