import COpenBLAS
import Foundation

/// SegKit's single door to OpenBLAS.
///
/// OpenBLAS 0.3.21 does not recognise newer Intel CPUs and falls back to its
/// SSE3 "Prescott" kernels, five times slower than its AVX-512 ones. Before the
/// first BLAS call SegKit therefore checks what the CPU and OS support and, if
/// OpenBLAS chose a slower kernel family than the CPU can run, re-runs
/// OpenBLAS's core selection with the best one.
public enum BLAS {
    /// The OpenBLAS kernel family in use, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var coreName: String {
        _ = configured
        return String(cString: openblas_get_corename())
    }

    /// OpenBLAS kernel families by the widest vectors they use.
    static func vectorTier(ofCore name: String) -> Int {
        switch name.uppercased() {
        case "SKYLAKEX", "COOPERLAKE", "SAPPHIRERAPIDS": return 3   // AVX-512
        case "HASWELL", "ZEN": return 2                              // AVX2 + FMA
        default: return 1                                            // SSE-era fallbacks
        }
    }

    /// The core SegKit asks for on a CPU with these features, with its tier,
    /// or nil to leave OpenBLAS's own choice alone.
    static func preferredCore(avx512: Bool, avx2: Bool, fma: Bool) -> (name: String, tier: Int)? {
        if avx512 { return ("SKYLAKEX", 3) }
        if avx2 && fma { return ("HASWELL", 2) }
        return nil
    }

    /// Whether the CPU and OS support AVX-512 (cpuid and xgetbv).
    public static var cpuHasAVX512: Bool { segkit_cpu_detect().avx512 != 0 }

    /// Runs once, on first use of any BLAS routine. Measured on these machines
    /// (sgemm 1024³, one thread): OpenBLAS 0.3.21 picks Prescott (~33 GFLOP/s) on
    /// Intel family 6 model 207 and Haswell (~112) on AMD family 26, where its
    /// SkylakeX kernels reach ~205. An inherited OPENBLAS_CORETYPE is treated the
    /// same way (machine images set it to a lowest common denominator); a user who
    /// wants a particular core says so with SEGKIT_OPENBLAS_CORETYPE.
    static let configured: Bool = {
        let environment = ProcessInfo.processInfo.environment
        let target: String
        if let requested = environment["SEGKIT_OPENBLAS_CORETYPE"], !requested.isEmpty {
            target = requested
        } else {
            let features = segkit_cpu_detect()
            guard let preferred = preferredCore(
                avx512: features.avx512 != 0, avx2: features.avx2 != 0, fma: features.fma != 0),
                preferred.tier > vectorTier(ofCore: String(cString: openblas_get_corename()))
            else { return true }
            target = preferred.name
        }
        let inherited = environment["OPENBLAS_CORETYPE"]
        setenv("OPENBLAS_CORETYPE", target, 1)
        gotoblas_dynamic_quit()
        gotoblas_dynamic_init()
        // Leave the environment as found, for any process SegKit starts.
        if let inherited { setenv("OPENBLAS_CORETYPE", inherited, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
        return true
    }()

    /// One OpenBLAS thread per call: the engine parallelises around BLAS itself (see `Parallel`).
    static let singleThreaded: Bool = {
        _ = configured
        openblas_set_num_threads(1)
        return true
    }()

    /// OpenBLAS's threads per call (1 once the engine has configured it: the
    /// engine parallelises around BLAS).
    public static var threadCount: Int {
        _ = singleThreaded
        return Int(openblas_get_num_threads())
    }

    /// Sets OpenBLAS's threads per call (`openblas_set_num_threads`).
    public static func setThreadCount(_ n: Int) {
        _ = configured
        openblas_set_num_threads(Int32(n))
    }

    /// C = alpha * op(A) * op(B) + beta * C, row-major, with explicit leading dimensions.
    @inline(__always)
    static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = singleThreaded
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS treats k = 0 as "scale C by beta"; keep that explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : c[i * ldc + j] * beta } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Seconds for one n x n x n sgemm on fixed data, its rows split across the
    /// engine's workers as the convolutions split theirs (the benchmark's reference rate).
    public static func timeSquareSgemm(n: Int) -> Double {
        let a = [Float](repeating: 0.5, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        let start = DispatchTime.now().uptimeNanoseconds
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                let (aa, cc) = (UncheckedSendable(ap.baseAddress!), UncheckedSendable(cp.baseAddress!))
                // One block of rows per worker (not the engine's finer split): the
                // reference is the best sgemm rate the machine reaches.
                let workers = Parallel.workers
                Parallel.forEachRange(workers) { parts in
                    for w in parts {
                        let rows = (n * w / workers)..<(n * (w + 1) / workers)
                        sgemm(transA: false, transB: false, m: rows.count, n: n, k: n, a: aa.value + rows.lowerBound * n, lda: n,
                              b: aa.value, ldb: n, beta: 0, c: cc.value + rows.lowerBound * n, ldc: n)
                    }
                }
            }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
