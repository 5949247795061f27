import SegKitSupport
import SegKitEngine

/// Where a forward pass's time goes, node by node, and how close the heavy
/// nodes come to the machine's limits (`segkit bench --encoders`).
enum NodeProfile {
    /// The `limit` nodes with the largest share of `profiler`'s forward time
    /// (each node's median over its runs), slowest first, as JSON objects:
    /// `name`, `kind`, `output` (the shape at `shapes`), `share` (0…1 of the
    /// sum of all nodes' medians), `ms` (median per run); for Conv2D,
    /// DepthwiseConv2D and Dense `gflops` (`flops` over the median); for
    /// DepthwiseConv2D also `gbps` (`bytes` over the median). `totalMs`: the sum
    /// of all nodes' medians, the layer time of one run.
    static func top(_ limit: Int, graph: Graph, profiler: LayerProfiler, shapes: [[Int]]) -> (rows: [JSONValue], totalMs: Double) {
        let medians = profiler.forwardRuns.mapValues(LayerProfiler.median)
        let total = medians.values.reduce(0, +)
        // Slowest first; equal times by node order, so the table is the same on every run.
        let slowest = medians.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit)
        let rows: [JSONValue] = slowest.map { index, seconds in
            let node = graph.nodes[index]
            var row: [String: JSONValue] = [
                "name": .string(node.name), "kind": .string(node.layer.kind),
                "output": .array(shapes[index].map { .number(Double($0)) }),
                "share": .number(total > 0 ? seconds / total : 0), "ms": .number(1000 * seconds),
            ]
            if seconds > 0, let f = flops(node, output: shapes[index]) { row["gflops"] = .number(f / seconds / 1e9) }
            if seconds > 0, let b = bytes(node, input: shapes[node.inputs.first ?? index], output: shapes[index]) { row["gbps"] = .number(b / seconds / 1e9) }
            return .object(row)
        }
        return (rows, 1000 * total)
    }

    /// The forward time per layer kind, largest first, as JSON objects: `kind`,
    /// `nodes`, `share` (0…1), `ms` (the sum of its nodes' medians), and where
    /// every node of the kind has them, `gflops` and `gbps` over the kind's
    /// whole time (what the top nodes alone do not show: many small layers of
    /// one kind, such as the depthwise convolutions, can add up).
    static func byKind(graph: Graph, profiler: LayerProfiler, shapes: [[Int]]) -> [JSONValue] {
        let medians = profiler.forwardRuns.mapValues(LayerProfiler.median)
        let total = medians.values.reduce(0, +)
        var kinds: [String: (nodes: Int, seconds: Double, flops: Double?, bytes: Double?)] = [:]
        for (index, seconds) in medians {
            let node = graph.nodes[index]
            let f = flops(node, output: shapes[index]), b = bytes(node, input: shapes[node.inputs.first ?? index], output: shapes[index])
            let k = kinds[node.layer.kind] ?? (0, 0, f.map { _ in 0 }, b.map { _ in 0 })
            kinds[node.layer.kind] = (k.nodes + 1, k.seconds + seconds, f.flatMap { x in k.flops.map { $0 + x } }, b.flatMap { x in k.bytes.map { $0 + x } })
        }
        return kinds.sorted { $0.value.seconds != $1.value.seconds ? $0.value.seconds > $1.value.seconds : $0.key < $1.key }.map { kind, k in
            var row: [String: JSONValue] = ["kind": .string(kind), "nodes": .number(Double(k.nodes)),
                                            "share": .number(total > 0 ? k.seconds / total : 0), "ms": .number(1000 * k.seconds)]
            if k.seconds > 0, let f = k.flops { row["gflops"] = .number(f / k.seconds / 1e9) }
            if k.seconds > 0, let b = k.bytes { row["gbps"] = .number(b / k.seconds / 1e9) }
            return .object(row)
        }
    }

    /// Floating-point operations of a convolution's or Dense layer's forward
    /// pass: 2 · outputs · taps · input channels per group (a multiply and an
    /// add per weight read per output value); nil for other layers.
    static func flops(_ node: Graph.Node, output: [Int]) -> Double? {
        let outputs = Double(output.reduce(1, *))
        switch node.layer {
        case let c as Conv2D:
            let k = c.kernel.value.shape   // (kh, kw, cin / groups, filters)
            return 2 * outputs * Double(k[0] * k[1] * k[2])
        case let d as DepthwiseConv2D:
            return 2 * outputs * Double(d.kernelSize.0 * d.kernelSize.1)
        case let d as Dense:
            return 2 * outputs * Double(d.kernel.value.shape[0])
        default:
            return nil
        }
    }

    /// Bytes a depthwise convolution must move at least: its input, output and
    /// weights once each (float32); nil for other layers. A depthwise layer does
    /// only 2 · taps operations per output value, so memory, not arithmetic,
    /// bounds it.
    static func bytes(_ node: Graph.Node, input: [Int], output: [Int]) -> Double? {
        guard let d = node.layer as? DepthwiseConv2D else { return nil }
        let values = input.reduce(1, *) + output.reduce(1, *) + d.kernel.value.count + (d.bias?.value.count ?? 0)
        return Double(4 * values)
    }
}
