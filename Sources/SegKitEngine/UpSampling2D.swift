import CKernels
import Foundation

/// Keras's UpSampling2D: weightless enlargement by integer factors, `nearest`
/// (repeat each pixel) or `bilinear` (half-pixel centres, edges clamped: what
/// Keras 3's `ops.image.resize` and TF2's `tf.image.resize` compute).
public final class UpSampling2D: Layer {
    /// How a resized pixel takes its value; raw values as Keras's `interpolation`.
    public enum Interpolation: String, Sendable { case nearest, bilinear }

    /// Integer factors (rows, cols).
    public let size: (Int, Int)
    /// `nearest` or `bilinear`.
    public let interpolation: Interpolation

    /// Keras's UpSampling2D (keras/src/layers/reshaping/up_sampling2d.py).
    /// - Throws: `EngineError.invalidArgument` for a factor below 1.
    public init(name: String, size: (Int, Int), interpolation: Interpolation = .nearest) throws {
        guard size.0 >= 1, size.1 >= 1 else {
            throw EngineError.invalidArgument(op: "UpSampling2D '\(name)'", message: "size \(size) must be ≥ 1")
        }
        self.size = size
        self.interpolation = interpolation
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        try UpSampling2D(name: name, size: size, interpolation: interpolation)
    }

    /// `[N, H·size.0, W·size.1, C]`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        return [s[0], s[1].map { $0 * size.0 }, s[2].map { $0 * size.1 }, s[3]]
    }

    /// For each output index along an axis: the two source indices and the
    /// weight of the second.
    struct AxisTaps {
        var lower: [Int]
        var upper: [Int]
        var weight: [Float]

        init(input: Int, scale: Int, interpolation: Interpolation) {
            let output = input * scale
            lower = [Int](repeating: 0, count: output)
            upper = lower
            weight = [Float](repeating: 0, count: output)
            for o in 0..<output {
                switch interpolation {
                case .nearest:
                    lower[o] = o / scale
                    upper[o] = lower[o]
                case .bilinear:
                    let src = max((Float(o) + 0.5) / Float(scale) - 0.5, 0)
                    let i0 = min(Int(src.rounded(.down)), input - 1)
                    lower[o] = i0
                    upper[o] = min(i0 + 1, input - 1)
                    weight[o] = src - Float(i0)
                }
            }
        }
    }

    /// The four source pixels and weights of one output pixel (flat offsets,
    /// already scaled by the channel count).
    struct Blend {
        var output: Int
        var sources: (Int, Int, Int, Int)
        var weights: (Float, Float, Float, Float)
    }

    /// Calls `body` once per output pixel of an input of `shape` whose image is
    /// in `images`: forward gathers through it, backward scatters through the same taps.
    private func forEachBlend(_ shape: [Int], images: Range<Int>, _ body: (Blend) -> Void) {
        let (h, w, c) = (shape[1], shape[2], shape[3])
        let ty = AxisTaps(input: h, scale: size.0, interpolation: interpolation)
        let tx = AxisTaps(input: w, scale: size.1, interpolation: interpolation)
        let (oh, ow) = (h * size.0, w * size.1)
        for b in images {
            for oy in 0..<oh {
                let r0 = (b * h + ty.lower[oy]) * w, r1 = (b * h + ty.upper[oy]) * w
                let wy = ty.weight[oy]
                for ox in 0..<ow {
                    let wx = tx.weight[ox]
                    body(Blend(output: ((b * oh + oy) * ow + ox) * c,
                               sources: ((r0 + tx.lower[ox]) * c, (r0 + tx.upper[ox]) * c,
                                         (r1 + tx.lower[ox]) * c, (r1 + tx.upper[ox]) * c),
                               weights: ((1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx)))
                }
            }
        }
    }

    /// `[N, H, W, C]` → `[N, H·f₀, W·f₁, C]`; output pixel j reads source (j + ½)/f − ½
    /// (clamped) with bilinear weights, or ⌊j/f⌋ for nearest. The cache is the input shape.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let (n, h, w, c) = x.nhwc
        let y = Tensor.uninitialized(shape: [n, h * size.0, w * size.1, c]) { out in
            x.scalars.withUnsafeBufferPointer { xp in
                let (o, xx) = (UncheckedSendable(out), UncheckedSendable(xp))
                if interpolation == .bilinear {
                    let ty = AxisTaps(input: h, scale: size.0, interpolation: .bilinear)
                    let tx = AxisTaps(input: w, scale: size.1, interpolation: .bilinear)
                    let (rl, ru, cl, cu) = (ty.lower.map(Int32.init), ty.upper.map(Int32.init), tx.lower.map(Int32.init), tx.upper.map(Int32.init))
                    // Whole images per worker: each writes only its own outputs.
                    Parallel.forEachRange(n) { images in
                        segkit_upsample_bilinear(xx.value.baseAddress!, Int32(h), Int32(w), Int32(c), Int32(h * size.0), Int32(w * size.1),
                                                 rl, ru, ty.weight, cl, cu, tx.weight, o.value.baseAddress!,
                                                 Int32(images.lowerBound), Int32(images.upperBound))
                    }
                    return
                }
                Parallel.forEachRange(n) { images in
                    forEachBlend(x.shape, images: images) { t in
                        // Nearest: the four taps are one source pixel.
                        (o.value.baseAddress! + t.output).update(from: xx.value.baseAddress! + t.sources.0, count: c)
                    }
                }
            }
        }
        return LayerOutput(y, cache: mode == .training ? x.shape : nil)
    }

    /// dy scattered back through the same taps and weights.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        let shape = try requireCache(cache, as: [Int].self)
        let c = shape[3]
        var dx = Tensor(zeros: shape)
        dx.scalars.withUnsafeMutableBufferPointer { d in
            gradOutput.scalars.withUnsafeBufferPointer { dy in
                let (dd, g) = (UncheckedSendable(d), UncheckedSendable(dy))
                // Whole images per worker: the taps of one image never reach another's.
                Parallel.forEachRange(shape[0]) { images in
                    forEachBlend(shape, images: images) { t in
                        let (p00, p01, p10, p11) = t.sources
                        let (a, b, cc, e) = t.weights
                        for k in 0..<c {
                            let v = g.value[t.output + k]
                            dd.value[p00 + k] += a * v
                            dd.value[p01 + k] += b * v
                            dd.value[p10 + k] += cc * v
                            dd.value[p11 + k] += e * v
                        }
                    }
                }
            }
        }
        return [dx]
    }
}
