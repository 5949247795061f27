import Dispatch
import Synchronization
import Testing
@testable import SegKitEngine

/// The worker pool behind every parallel op: each part runs exactly once,
/// whoever calls and however regions nest.
@Suite struct ParallelTests {
    @Test func everyIndexIsVisitedExactlyOnceAcrossManyRegions() {
        for count in [1, 2, 3, 17, 1000, 65_537] {
            for _ in 0..<50 {
                var hits = [Int32](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in
                    let box = UncheckedSendable(h)
                    Parallel.forEachRange(count) { r in for i in r { box.value[i] += 1 } }
                }
                #expect(hits.allSatisfy { $0 == 1 }, "count \(count)")
            }
        }
    }

    @Test func aRegionInsideARegionRunsOnItsCaller() {
        let total = Atomic<Int>(0)
        Parallel.forEachRange(4) { outer in
            for _ in outer {
                Parallel.forEachRange(100) { inner in total.add(inner.count, ordering: .relaxed) }
            }
        }
        #expect(total.load(ordering: .relaxed) == 400)
    }

    @Test func regionsFromSeveralThreadsAtOnceAllComplete() {
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<200 {
                Parallel.forEachRange(1000) { r in total.add(r.count, ordering: .relaxed) }
            }
        }
        #expect(total.load(ordering: .relaxed) == 8 * 200 * 1000)
    }
}
