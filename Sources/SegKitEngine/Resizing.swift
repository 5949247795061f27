/// Keras's Resizing to a fixed height x width (no aspect-ratio crop or pad):
/// bilinear with half-pixel centres and no antialiasing (`tf.image.resize` /
/// `jax.image.resize(antialias=False)`, what Keras's `ops.image.resize` calls),
/// or nearest (source ⌊(o + ½)·in/out⌋). Backward scatters the gradient through
/// the same taps.
public final class Resizing: Layer {
    /// Output size in pixels.
    public let height: Int, width: Int
    /// `bilinear` or `nearest`.
    public let interpolation: UpSampling2D.Interpolation

    /// Keras's Resizing (keras/src/layers/preprocessing/image_preprocessing/resizing.py,
    /// `crop_to_aspect_ratio=False`, `pad_to_aspect_ratio=False`).
    /// - Throws: `EngineError.invalidArgument` for a size that is not positive.
    public init(name: String, height: Int, width: Int, interpolation: UpSampling2D.Interpolation) throws {
        guard height >= 1, width >= 1 else {
            throw EngineError.invalidArgument(op: "Resizing '\(name)'", message: "size \(height)x\(width) must be positive")
        }
        self.height = height
        self.width = width
        self.interpolation = interpolation
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        try Resizing(name: name, height: height, width: width, interpolation: interpolation)
    }

    /// `[N, height, width, C]`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        return [s[0], height, width, s[3]]
    }

    /// Per output index along an axis: two source indices and the second's weight.
    static func taps(input: Int, output: Int, interpolation: UpSampling2D.Interpolation) -> [(Int, Int, Float)] {
        let scale = Float(input) / Float(output)
        return (0..<output).map { o in
            switch interpolation {
            case .nearest:
                let i = min(Int(((Float(o) + 0.5) * scale).rounded(.down)), input - 1)
                return (i, i, 0)
            case .bilinear:
                let src = max((Float(o) + 0.5) * scale - 0.5, 0)
                let i0 = min(Int(src.rounded(.down)), input - 1)
                return (i0, min(i0 + 1, input - 1), src - Float(i0))
            }
        }
    }

    /// Calls `body(output, source, weight)` for the four (or one) taps of every output value.
    func forEachTap(_ shape: [Int], _ body: (Int, Int, Float) -> Void) {
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let ty = Self.taps(input: h, output: height, interpolation: interpolation)
        let tx = Self.taps(input: w, output: width, interpolation: interpolation)
        for b in 0..<n {
            for oy in 0..<height {
                let (y0, y1, wy) = ty[oy]
                for ox in 0..<width {
                    let (x0, x1, wx) = tx[ox]
                    let out = ((b * height + oy) * width + ox) * c
                    for (sy, sx, weight) in [(y0, x0, (1 - wy) * (1 - wx)), (y0, x1, (1 - wy) * wx), (y1, x0, wy * (1 - wx)), (y1, x1, wy * wx)]
                    where weight != 0 {
                        let src = ((b * h + sy) * w + sx) * c
                        for k in 0..<c { body(out + k, src + k, weight) }
                    }
                }
            }
        }
    }

    /// `[N, H, W, C]` → `[N, height, width, C]`; the cache is the input shape.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        var y = Tensor(zeros: [x.shape[0], height, width, x.shape[3]])
        y.scalars.withUnsafeMutableBufferPointer { out in
            x.scalars.withUnsafeBufferPointer { src in forEachTap(x.shape) { o, i, weight in out[o] += weight * src[i] } }
        }
        return LayerOutput(y, cache: mode == .training ? x.shape : nil)
    }

    /// dy scattered back through the forward pass's taps and weights.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let shape = try requireCache(cache, as: [Int].self)
        guard needInputGradients[0] else { return [nil] }
        var dx = Tensor(zeros: shape)
        dx.scalars.withUnsafeMutableBufferPointer { d in
            gradOutput.scalars.withUnsafeBufferPointer { g in forEachTap(shape) { o, i, weight in d[i] += weight * g[o] } }
        }
        return [dx]
    }
}

/// Keras's CenterCrop to height x width: the window starting at ⌊(H − h)/2⌋,
/// ⌊(W − w)/2⌋. An input smaller than the window is an error (Keras would
/// resize it instead).
public final class CenterCrop: Layer {
    /// The crop's size in pixels.
    public let height: Int, width: Int

    /// Keras's CenterCrop (keras/src/layers/preprocessing/image_preprocessing/center_crop.py).
    /// - Throws: `EngineError.invalidArgument` for a size that is not positive.
    public init(name: String, height: Int, width: Int) throws {
        guard height >= 1, width >= 1 else {
            throw EngineError.invalidArgument(op: "CenterCrop '\(name)'", message: "size \(height)x\(width) must be positive")
        }
        self.height = height
        self.width = width
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        try CenterCrop(name: name, height: height, width: width)
    }

    /// `[N, height, width, C]`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or smaller than the crop.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        if let h = s[1], let w = s[2], h < height || w < width {
            throw EngineError.shapeMismatch(op: "CenterCrop '\(name)'", expected: "an input of at least \(height)x\(width)", found: "\(h)x\(w)")
        }
        return [s[0], height, width, s[3]]
    }

    func crops(_ shape: [Int]) throws -> Cropping2D {
        let (h, w) = (shape[1], shape[2])
        guard h >= height, w >= width else {
            throw EngineError.shapeMismatch(op: "CenterCrop '\(name)'", expected: "an input of at least \(height)x\(width)", found: "\(shape)")
        }
        let top = (h - height) / 2, left = (w - width) / 2
        return Cropping2D(name: name, rows: (top, h - height - top), cols: (left, w - width - left))
    }

    /// The centred `[N, height, width, C]` window of `[N, H, W, C]` (a `Cropping2D` made per input size).
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or smaller than the crop.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        try expectRank(4, inputs[0], layer: self)
        let crop = try crops(inputs[0].shape)
        let y = try crop.forward(inputs, mode: mode)
        return LayerOutput(y.output, cache: mode == .training ? (crop, y.cache) as Any : nil)
    }

    /// dy placed back in the centred window of zeros of the input's shape.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let (crop, inner) = try requireCache(cache, as: (Cropping2D, Any?).self)
        return try crop.backward(gradOutput, cache: inner, needInputGradients: needInputGradients)
    }
}
