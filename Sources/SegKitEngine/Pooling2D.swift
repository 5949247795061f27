import CKernels

/// Keras's MaxPooling2D and AveragePooling2D: pool size, strides, padding.
///
/// With `same` padding, max pooling ignores the padded positions and average
/// pooling divides by the number of real (unpadded) inputs in the window, as
/// TensorFlow and Keras do.
public final class Pooling2D: Layer, AddsInputGradientInPlace {
    /// Max or average over each window.
    public enum Reduction: Sendable { case max, average }

    /// Max or average.
    public let reduction: Reduction
    /// Window height and width in pixels.
    public let poolSize: (Int, Int)
    /// Step between windows in pixels, (rows, cols).
    public let strides: (Int, Int)
    /// `valid` or `same` (padded positions never count).
    public let padding: Padding

    /// A Keras MaxPooling2D or AveragePooling2D (keras/src/layers/pooling/base_pooling.py);
    /// `strides` default to the pool size, as in Keras.
    /// - Throws: `EngineError.invalidArgument` for a pool size or stride below 1.
    public init(name: String, _ reduction: Reduction, poolSize: (Int, Int) = (2, 2),
                strides: (Int, Int)? = nil, padding: Padding = .valid) throws {
        let strides = strides ?? poolSize
        guard poolSize.0 >= 1, poolSize.1 >= 1, strides.0 >= 1, strides.1 >= 1 else {
            throw EngineError.invalidArgument(op: "Pooling2D '\(name)'", message: "pool size and strides must be ≥ 1")
        }
        self.reduction = reduction
        self.poolSize = poolSize
        self.strides = strides
        self.padding = padding
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        try Pooling2D(name: name, reduction, poolSize: poolSize, strides: strides, padding: padding)
    }

    public override var kind: String { reduction == .max ? "MaxPooling2D" : "AveragePooling2D" }

    func window(for x: Tensor) throws -> Window2D {
        guard let g = Window2D.forward(over: x.shape, kernel: poolSize, strides: strides, padding: padding) else {
            throw EngineError.shapeMismatch(op: "\(kind) '\(name)'", expected: "an input at least as large as the pool \(poolSize)", found: "\(x.shape)")
        }
        return g
    }

