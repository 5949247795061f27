import SegKitEngine

/// Weight initialisers for new decoder layers, all seeded.
enum Initializer {
    /// He normal (U-Net paper): N(0, √(2 / fan_in)), for layers followed by ReLU.
    static func he(_ shape: [Int], fanIn: Int, _ rng: inout SeededGenerator) -> Tensor {
        Tensor.randomNormal(shape: shape, stddev: (2 / Float(max(fanIn, 1))).squareRoot(), using: &rng)
    }

    /// Glorot uniform (Keras's default): U(±√(6 / (fan_in + fan_out))).
    static func glorot(_ shape: [Int], fanIn: Int, fanOut: Int, _ rng: inout SeededGenerator) -> Tensor {
        let limit = (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
        return Tensor.randomUniform(shape: shape, low: -limit, high: limit, using: &rng)
    }

    /// FCN's bilinear upsampling kernel for a Conv2DTranspose of `size` x `size`
    /// mapping each of `channels` channels to itself (Long et al.'s `upsample_filt`):
    /// w(i) = 1 − |i − c| / f with f = ⌈size/2⌉ and c = f − 1 (odd size) or f − 0.5 (even).
    static func bilinear(size: Int, channels: Int) -> Tensor {
        let factor = Float((size + 1) / 2)
        let center = size % 2 == 1 ? factor - 1 : factor - 0.5
        let w = (0..<size).map { 1 - abs(Float($0) - center) / factor }
        var k = Tensor(zeros: [size, size, channels, channels])
        for y in 0..<size {
            for x in 0..<size {
                for c in 0..<channels { k.scalars[((y * size + x) * channels + c) * channels + c] = w[y] * w[x] }
            }
        }
        return k
    }
}
