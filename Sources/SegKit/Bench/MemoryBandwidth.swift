import Foundation
import SegKitEngine

extension Benchmarks {
    /// Main-memory bandwidth in GB/s (10⁹ bytes per second) as the engine's
    /// kernels can use it: a `mebibytes` float array, far larger than any cache,
    /// read and written in place across the engine's workers, bytes read plus
    /// bytes written over the best of 5 passes (the first touch of the pages
    /// is not timed). The ceiling for kernels that stream their data once, such
    /// as a depthwise convolution.
    public static func memoryBandwidthGBps(mebibytes: Int = 256) -> Double {
        let count = mebibytes << 18
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        var best = Double.infinity
        for _ in 0..<5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            // Negation: a store per load that the compiler cannot drop, values that stay finite.
            Parallel.forEachRange(count, minimumPerWorker: 1 << 20) { range in
                for i in range { buffer[i] = -buffer[i] }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return 2 * Double(count * MemoryLayout<Float>.size) / best / 1e9
    }
}
