import CKernels
import Foundation

/// SegKit's one threading policy (PLATFORM.md, trap 4): OpenBLAS runs on one
/// thread per call, and the engine splits each heavy op into `workers` parts
/// run on CKernels' worker pool (the caller plus one spinning helper per extra
/// core) — so im2col, activations and pooling use every core too, and no two
/// thread pools fight over the cores.
public enum Parallel {
    /// Workers per op: the machine's cores (2 here).
    public static let workers: Int = {
        let n = max(1, ProcessInfo.processInfo.activeProcessorCount)
        segkit_parallel_configure(Int32(n))
        return n
    }()

    /// Splits 0..<count into at most `workers` contiguous ranges (none for an
    /// empty count, one when the work is too small to be worth a thread) and runs
    /// `body` on each, concurrently.
    @inline(__always)
    public static func forEachRange(_ count: Int, minimumPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = min(workers, max(1, count / max(minimumPerWorker, 1)))
        if parts == 1 { body(0..<count); return }
        // The parts touch disjoint memory (the callers' contract), which the
        // compiler cannot see through raw pointers: hence the unchecked box.
        withoutActuallyEscaping(body) { escaping in
            let region = Region(count: count, parts: parts, body: escaping)
            withExtendedLifetime(region) {
                segkit_parallel_run(Int32(parts), { context, part in
                    let region = Unmanaged<Region>.fromOpaque(context!).takeUnretainedValue()
                    let p = Int(part)
                    region.body((region.count * p / region.parts)..<(region.count * (p + 1) / region.parts))
                }, Unmanaged.passUnretained(region).toOpaque())
            }
        }
    }

    private final class Region {
        let count: Int, parts: Int
        let body: (Range<Int>) -> Void
        init(count: Int, parts: Int, body: @escaping (Range<Int>) -> Void) {
            (self.count, self.parts, self.body) = (count, parts, body)
        }
    }
}

public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
