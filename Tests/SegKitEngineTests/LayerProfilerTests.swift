import Testing
@testable import SegKitEngine

@Suite struct LayerProfilerTests {
    @Test func eachPassRecordsOneRunPerNodeAndTheMedianIgnoresAnOutlier() throws {
        var data = TestData(seed: 31)
        let g = Graph()
        let conv = try Conv2D(name: "conv", kernel: data.normal([3, 3, 2, 4]), bias: nil, padding: .same, activation: .relu())
        let x = try g.addInput(name: "input", shape: [nil, 8, 8, 2])
        let c = try g.add(conv, inputs: [x])
        g.outputIndices = [c]
        let profiler = LayerProfiler()
        g.profiler = profiler
        let input = data.normal([2, 8, 8, 2])
        for _ in 0..<3 {
            let pass = try g.forward([input], mode: .training)
            _ = try g.backward(pass, outputGradients: [data.normal([2, 8, 8, 4])])
        }
        #expect(profiler.forwardRuns[c]?.count == 3 && profiler.backwardRuns[c]?.count == 3)
        // A step the VM's other core was taken in moves the mean, not the median.
        #expect(LayerProfiler.median([0.001, 0.050, 0.002]) == 0.002)
        #expect(LayerProfiler.median([0.004, 0.001, 0.002, 0.003]) == 0.0025)
        #expect(LayerProfiler.median([]) == 0)
    }
}
