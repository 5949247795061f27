import CKernels

/// Adam's element-wise update of one parameter, for SegKit's trainer: 16-float
/// vectors in CKernels (Swift's loop ran scalar, square root and division one
/// value at a time: 4 ms per U-Net step), split across the engine's workers.
/// Each value's arithmetic is the same wherever the split falls.
public enum AdamUpdate {
    /// One Adam step in place (Kingma & Ba 2015, Algorithm 1, in Keras's form,
    /// keras/src/optimizers/adam.py): w ← w − decay·w when decay > 0 (decoupled
    /// weight decay, AdamW, Loshchilov & Hutter); m ← m + (g − m)(1 − β₁);
    /// v ← v + (g² − v)(1 − β₂); w ← w − α·m / (√v + ε). `alpha` is the caller's
    /// bias-corrected step lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ); `decay` is lr·weight decay.
    /// All four arrays have one value per scalar of the parameter (a trap otherwise).
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
