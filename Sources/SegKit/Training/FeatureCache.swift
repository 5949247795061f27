import SegKitSupport
import CKernels
import Foundation
import HDF5
import SegKitEngine

/// The frozen-encoder feature cache: when nothing before the trainable layers
/// can change between epochs (no trainable parameter upstream, no dropout, no
/// augmentation), the outputs of the frozen part that the trainable part reads
/// (every skip tap included) are computed once per sample and reused, so each
/// epoch runs only the decoder. Held in memory, or spilled to an HDF5 scratch
/// file beyond `limitBytes` (its name removed once libhdf5 holds it open).
final class FeatureCache {
    /// Frozen nodes read by trainable ones.
    let nodes: [Int]
    /// Per node and batch, the batch's values (in memory).
    private var memory: [Int: [Int: UnsafeMutableBufferPointer<Float>]] = [:]
    private var spill: HDF5File?

    /// The boundary between the frozen prefix and the trainable rest, or nil
    /// when caching would not be exact or would save nothing.
    static func boundary(of graph: Graph) -> [Int]? {
        let trainable = graph.dependsOnTrainable(alsoInputs: false)
        var frozenNeeded = Set<Int>()
        var boundary = Set<Int>()
        for (j, node) in graph.nodes.enumerated() where trainable[j] {
            for i in node.inputs where !trainable[i] { boundary.insert(i) }
        }
        for i in graph.nodes.indices.reversed() where boundary.contains(i) || frozenNeeded.contains(i) {
            frozenNeeded.insert(i)
            frozenNeeded.formUnion(graph.nodes[i].inputs)
        }
        // Dropout (or a BatchNormalization in training mode) in the frozen part
        // behaves differently every step: no cache then.
        for i in frozenNeeded {
            let layer = graph.nodes[i].layer
            if layer is Dropout { return nil }
            if let bn = layer as? BatchNormalization, bn.isTrainable { return nil }
        }
        let computes = frozenNeeded.contains { !(graph.nodes[$0].layer is InputLayer) }
        return computes && !boundary.isEmpty ? boundary.sorted() : nil
    }

    /// Runs the frozen part over `batches` (each of equally sized samples,
    /// together covering every sample once; `input(b)` is batch b's padded
    /// input) and keeps the boundary nodes' values: in memory when the whole
    /// cache (estimated from the first batch, per input pixel) fits `limitBytes`,
    /// else in a scratch HDF5 file.
    ///
    /// - Throws: `EngineError` from the graph (or when memory for a batch's features runs out),
    ///   `HDF5Error` from the scratch file, `FileError` when the scratch file cannot be created.
    init(graph: Graph, nodes: [Int], batches: [[Int]], totalInputPixels: Int, input: (Int) throws -> Tensor, limitBytes: Int) throws {
        self.nodes = nodes
        var spillFile: HDF5File?
        for (b, members) in batches.enumerated() {
            let x = try input(b)
            let pass = try graph.forward([x], mode: .inference, keep: Set(nodes))
            if b == 0 {
                let perInputPixel = Double(nodes.reduce(0) { $0 + pass.values[$1]!.count }) / Double(max(x.count / max(x.shape[3], 1), 1))
                if 4 * perInputPixel * Double(totalInputPixels) > Double(limitBytes) {
                    spillFile = try ScratchFile().withPath { try HDF5File(creating: $0, reportedAs: "the feature cache's scratch file") }
                }
            }
            for (row, i) in members.enumerated() { location[i] = (b, row) }
            for n in nodes {
                let t = pass.values[n]!
                shapes[n, default: [:]][b] = Array(t.shape.dropFirst())
                if let spillFile {
                    // One dataset per (node, batch): written once, read back by rows.
                    try spillFile.root.writeDataset("n\(n)_b\(b)", shape: t.shape, floats: t.scalars)
                } else {
                    guard let store = segkit_allocate_store(t.count) else {
                        throw EngineError.invalidArgument(op: "feature cache", message: "out of memory while keeping \(4 * t.count) bytes of one batch's features (try --cache-mb 0 to spill to disk)")
                    }
                    let buffer = UnsafeMutableBufferPointer(start: store, count: t.count)
                    _ = buffer.initialize(from: t.scalars)
                    memory[n, default: [:]][b] = buffer
                }
            }
        }
        spill = spillFile
    }

    /// Per sample: its batch and row in it.
    private var location: [Int: (batch: Int, row: Int)] = [:]
    /// Per node and batch: the per-sample shape.
    private var shapes: [Int: [Int: [Int]]] = [:]

    deinit { for stores in memory.values { for store in stores.values { segkit_free_store(store.baseAddress) } } }

    var isSpilled: Bool { spill != nil }

    /// The cached outputs for `indices` (samples of one size), batched in that order.
    ///
    /// - Throws: `HDF5Error` reading a spilled cache.
    func values(for indices: [Int]) throws -> [Int: Tensor] {
        var out: [Int: Tensor] = [:]
        let places = indices.map { location[$0]! }
        for n in nodes {
            let shape = shapes[n]![places[0].batch]!
            let per = shape.reduce(1, *)
            if let spill {
                var data = [Float]()
                data.reserveCapacity(per * indices.count)
                for (b, row) in places { data += try spill.root.dataset("n\(n)_b\(b)").readFloats(rows: row..<(row + 1)) }
                out[n] = try Tensor(shape: [indices.count] + shape, scalars: data)
                continue
            }
            // From memory: the samples copied in by the engine's workers (a
            // decoder-only step otherwise spent a tenth of its time here).
            let sources = UncheckedSendable(places.map { memory[n]![$0.batch]!.baseAddress! + $0.row * per })
            out[n] = Tensor.uninitialized(shape: [indices.count] + shape) { batch in
                let dst = UncheckedSendable(batch.baseAddress!)
                Parallel.forEachRange(indices.count) { samples in
                    for s in samples { (dst.value + s * per).update(from: sources.value[s], count: per) }
                }
            }
        }
        return out
    }

    /// Windows of the cached outputs: for sample `indices[k]`, node n's rows
    /// `windows[k][n].0 ..< + size[n].rows` and columns likewise (`CachedCrops`).
    ///
    /// - Throws: `HDF5Error` reading a spilled cache.
    func windows(for indices: [Int], at windows: [[Int: (Int, Int)]], size: [Int: (rows: Int, cols: Int)]) throws -> [Int: Tensor] {
        var out: [Int: Tensor] = [:]
        let places = indices.map { location[$0]! }
        for n in nodes {
            let (h, w) = size[n]!
            let channels = shapes[n]![places[0].batch]![2]
            var data = [Float](repeating: 0, count: indices.count * h * w * channels)
            for (k, (b, row)) in places.enumerated() {
                let shape = shapes[n]![b]!
                let (r0, c0) = windows[k][n]!
                func copyWindow(_ full: UnsafeBufferPointer<Float>) {
                    for r in 0..<h {
                        let src = ((r0 + r) * shape[1] + c0) * channels, dst = ((k * h + r) * w) * channels
                        data.replaceSubrange(dst..<(dst + w * channels), with: full[src..<(src + w * channels)])
                    }
                }
                if let spill {
                    try spill.root.dataset("n\(n)_b\(b)").readFloats(rows: row..<(row + 1)).withUnsafeBufferPointer(copyWindow)
                } else {
                    let per = shape.reduce(1, *)
                    copyWindow(UnsafeBufferPointer(start: memory[n]![b]!.baseAddress! + row * per, count: per))
                }
            }
            out[n] = try Tensor(shape: [indices.count, h, w, channels], scalars: data)
        }
        return out
    }
}
