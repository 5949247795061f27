import COpenBLAS
import Testing
@testable import SegKitEngine

@Suite struct OpenBLASTests {
    @Test func anAVX512CPUGetsAVX512KernelsNotAFallback() {
        let core = BLAS.coreName
        print("OpenBLAS core in use: \(core); CPU has AVX-512: \(BLAS.cpuHasAVX512)")
        if BLAS.cpuHasAVX512 {
            #expect(BLAS.vectorTier(ofCore: core) == 3, "AVX-512 CPU but OpenBLAS runs \(core)")
            #expect(!["Prescott", "Haswell", "Zen"].contains(core))
        } else if segkit_cpu_detect().avx2 != 0 {
            #expect(BLAS.vectorTier(ofCore: core) >= 2, "AVX2 CPU but OpenBLAS runs \(core)")
        }
    }

    @Test func corePreferenceFollowsWhatTheCPUCanRun() {
        #expect(BLAS.preferredCore(avx512: true, avx2: true, fma: true)?.name == "SKYLAKEX")
        #expect(BLAS.preferredCore(avx512: false, avx2: true, fma: true)?.name == "HASWELL")
        #expect(BLAS.preferredCore(avx512: false, avx2: false, fma: false) == nil)
        #expect(BLAS.vectorTier(ofCore: "Prescott") == 1)
        #expect(BLAS.vectorTier(ofCore: "SkylakeX") == 3)
    }

    @Test func sgemmWithLeadingDimensionsMatchesTheDefinition() {
        // A 2x3 block of a 2x4 matrix times a 3x2 matrix, into a 2x2 block of a 2x3 C.
        let a: [Float] = [1, 2, 3, 99, 4, 5, 6, 99]
        let b: [Float] = [7, 8, 9, 10, 11, 12]
        var c: [Float] = [1, 1, -1, 1, 1, -1]
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.sgemm(transA: false, transB: false, m: 2, n: 2, k: 3, a: ap.baseAddress!, lda: 4,
                               b: bp.baseAddress!, ldb: 2, beta: 1, c: cp.baseAddress!, ldc: 3)
                }
            }
        }
        #expect(c == [59, 65, -1, 140, 155, -1])
    }
}
