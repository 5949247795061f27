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

    /// Parts per worker in a region. The pool hands parts out as workers free
    /// up, so when one core runs slower (this VM's second core is at times
    /// shared with a neighbour) the other takes more of the work instead of
    /// waiting for an equal half to finish.
    static let partsPerWorker = 4

    /// The most ranges a region is split into: what callers that keep one
    /// partial result per range (and add them in order, for the same result
    /// on every run) size their partials by.
    public static var maximumParts: Int { workers == 1 ? 1 : workers * partsPerWorker }

    /// Splits 0..<count into at most `partsPerWorker` · `workers` contiguous
    /// ranges of at least `minimumPerWorker` (none for an empty count, one when
    /// the work is too small to be worth a thread) and runs `body` on each,
    /// concurrently. Which worker runs a range varies; what each range computes
    /// must not depend on it.
    @inline(__always)
    public static func forEachRange(_ count: Int, minimumPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = workers == 1 ? 1 : min(maximumParts, max(1, count / max(minimumPerWorker, 1)))
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

/// A value declared Sendable without the compiler's check: pointers handed to
/// `Parallel.forEachRange` bodies that write disjoint ranges.
public struct UncheckedSendable<T>: @unchecked Sendable {
    /// The wrapped value.
    public let value: T
    /// Wraps `value`; the caller promises its concurrent uses do not race.
    public init(_ value: T) { self.value = value }
}
