/// Keras's DepthwiseConv2D: kernel `(kh, kw, in, depth_multiplier)`; output
/// channel `c·dm + m` is input channel c convolved with kernel slice (c, m).
///
/// Each output reads only kh·kw values per channel, too little work for a
/// matrix product to pay off, so forward and backward are direct loops whose
/// innermost loop runs over contiguous channels.
public final class DepthwiseConv2D: Layer {
    public let depthMultiplier: Int
    public let kernelSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let dilation: (Int, Int)
    public let activation: Activation
    public let kernel: Parameter
    public let bias: Parameter?

    public init(
        name: String, kernel: Tensor, bias: Tensor?, strides: (Int, Int) = (1, 1),
        padding: Padding = .valid, dilation: (Int, Int) = (1, 1), activation: Activation = .linear
    ) throws {
        guard kernel.rank == 4 else {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "a rank-4 kernel (kh, kw, in, multiplier)", found: "\(kernel.shape)")
        }
        let outChannels = kernel.shape[2] * kernel.shape[3]
        if let bias, bias.shape != [outChannels] {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)' bias", expected: "[\(outChannels)]", found: "\(bias.shape)")
        }
        guard strides.0 >= 1, strides.1 >= 1, dilation.0 >= 1, dilation.1 >= 1 else {
            throw EngineError.invalidArgument(op: "DepthwiseConv2D '\(name)'", message: "strides and dilation must be ≥ 1")
        }
        let k = Parameter(name: "depthwise_kernel", value: kernel)
        let b = bias.map { Parameter(name: "bias", value: $0) }
        self.depthMultiplier = kernel.shape[3]
        self.kernelSize = (kernel.shape[0], kernel.shape[1])
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.activation = activation
        self.kernel = k
        self.bias = b
        super.init(name: name, parameters: [k] + (b.map { [$0] } ?? []))
    }

    var inputChannels: Int { kernel.shape[2] }

    func window(for x: Tensor) throws -> Window2D {
        let c = x.nhwc.c
        guard c == inputChannels else {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c) (input \(x.shape))")
        }
        guard let g = Window2D.forward(over: x.shape, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding) else {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "an input at least as large as the dilated kernel", found: "\(x.shape)")
        }
        return g
    }

    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        if let c = s[3], c != inputChannels {
            throw EngineError.shapeMismatch(op: "DepthwiseConv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c)")
        }
        return Window2D.forwardShape(s, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding,
                                     channels: inputChannels * depthMultiplier)
    }

    struct Cache {
        var input: Tensor
        var window: Window2D
        var activation: ActivationRecord
    }

    /// Calls `body(outputPixel, inputPixel, tap)` for every in-range (output, tap)
    /// pair: offsets in pixels, so the caller scales by its channel counts.
    private func forEachTap(_ g: Window2D, _ body: (Int, Int, Int) -> Void) {
        let (ih, iw, oh, ow) = (g.rows.input, g.cols.input, g.rows.output, g.cols.output)
        for n in 0..<g.batch {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let outPixel = (n * oh + oy) * ow + ox
                    for ky in 0..<g.rows.kernel {
                        let iy = g.rows.source(oy, ky)
                        guard iy >= 0 && iy < ih else { continue }
                        for kx in 0..<g.cols.kernel {
                            let ix = g.cols.source(ox, kx)
                            guard ix >= 0 && ix < iw else { continue }
                            body(outPixel, (n * ih + iy) * iw + ix, ky * g.cols.kernel + kx)
                        }
                    }
                }
            }
        }
    }

    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x)
        let (cin, dm) = (inputChannels, depthMultiplier)
        let cout = cin * dm
        var z = Tensor(zeros: [g.batch, g.rows.output, g.cols.output, cout])
        x.scalars.withUnsafeBufferPointer { xp in
            kernel.value.scalars.withUnsafeBufferPointer { wp in
                z.scalars.withUnsafeMutableBufferPointer { zp in
                    forEachTap(g) { o, i, tap in
                        let out = zp.baseAddress! + o * cout, inp = xp.baseAddress! + i * cin
                        let w = wp.baseAddress! + tap * cout
                        for c in 0..<cin {
                            for m in 0..<dm { out[c * dm + m] += inp[c] * w[c * dm + m] }
                        }
                    }
                }
            }
        }
        if let bias { addBias(bias.value, to: &z) }
        let (y, record) = ActivationRecord.forward(activation, z, mode: mode)
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, window: g, activation: record) : nil)
    }

    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let c = try requireCache(cache, as: Cache.self)
        let dz = c.activation.backward(activation, gradOutput, bias: bias)
        let (cin, dm) = (inputChannels, depthMultiplier)
        let cout = cin * dm
        if kernel.isTrainable {
            var dw = Tensor(zeros: kernel.shape)
            c.input.scalars.withUnsafeBufferPointer { xp in
                dz.scalars.withUnsafeBufferPointer { dzp in
                    dw.scalars.withUnsafeMutableBufferPointer { dwp in
                        forEachTap(c.window) { o, i, tap in
                            let d = dzp.baseAddress! + o * cout, inp = xp.baseAddress! + i * cin
                            let w = dwp.baseAddress! + tap * cout
                            for ch in 0..<cin {
                                for m in 0..<dm { w[ch * dm + m] += inp[ch] * d[ch * dm + m] }
                            }
                        }
                    }
                }
            }
            kernel.accumulateGradient(dw)
        }
        guard needInputGradients[0] else { return [nil] }
        var dx = Tensor(zeros: c.input.shape)
        dz.scalars.withUnsafeBufferPointer { dzp in
            kernel.value.scalars.withUnsafeBufferPointer { wp in
                dx.scalars.withUnsafeMutableBufferPointer { dxp in
                    forEachTap(c.window) { o, i, tap in
                        let d = dzp.baseAddress! + o * cout, out = dxp.baseAddress! + i * cin
                        let w = wp.baseAddress! + tap * cout
                        for ch in 0..<cin {
                            var sum: Float = 0
                            for m in 0..<dm { sum += d[ch * dm + m] * w[ch * dm + m] }
                            out[ch] += sum
                        }
                    }
                }
            }
        }
        return [dx]
    }
}
