import CKernels

// Per-channel reductions and bias passes shared by the convolution layers'
// backward passes; each splits its rows across the workers and adds partial
// results in a fixed order, so a result is the same on every run.

/// Adds a per-channel bias to every position (the last axis), rows split across workers.
func addBias(_ bias: Tensor, to z: inout Tensor) {
    let c = bias.count
    bias.scalars.withUnsafeBufferPointer { b in
        z.scalars.withUnsafeMutableBufferPointer { v in
            let (bb, vv) = (UncheckedSendable(b), UncheckedSendable(v))
            Parallel.forEachRange(v.count / c, minimumPerWorker: 4096) { rows in
                for r in rows {
                    let row = r * c
                    for k in 0..<c { vv.value[row + k] += bb.value[k] }
                }
            }
        }
    }
}

/// Per-channel sums over `rows` rows of `channels` values: `accumulate(rows,
/// partial)` adds one worker range's sums into its partial (of `channels`
/// floats), and the partials are added in order, for the same result on every run.
func channelSums(rows: Int, channels c: Int, _ accumulate: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
    let parts = min(Parallel.maximumParts, max(1, rows / 4096))
    var partials = [Float](repeating: 0, count: parts * c)
    partials.withUnsafeMutableBufferPointer { o in
        let oo = UncheckedSendable(o.baseAddress!)
        Parallel.forEachRange(parts) { workers in
            for w in workers { accumulate((rows * w / parts)..<(rows * (w + 1) / parts), oo.value + w * c) }
        }
    }
    return Tensor(uncheckedShape: [c], scalars: sumInOrder(partials, parts: parts))
}

/// Σ over all positions, per channel (the bias gradient).
func sumRows(_ dz: Tensor) -> Tensor {
    let c = dz.shape.last!
    return dz.scalars.withUnsafeBufferPointer { v in
        let vv = UncheckedSendable(v.baseAddress!)
        return channelSums(rows: dz.count / c, channels: c) { r, partial in
            segkit_sum_rows(vv.value + r.lowerBound * c, r.count, Int32(c), partial)
        }
    }
}

/// dz = dy where y > 0, else 0 (ReLU's gradient from its output), and Σ dz per
/// channel (the bias gradient), in one pass over dy.
func reluBackwardSummingRows(_ dy: Tensor, output y: Tensor) -> (Tensor, Tensor) {
    let c = dy.shape.last!
    var sums = Tensor(zeros: [c])
    let dz = Tensor.uninitialized(shape: dy.shape) { out in
        dy.scalars.withUnsafeBufferPointer { d in
            y.scalars.withUnsafeBufferPointer { yp in
                let (dd, yy, zz) = (UncheckedSendable(d.baseAddress!), UncheckedSendable(yp.baseAddress!), UncheckedSendable(out.baseAddress!))
                sums = channelSums(rows: dy.count / c, channels: c) { r, partial in
                    let offset = r.lowerBound * c
                    segkit_relu_backward_sum_rows(dd.value + offset, yy.value + offset, zz.value + offset, r.count, Int32(c), partial)
                }
            }
        }
    }
    return (dz, sums)
}

/// Σ of the `parts` equally long partial results laid end to end in
/// `partials`, added in their order (so the same on every run), the elements
/// split across the workers.
func sumInOrder(_ partials: [Float], parts: Int) -> [Float] {
    let size = partials.count / parts
    var total = Array(partials[0..<size])
    guard parts > 1 else { return total }
    total.withUnsafeMutableBufferPointer { t in
        partials.withUnsafeBufferPointer { p in
            let (tt, pp) = (UncheckedSendable(t.baseAddress!), UncheckedSendable(p.baseAddress!))
            Parallel.forEachRange(size, minimumPerWorker: 1 << 14) { r in
                for part in 1..<parts {
                    segkit_add(tt.value + r.lowerBound, pp.value + part * size + r.lowerBound, tt.value + r.lowerBound, r.count)
                }
            }
        }
    }
    return total
}