    /// `[N, H', W', C]`, H' and W' by the padding rule (as a convolution's).
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        return Window2D.forwardShape(s, kernel: poolSize, strides: strides, padding: padding, channels: s[3])
    }

    struct Cache {
        var inputShape: [Int]
        var window: Window2D
        /// Max pooling: the flat input index each output took its value from.
        var argmax: [Int32]
    }

    /// The in-range input rows and columns of output (oy, ox).
    @inline(__always) private func span(_ a: WindowAxis, _ o: Int) -> Range<Int> {
        let start = a.source(o, 0)
        return max(start, 0)..<min(start + a.kernel, a.input)
    }

    /// `[N, H, W, C]` → `[N, H', W', C]`; max pooling's cache keeps each output's
    /// argmax (a flat input index).
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or smaller
    ///   than the pool with `valid` padding.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x)
        let c = x.shape[3]
        let (ih, iw, oh, ow) = (g.rows.input, g.cols.input, g.rows.output, g.cols.output)
        let record = mode == .training && reduction == .max
        var argmax = record ? [Int32](repeating: 0, count: g.batch * oh * ow * c) : []
        let y = Tensor.uninitialized(shape: [g.batch, oh, ow, c]) { buffer in
            x.scalars.withUnsafeBufferPointer { xp in
                argmax.withUnsafeMutableBufferPointer { amBuffer in
                    // Output rows split across the workers; each writes only its own rows.
                    let (outBox, amBox, xBox) = (UncheckedSendable(buffer), UncheckedSendable(amBuffer), UncheckedSendable(xp))
                    Parallel.forEachRange(g.batch * oh, minimumPerWorker: 16) { rows in
                        let (out, xp) = (outBox.value, xBox.value)
                        if reduction == .max {
                            segkit_max_pool(xp.baseAddress!, Int32(c), DirectConvolution.axis(g.rows), DirectConvolution.axis(g.cols),
                                            out.baseAddress!, record ? amBox.value.baseAddress : nil,
                                            Int32(rows.lowerBound), Int32(rows.upperBound))
                            return
                        }
                        for row in rows {
                            let (n, oy) = (row / oh, row % oh)
                            let ys = span(g.rows, oy)
                            for ox in 0..<ow {
                                let xs = span(g.cols, ox)
                                let o = ((n * oh + oy) * ow + ox) * c
                                for k in 0..<c { out[o + k] = 0 }
                                for iy in ys {
                                    for ix in xs {
                                        let i = ((n * ih + iy) * iw + ix) * c
                                        for k in 0..<c { out[o + k] += xp[i + k] }
                                    }
                                }
                                let inv = 1 / Float(ys.count * xs.count)
                                for k in 0..<c { out[o + k] *= inv }
                            }
                        }
                    }
                }
            }
        }
        return LayerOutput(y, cache: mode == .training ? Cache(inputShape: x.shape, window: g, argmax: argmax) : nil)
    }

    /// Max: dy scattered to each window's argmax; average: dy shared evenly over
    /// each window's real (unpadded) inputs.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        let cache = try requireCache(cache, as: Cache.self)
        let g = cache.window
        let c = cache.inputShape[3]
        let (ih, iw, oh, ow) = (g.rows.input, g.cols.input, g.rows.output, g.cols.output)
        var dx = Tensor(zeros: cache.inputShape)
        if reduction == .max {
            Self.scatterMaxima(gradOutput, cache: cache, into: &dx)
            return [dx]
        }
        // Average: each output's gradient shared evenly by its window.
        dx.scalars.withUnsafeMutableBufferPointer { d in
            gradOutput.scalars.withUnsafeBufferPointer { dy in
                for n in 0..<g.batch {
                    for oy in 0..<oh {
                        let ys = span(g.rows, oy)
                        for ox in 0..<ow {
                            let xs = span(g.cols, ox)
                            let o = ((n * oh + oy) * ow + ox) * c
                            let inv = 1 / Float(ys.count * xs.count)
                            for iy in ys {
                                for ix in xs {
                                    let i = ((n * ih + iy) * iw + ix) * c
                                    for k in 0..<c { d[i + k] += dy[o + k] * inv }
                                }
                            }
                        }
                    }
                }
            }
        }
        return [dx]
    }

    /// Max pooling's gradient added into `inputGradient` (the input's gradient from
    /// its other readers, of the input's shape) at each argmax; false, having done
    /// nothing, for average pooling or another shape.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public func backward(_ gradOutput: Tensor, cache: Any?, addingInputGradientTo inputGradient: inout Tensor) throws -> Bool {
        guard reduction == .max else { return false }
        let cache = try requireCache(cache, as: Cache.self)
        guard inputGradient.shape == cache.inputShape else { return false }
        Self.scatterMaxima(gradOutput, cache: cache, into: &inputGradient)
        return true
    }

    /// dx[argmax[o]] += dy[o]: max pooling's gradient, added where each maximum was.
    static func scatterMaxima(_ dy: Tensor, cache: Cache, into dx: inout Tensor) {
        let g = cache.window
        let perImage = g.rows.output * g.cols.output * cache.inputShape[3]
        dx.scalars.withUnsafeMutableBufferPointer { d in
            dy.scalars.withUnsafeBufferPointer { dyp in
                cache.argmax.withUnsafeBufferPointer { am in
                    let (dd, dyy, amm) = (UncheckedSendable(d), UncheckedSendable(dyp), UncheckedSendable(am))
                    // Whole images per worker: an image's outputs only reach its own inputs.
                    Parallel.forEachRange(g.batch) { images in
                        for o in (images.lowerBound * perImage)..<(images.upperBound * perImage) {
                            dd.value[Int(amm.value[o])] += dyy.value[o]
                        }
                    }
                }
            }
        }
    }
}

