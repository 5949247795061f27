/// Eight-lane loops the optimiser would not vectorise by itself (the exp-based
/// activations live in CKernels, compiled for the CPU's widest vectors).
enum VectorMath {
    typealias V = SIMD8<Float>

    /// acc[0..<n] += v · w[0..<n], eight lanes at a time (the pointers may not
    /// alias, which the compiler cannot know, so the vector code is written out).
    @inline(__always) static func axpy(_ v: Float, _ w: UnsafePointer<Float>, _ acc: UnsafeMutablePointer<Float>, _ n: Int) {
        let wr = UnsafeRawPointer(w), ar = UnsafeMutableRawPointer(acc)
        let vv = V(repeating: v)
        var k = 0
        while k + 8 <= n {
            let a = ar.loadUnaligned(fromByteOffset: k * 4, as: V.self) + vv * wr.loadUnaligned(fromByteOffset: k * 4, as: V.self)
            ar.storeBytes(of: a, toByteOffset: k * 4, as: V.self)
            k += 8
        }
        while k < n { acc[k] += v * w[k]; k += 1 }
    }
}
