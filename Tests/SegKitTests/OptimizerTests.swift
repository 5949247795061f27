import Testing
import SegKitEngine
@testable import SegKit

@Suite struct OptimizerTests {
    func parameter(_ values: [Float], gradient: [Float]) -> Parameter {
        let p = Parameter(name: "w", value: try! Tensor(shape: [values.count], scalars: values))
        p.gradient = try! Tensor(shape: [gradient.count], scalars: gradient)
        return p
    }

    @Test func sgdWithMomentumFollowsKerasRule() {
        let p = parameter([1, -2], gradient: [0.5, -1])
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        sgd.step([p])               // v = -0.1·g → w = [0.95, -1.9]
        #expect(p.value.scalars == [0.95, -1.9])
        sgd.step([p])               // v = 0.9·v − 0.1·g = [-0.095, 0.19] → w = [0.855, -1.71]
        #expect(abs(p.value.scalars[0] - 0.855) < 1e-6 && abs(p.value.scalars[1] + 1.71) < 1e-6)
    }

    @Test func adamFirstStepMovesEachWeightByTheLearningRate() {
        // Step 1: m = 0.1g, v = 0.001g², alpha = lr·√0.001/0.1 ⇒ Δ = lr·g/(|g| + ε/√0.001·…) ≈ lr·sign(g).
        let p = parameter([1, -2, 0], gradient: [0.3, -4, 0])
        let adam = Adam(learningRate: 0.01)
        adam.step([p])
        #expect(abs(p.value.scalars[0] - 0.99) < 1e-6)
        #expect(abs(p.value.scalars[1] + 1.99) < 1e-6)
        #expect(p.value.scalars[2] == 0)
        // Step 2 with the same gradient, by Keras's formula written out.
        adam.step([p])
        let (m, v) = (0.3 * 0.1 * 0.9 + 0.3 * 0.1, 0.09 * 0.001 * 0.999 + 0.09 * 0.001)
        let alpha = 0.01 * (1 - 0.999 * 0.999).squareRoot() / (1 - 0.9 * 0.9)
        let expected = 0.99 - alpha * m / (v.squareRoot() + 1e-7)
        #expect(abs(Double(p.value.scalars[0]) - expected) < 1e-6)
    }

    @Test func parametersWithoutGradientsAreUntouchedAndStateRoundTrips() {
        let a = parameter([1], gradient: [1])
        let b = Parameter(name: "frozen", value: Tensor(repeating: 3, shape: [2]))
        let adam = Adam(learningRate: 0.1)
        adam.step([a, b])
        #expect(b.value.scalars == [3, 3])
        let saved = adam.state
        let restored = Adam(learningRate: 0.1)
        restored.state = saved
        restored.iterations = adam.iterations
        let c = parameter(a.value.scalars, gradient: [1])
        adam.step([a, b])
        restored.step([c, Parameter(name: "frozen", value: Tensor(repeating: 3, shape: [2]))])
        #expect(a.value == c.value)
    }
}
