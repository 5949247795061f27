import CKernels
import Foundation
import HDF5
import SegKitEngine
import SegKitKeras

/// The frozen-encoder feature cache: when nothing before the trainable layers
/// can change between epochs (no trainable parameter upstream, no dropout, no
/// augmentation), the outputs of the frozen part that the trainable part reads
/// (every skip tap included) are computed once per sample and reused, so each
/// epoch runs only the decoder. Held in memory, or spilled to an HDF5 scratch
/// file beyond `limitBytes` (its name removed once libhdf5 holds it open).
final class FeatureCache {
    /// Frozen nodes read by trainable ones.
    let nodes: [Int]
    private var perSampleShape: [Int: [Int]] = [:]
    /// Per node, every sample's values in sample order (in memory).
    private var memory: [Int: UnsafeMutableBufferPointer<Float>] = [:]
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

    init(graph: Graph, nodes: [Int], samples: Int, batches: (Int) throws -> (Range<Int>, Tensor), batchCount: Int, limitBytes: Int) throws {
        self.nodes = nodes
        var spillFile: HDF5File?
        var size = 1
        for b in 0..<batchCount {
            let (range, x) = try batches(b)
            let pass = try graph.forward([x], mode: .inference, keep: Set(nodes))
            if b == 0 {
                size = range.count
                var perSample = 0
                for n in nodes {
                    let shape = Array(pass.values[n]!.shape.dropFirst())
                    perSampleShape[n] = shape
                    perSample += shape.reduce(1, *)
                }
                // In memory up to the limit (and while memory lasts), else on disk.
                if 4 * samples * perSample <= limitBytes {
                    for n in nodes {
                        let count = samples * perSampleShape[n]!.reduce(1, *)
                        guard let store = segkit_allocate_store(count) else { break }
                        memory[n] = UnsafeMutableBufferPointer(start: store, count: count)
                    }
                }
                if memory.count < nodes.count {
                    for store in memory.values { segkit_free_store(store.baseAddress) }
                    memory = [:]
                    spillFile = try ScratchFile().withPath { try HDF5File(creating: $0, reportedAs: "the feature cache's scratch file") }
                }
            }
            for n in nodes {
                let t = pass.values[n]!
                if let spillFile {
                    // One dataset per (node, batch): written once, read back by rows.
                    try spillFile.root.writeDataset("n\(n)_b\(b)", shape: t.shape, floats: t.scalars)
                } else {
                    let per = t.count / range.count
                    _ = UnsafeMutableBufferPointer(rebasing: memory[n]![(range.lowerBound * per)..<(range.upperBound * per)])
                        .initialize(from: t.scalars)
                }
            }
        }
        spill = spillFile
        batchSize = size
    }

    private let batchSize: Int

    deinit { for store in memory.values { segkit_free_store(store.baseAddress) } }

    var isSpilled: Bool { spill != nil }

    /// The cached outputs for `indices`, batched in that order.
    func values(for indices: [Int]) throws -> [Int: Tensor] {
        var out: [Int: Tensor] = [:]
        for n in nodes {
            let shape = perSampleShape[n]!
            let per = shape.reduce(1, *)
            if let spill {
                var data = [Float]()
                data.reserveCapacity(per * indices.count)
                for i in indices {
                    let d = try spill.root.dataset("n\(n)_b\(i / batchSize)")
                    data += try d.readFloats(rows: (i % batchSize)..<(i % batchSize + 1))
                }
                out[n] = try Tensor(shape: [indices.count] + shape, scalars: data)
                continue
            }
            // From memory: the samples copied in by the engine's workers (a
            // decoder-only step otherwise spent a tenth of its time here).
            let src = UncheckedSendable(memory[n]!.baseAddress!)
            out[n] = Tensor.uninitialized(shape: [indices.count] + shape) { batch in
                let dst = UncheckedSendable(batch.baseAddress!)
                Parallel.forEachRange(indices.count) { samples in
                    for s in samples { (dst.value + s * per).update(from: src.value + indices[s] * per, count: per) }
                }
            }
        }
        return out
    }
}
