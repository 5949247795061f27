import Testing
@testable import SegKitEngine

/// GroupNormalization: values worked by hand and finite-difference gradient checks.
@Suite struct GroupNormalizationTests {
    @Test func eachSamplesGroupIsNormalisedOverItsPositionsAndChannels() throws {
        // 4 channels in 2 groups of 2, two pixels, one sample.
        let gn = try GroupNormalization(name: "gn", channels: 4, groups: 2, epsilon: 0,
                                        gamma: tensor([4], [1, 2, 1, 1]), beta: tensor([4], [0, 0, 0, 10]))
        let x = tensor([1, 1, 2, 4], [1, 3, 0, 0,
                                      1, 3, 4, 4])
        let y = try gn.forward([x], mode: .inference).output
        // Group 0 holds 1, 3, 1, 3: mean 2, deviation 1. Group 1 holds 0, 0, 4, 4: mean 2, deviation 2.
        #expect(y.scalars == [-1, 2, -1, 9,
                              -1, 2, 1, 11])
    }

    @Test func samplesAreNormalisedApart() throws {
        let gn = try GroupNormalization(name: "gn", channels: 2, groups: 1, epsilon: 0, gamma: nil, beta: nil)
        let y = try gn.forward([tensor([2, 2], [0, 2, 10, 30])], mode: .inference).output
        #expect(y.scalars == [-1, 1, -1, 1])
    }

    @Test func groupsMustDivideTheChannels() {
        #expect(throws: EngineError.self) { try GroupNormalization(name: "gn", channels: 6, groups: 4, gamma: nil, beta: nil) }
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 79)
        let gn = try GroupNormalization(name: "gn", channels: 6, groups: 3, epsilon: 1e-3, gamma: data.normal([6]), beta: data.normal([6]))
        try GradientCheck().check(gn, [data.normal([2, 3, 2, 6])])
        let instance = try GroupNormalization(name: "gn", channels: 4, groups: 4, gamma: data.normal([4]), beta: nil)
        try GradientCheck().check(instance, [data.normal([2, 3, 3, 4])])
        try GradientCheck().check(try GroupNormalization(name: "gn", channels: 6, groups: 2, gamma: nil, beta: nil), [data.normal([4, 6])])
    }

    @Test func eachPixelSeesItsWholeMapOnTheSameGrid() throws {
        let g = Graph()
        let x = try g.addInput(name: "image", shape: [nil, nil, nil, 1])
        let pool = try g.add(Pooling2D(name: "pool", .max), inputs: [x])
        g.outputIndices = [try g.add(try GroupNormalization(name: "gn", channels: 1, groups: 1, gamma: nil, beta: nil), inputs: [pool])]
        let rows = try #require(try g.geometry(height: 16, width: 16)[2]?.rows)
        // 8 pixels 2 apart, each seeing 2 input pixels: the map spans 2 + 7·2 = 16.
        #expect(rows == AxisGeometry(size: 8, stride: 2, offset: 0.5, receptiveField: 16, exact: true, trailingPadding: 0))
    }

    @Test func aCopyKeepsTheConfigurationAndWeights() throws {
        var data = TestData(seed: 83)
        let gn = try GroupNormalization(name: "gn", channels: 6, groups: 3, epsilon: 1e-2, gamma: data.normal([6]), beta: data.normal([6]))
        let x = data.normal([2, 3, 3, 6])
        let copy = try #require(try gn.copy() as? GroupNormalization)
        #expect(copy.groups == 3 && copy.epsilon == 1e-2)
        #expect(try copy.forward([x], mode: .inference).output.scalars == gn.forward([x], mode: .inference).output.scalars)
        #expect(copy.gamma !== gn.gamma)
    }
}
