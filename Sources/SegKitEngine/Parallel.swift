import Foundation
import Dispatch

/// SegKit's one threading policy (PLATFORM.md, trap 4): OpenBLAS runs on one
/// thread per call, and the engine splits each heavy op into `workers` parts
/// run by `DispatchQueue.concurrentPerform` — so im2col, activations and
/// pooling use every core too, and no two thread pools fight over the cores.
public enum Parallel {
    /// Workers per op: the machine's cores (2 here).
    public static let workers: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

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
            let work = UncheckedSendable(escaping)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                work.value((count * p / parts)..<(count * (p + 1) / parts))
            }
        }
    }
}

public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
