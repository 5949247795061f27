import CKernels
import Testing
@testable import SegKitEngine

/// A C kernel whose scratch allocation fails sets a flag and returns; the
/// engine turns it into an error naming the node (never `abort()`).
@Suite(.serialized) struct OutOfMemoryTests {
    @Test func aKernelsAllocationFailureBecomesAnOutOfMemoryErrorNamingTheNode() throws {
        let g = Graph()
        let x = try g.addInput(name: "image", shape: [nil, nil, nil, 1])
        let conv = try Conv2D(name: "conv", kernel: Tensor(zeros: [3, 3, 1, 4]), bias: nil, strides: (1, 1), padding: .same, dilation: (1, 1))
        g.outputIndices = [try g.add(conv, inputs: [x])]
        let input = Tensor(zeros: [1, 8, 8, 1])
        segkit_note_allocation_failure()   // as a kernel does when malloc returns NULL
        #expect { try g.forward([input]) } throws: { ($0 as? EngineError) == .outOfMemory("running 'conv'") }
        // The flag is cleared: the next pass runs.
        #expect(try g.forward([input]).outputs(of: g)[0].shape == [1, 8, 8, 4])
        #expect("\(EngineError.outOfMemory("running 'conv'"))" == "out of memory while running 'conv'")
    }
}