/// Keras's GlobalMaxPooling2D / GlobalAveragePooling2D: one value per channel,
/// shape (N, C), or (N, 1, 1, C) with `keepdims`.
public final class GlobalPooling2D: Layer {
    /// Max or average over all H x W positions.
    public let reduction: Pooling2D.Reduction
    /// Keras's `keepdims`: output `[N, 1, 1, C]` instead of `[N, C]`.
    public let keepDims: Bool

    /// A Keras GlobalMaxPooling2D or GlobalAveragePooling2D
    /// (keras/src/layers/pooling/base_global_pooling.py).
    public init(name: String, _ reduction: Pooling2D.Reduction, keepDims: Bool = false) {
        self.reduction = reduction
        self.keepDims = keepDims
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        GlobalPooling2D(name: name, reduction, keepDims: keepDims)
    }

    public override var kind: String { reduction == .max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D" }

    /// `[N, C]`, or `[N, 1, 1, C]` with `keepDims`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        return keepDims ? [s[0], 1, 1, s[3]] : [s[0], s[3]]
    }

    struct Cache {
        var inputShape: [Int]
        var argmax: [Int32]
    }

    /// Max or mean per image and channel of `[N, H, W, C]`; max keeps its argmax.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or with no pixels.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let (n, h, w, c) = x.nhwc
        guard h * w > 0 else {
            throw EngineError.shapeMismatch(op: "\(kind) '\(name)'", expected: "a non-empty feature map", found: "\(x.shape)")
        }
        var argmax = [Int32](repeating: 0, count: reduction == .max ? n * c : 0)
        let outShape = keepDims ? [n, 1, 1, c] : [n, c]
        let y = Tensor.uninitialized(shape: outShape) { out in
            x.scalars.withUnsafeBufferPointer { xp in
                argmax.withUnsafeMutableBufferPointer { am in
                    // Images across the workers; an average's sums in C's vector
                    // adds (EfficientNet's squeeze-excite poolings over 112x112
                    // maps were 10% of its forward pass as a scalar loop).
                    let (outs, xs, ams) = (UncheckedSendable(out), UncheckedSendable(xp), UncheckedSendable(am))
                    Parallel.forEachRange(n) { images in
                        let (out, xp, am) = (outs.value, xs.value, ams.value)
                        for b in images {
                            let o = b * c
                            let base = b * h * w * c
                            for k in 0..<c { out[o + k] = reduction == .max ? xp[base + k] : 0 }
                            if reduction == .max { for k in 0..<c { am[o + k] = Int32(base + k) } }
                            for p in 0..<(h * w) {
                                let i = base + p * c
                                switch reduction {
                                case .max:
                                    for k in 0..<c where xp[i + k] > out[o + k] {
                                        out[o + k] = xp[i + k]
                                        am[o + k] = Int32(i + k)
                                    }
                                case .average:
                                    segkit_add(out.baseAddress! + o, xp.baseAddress! + i, out.baseAddress! + o, c)
                                }
                            }
                            if reduction == .average {
                                let inv = 1 / Float(h * w)
                                for k in 0..<c { out[o + k] *= inv }
                            }
                        }
                    }
                }
            }
        }
        return LayerOutput(y, cache: mode == .training ? Cache(inputShape: x.shape, argmax: argmax) : nil)
    }

    /// Max: dy to each channel's argmax; average: dy / (H·W) to every position.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        let cache = try requireCache(cache, as: Cache.self)
        let (n, h, w, c) = (cache.inputShape[0], cache.inputShape[1], cache.inputShape[2], cache.inputShape[3])
        var dx = Tensor(zeros: cache.inputShape)
        dx.scalars.withUnsafeMutableBufferPointer { d in
            gradOutput.scalars.withUnsafeBufferPointer { dy in
                switch reduction {
                case .max:
                    for o in 0..<(n * c) { d[Int(cache.argmax[o])] += dy[o] }
                case .average:
                    let inv = 1 / Float(h * w)
                    for b in 0..<n {
                        for p in 0..<(h * w) {
                            let i = (b * h * w + p) * c
                            for k in 0..<c { d[i + k] = dy[b * c + k] * inv }
                        }
                    }
                }
            }
        }
        return [dx]
    }
}
