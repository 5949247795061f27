import Foundation

/// A small, fast, seedable generator (SplitMix64), so every random choice in
/// SegKit (initialisers, dropout masks, data order) is reproducible from a seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose whole sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits (SplitMix64's step: Steele, Lea & Flood 2014).
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / Float(1 << 24))
    }

    /// Standard normal (Box–Muller).
    public mutating func nextNormal() -> Float {
        var u1 = nextUniform()
        while u1 <= .leastNonzeroMagnitude { u1 = nextUniform() }
        let u2 = nextUniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Float.pi * u2)
    }
}


extension Tensor {
    /// Normal(0, stddev) values from `generator`.
    public static func randomNormal(
        shape: [Int], stddev: Float = 1, using generator: inout SeededGenerator
    ) -> Tensor {
        let n = elementCount(shape)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = generator.nextNormal() * stddev }
        return Tensor(uncheckedShape: shape, scalars: values)
    }

    /// Uniform values in [low, high) from `generator`.
    public static func randomUniform(
        shape: [Int], low: Float, high: Float, using generator: inout SeededGenerator
    ) -> Tensor {
        let n = elementCount(shape)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = low + (high - low) * generator.nextUniform() }
        return Tensor(uncheckedShape: shape, scalars: values)
    }
}
