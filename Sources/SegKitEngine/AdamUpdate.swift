import CKernels

/// Adam's element-wise update of one parameter, for SegKit's trainer: 16-float
/// vectors in CKernels (Swift's loop ran scalar, square root and division one
/// value at a time: 4 ms per U-Net step), split across the engine's workers.
/// Each value's arithmetic is the same wherever the split falls.
public enum AdamUpdate {
    public static func apply(values w: inout [Float], gradient g: [Float], m: inout [Float], v: inout [Float],
                             beta1: Float, beta2: Float, alpha: Float, epsilon: Float, decay: Float) {
        precondition(g.count == w.count && m.count == w.count && v.count == w.count, "Adam: mismatched state sizes")
        guard !w.isEmpty else { return }
        w.withUnsafeMutableBufferPointer { wp in
            g.withUnsafeBufferPointer { gp in
                m.withUnsafeMutableBufferPointer { mp in
                    v.withUnsafeMutableBufferPointer { vp in
                        let (ww, gg, mm, vv) = (UncheckedSendable(wp.baseAddress!), UncheckedSendable(gp.baseAddress!),
                                                UncheckedSendable(mp.baseAddress!), UncheckedSendable(vp.baseAddress!))
                        Parallel.forEachRange(wp.count, minimumPerWorker: 1 << 15) { r in
                            let k = r.lowerBound
                            segkit_adam_update(ww.value + k, gg.value + k, mm.value + k, vv.value + k, r.count,
                                               beta1, beta2, alpha, epsilon, decay)
                        }
                    }
                }
            }
        }
    }
}
