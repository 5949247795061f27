import CKernels

/// Keras's Conv2D: HWIO kernel `(kh, kw, cin/groups, filters)`, optional bias,
/// strides, `same`/`valid` padding, dilation, groups, fused activation.
///
/// Forward is im2col + one `sgemm` per group per chunk of images; a 1x1,
/// stride-1, ungrouped convolution is a single sgemm on the input itself.
/// Backward: dW = patchesᵀ·dZ, dX = col2im(dZ·Wᵀ), db = Σ dZ.
public final class Conv2D: Layer {
    public let filters: Int
    public let kernelSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let dilation: (Int, Int)
    public let groups: Int
    public let activation: Activation
    public let kernel: Parameter
    public let bias: Parameter?

    /// - Parameters:
    ///   - kernel: HWIO values; `kernel.shape[2]` fixes the input channels per group.
    public init(
        name: String, kernel: Tensor, bias: Tensor?, strides: (Int, Int) = (1, 1),
        padding: Padding = .valid, dilation: (Int, Int) = (1, 1), groups: Int = 1,
        activation: Activation = .linear, kernelName: String = "kernel"
    ) throws {
        guard kernel.rank == 4 else {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "a rank-4 HWIO kernel", found: "\(kernel.shape)")
        }
        let filters = kernel.shape[3]
        guard groups >= 1, filters % groups == 0 else {
            throw EngineError.invalidArgument(op: "Conv2D '\(name)'", message: "\(filters) filters do not split into \(groups) groups")
        }
        if let bias, bias.shape != [filters] {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)' bias", expected: "[\(filters)]", found: "\(bias.shape)")
        }
        guard strides.0 >= 1, strides.1 >= 1, dilation.0 >= 1, dilation.1 >= 1 else {
            throw EngineError.invalidArgument(op: "Conv2D '\(name)'", message: "strides and dilation must be ≥ 1")
        }
        guard strides == (1, 1) || dilation == (1, 1) else {
            throw EngineError.invalidArgument(op: "Conv2D '\(name)'", message: "strides > 1 with dilation > 1 is not allowed (as in Keras)")
        }
        self.filters = filters
        self.kernelSize = (kernel.shape[0], kernel.shape[1])
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.activation = activation
        let k = Parameter(name: kernelName, value: kernel)
        let b = bias.map { Parameter(name: "bias", value: $0) }
        self.kernel = k
        self.bias = b
        super.init(name: name, parameters: [k] + (b.map { [$0] } ?? []))
    }

    var inputChannels: Int { kernel.shape[2] * groups }

    /// 1x1, stride 1, no groups: the patch matrix is the input itself.
    var isPointwise: Bool { kernelSize == (1, 1) && strides == (1, 1) && groups == 1 }

    func window(for shape: [Int]) throws -> Window2D {
        let c = shape[3]
        guard c == inputChannels else {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c) (input \(shape))")
        }
        guard let g = Window2D.forward(over: shape, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding) else {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "an input at least as large as the dilated kernel with valid padding", found: "\(shape)")
        }
        return g
    }

    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        if let c = s[3], c != inputChannels {
            throw EngineError.shapeMismatch(op: "Conv2D '\(name)'", expected: "\(inputChannels) input channels", found: "\(c)")
        }
        return Window2D.forwardShape(s, kernel: kernelSize, strides: strides, dilation: dilation, padding: padding, channels: filters)
    }

    struct Cache {
        var input: Tensor
        /// The second part of a concatenated input (`input` then the first), read where it is.
        var concatenated: Tensor? = nil
        var window: Window2D
        var activation: ActivationRecord

        var inputShape: [Int] {
            guard let concatenated else { return input.shape }
            return Array(input.shape.dropLast()) + [input.shape[3] + concatenated.shape[3]]
        }
    }

    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        return output(of: x, window: g, mode: mode) { epilogue in
            ConvolutionKernels.forward(x, window: g, kernel: kernel.value, groups: groups, bias: bias?.value.scalars, epilogue: epilogue)
        }
    }

    public override var foldsConcatenatedInputs: Bool { groups == 1 }

    /// Where the direct loops make this layer's output, which then read both
    /// parts in place (the kernel gradient's loops, which the direct forward's
    /// choice implies, do too): a U-Net decoder's first convolution without its
    /// concatenation's copy of the two tensors.
    public override func forward(concatenationOf parts: [Tensor], mode: ExecutionMode) throws -> LayerOutput? {
        guard groups == 1, parts.count == 2, parts[0].rank == 4, parts[1].rank == 4,
              parts[0].shape.dropLast() == parts[1].shape.dropLast() else { return nil }
        let shape = Array(parts[0].shape.dropLast()) + [parts[0].shape[3] + parts[1].shape[3]]
        let g = try window(for: shape)
        guard ConvolutionKernels.forwardUsesDirectLoops(window: g, kernelShape: kernel.shape, inputChannels: shape[3], groups: 1) else { return nil }
        return output(of: parts[0], concatenatedWith: parts[1], window: g, mode: mode) { epilogue in
            DirectConvolution.forward(parts[0], concatenatedWith: parts[1], window: g, kernel: kernel.value, bias: bias?.value.scalars,
                                      epilogue: epilogue)
        }
    }

    /// The activation applied to what `convolve(epilogue)` makes, and the cache.
    private func output(of x: Tensor, concatenatedWith x2: Tensor? = nil, window g: Window2D, mode: ExecutionMode,
                        convolve: (OutputEpilogue?) -> Tensor) -> LayerOutput {
        // The activation is fused into the convolution's chunks in inference, and
        // in training too when its derivative needs only the output (ReLU,
        // sigmoid, tanh, softmax): one pass over the output fewer.
        let fuseActivation = activation != .linear && (mode == .inference || activation.backwardUsesOutput)
        let z = convolve(fuseActivation ? activationEpilogue(activation) : nil)
        if fuseActivation {
            return LayerOutput(z, cache: mode == .training ? Cache(input: x, concatenated: x2, window: g, activation: ActivationRecord(y: z)) : nil)
        }
        let (y, record) = ActivationRecord.forward(activation, z, mode: mode)
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, concatenated: x2, window: g, activation: record) : nil)
    }

    /// conv(x) + bias + addend, the addend added to each chunk of the output as
    /// it is finished: a linear convolution feeding an Add (a skip connection's
    /// projection) without the Add's own pass over three tensors.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode, adding addend: Tensor) throws -> LayerOutput? {
        guard activation == .linear else { return nil }
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        let cout = filters
        guard addend.shape == [g.batch, g.rows.output, g.cols.output, cout] else { return nil }
        let y = addend.scalars.withUnsafeBufferPointer { a in
            let a = UncheckedSendable(a.baseAddress!)
            return ConvolutionKernels.forward(x, window: g, kernel: kernel.value, groups: groups, bias: bias?.value.scalars) { p, first, pixels in
                segkit_add(p, a.value + first * cout, p, pixels * cout)
            }
        }
        return LayerOutput(y, cache: mode == .training ? Cache(input: x, window: g, activation: ActivationRecord()) : nil)
    }

    public override var isPointwiseProjection: Bool {
        isPointwise && dilation == (1, 1) && activation == .linear
    }

    public override func pointwiseProjection(of inputs: [Tensor], mode: ExecutionMode) throws -> (term: PointwiseProjection, cache: Any?)? {
        guard isPointwiseProjection else { return nil }
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        return (PointwiseProjection(input: x, kernel: kernel.value, bias: bias?.value.scalars),
                mode == .training ? Cache(input: x, window: g, activation: ActivationRecord()) : nil)
    }

    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        let c = try requireCache(cache, as: Cache.self)
        let dz = accumulateParameterGradients(gradOutput, c)
        guard needInputGradients[0] else { return [nil] }
        return [ConvolutionKernels.inputGradient(dz, window: c.window, kernel: kernel.value, groups: groups, inputShape: c.inputShape)]
    }

    /// Where the forward pass read a concatenation's parts, the direct loops
    /// make the input gradient and the first part ends at a whole vector: the
    /// parts' gradients, each written where it is.
    public override func backward(_ gradOutput: Tensor, cache: Any?, toConcatenatedParts needed: [Bool]) throws -> [Tensor?]? {
        let c = try requireCache(cache, as: Cache.self)
        guard let second = c.concatenated, c.input.shape[3] % 16 == 0,
              ConvolutionKernels.inputGradientUsesDirectLoops(window: c.window, kernelShape: kernel.shape, inputChannels: inputChannels,
                                                              groups: groups) else { return nil }
        let dz = accumulateParameterGradients(gradOutput, c)
        guard needed.contains(true) else { return [nil, nil] }
        let (d1, d2) = DirectConvolution.transpose(dz, window: c.window, kernel: kernel.value, intoParts: (c.input.shape, second.shape))
        return [needed[0] ? d1 : nil, needed[1] ? d2 : nil]
    }

    /// Adds dL/dW and dL/db into the parameters that train; returns dL/dz (dy through the activation).
    private func accumulateParameterGradients(_ gradOutput: Tensor, _ c: Cache) -> Tensor {
        if kernel.isTrainable, activation == .relu(), let y = c.activation.y,
           ConvolutionKernels.kernelGradientUsesDirectLoops(window: c.window, kernelShape: kernel.shape, groups: groups) {
            // ReLU's backward pass made by the kernel gradient as it reads dy.
            let summingBias = bias?.isTrainable == true
            let fused = DirectConvolution.kernelGradientThroughReLU(c.input, concatenatedWith: c.concatenated, window: c.window,
                                                                    dy: gradOutput, output: y, kernelShape: kernel.shape,
                                                                    summingBias: summingBias)
            kernel.accumulateGradient(fused.kernel)
            if summingBias { bias!.accumulateGradient(fused.sums!) }
            return fused.dz
        }
        return accumulateConvolutionGradients(gradOutput, activation: activation, record: c.activation, kernel: kernel, bias: bias,
                                              biasSums: .outputGradient) { dz, summing in
            ConvolutionKernels.kernelGradient(c.input, concatenatedWith: c.concatenated, window: c.window, dz: dz,
                                              kernelShape: kernel.shape, groups: groups, summing: summing)
        }
    }
}

/// dL/dz from dL/dy through a convolution layer's activation, with dL/dW and
/// dL/db added to `kernel` and `bias` where they train. `kernelGradient(dz,
/// summing)` is the layer's kernel gradient; for a linear layer it is asked for
/// `biasSums`, Σ dz per channel taken from the rows it reads anyway (no pass of
/// its own over dz), and where it returns none dz is summed here.
func accumulateConvolutionGradients(
    _ dy: Tensor, activation: Activation, record: ActivationRecord, kernel: Parameter, bias: Parameter?,
    biasSums: DirectConvolution.RowSums, kernelGradient: (Tensor, DirectConvolution.RowSums?) -> (kernel: Tensor, sums: Tensor?)
) -> Tensor {
    let biasInKernelGradient = activation == .linear && kernel.isTrainable && bias?.isTrainable == true
    let dz = biasInKernelGradient ? dy : record.backward(activation, dy, bias: bias)
    if kernel.isTrainable {
        let (dw, sums) = kernelGradient(dz, biasInKernelGradient ? biasSums : nil)
        kernel.accumulateGradient(dw)
        if biasInKernelGradient { bias!.accumulateGradient(sums ?? sumRows(dz)) }
    }
    return dz
}

/// Work on a finished chunk of a convolution's output, while it is in cache:
/// the chunk, the index of its first pixel in the output, and its pixel count.
extension Conv2D: AddsResidual {
    var outputChannels: Int { filters }

    func inferenceOutput(_ x: Tensor, kernel: Tensor, bias: [Float], activation: Activation) throws -> Tensor {
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        return ConvolutionKernels.forward(x, window: g, kernel: kernel, groups: groups, bias: bias,
                                          epilogue: activation == .linear ? nil : activationEpilogue(activation))
    }

    func inferenceOutput(_ x: Tensor, kernel: Tensor, bias: [Float], adding addend: Tensor, activation: Activation) throws -> Tensor {
        try expectRank(4, x, layer: self)
        let g = try window(for: x.shape)
        let cout = filters
        let activate = activation == .linear ? nil : activationEpilogue(activation)
        return addend.scalars.withUnsafeBufferPointer { a in
            let addends = UncheckedSendable(a.baseAddress!)
            return ConvolutionKernels.forward(x, window: g, kernel: kernel, groups: groups, bias: bias) { p, first, pixels in
                segkit_add(p, addends.value + first * cout, p, pixels * cout)
                activate?(p, first, pixels)
            }
        }
    }

    func inferenceOutputShape(for shape: [Int]) throws -> [Int] {
        let g = try window(for: shape)
        return [g.batch, g.rows.output, g.cols.output, filters]
    }

    /// `activation` applied to each finished chunk of this layer's output while it is in cache.
    func activationEpilogue(_ activation: Activation) -> OutputEpilogue {
        let cout = filters
        return { p, _, pixels in activation.applySerially(UnsafeMutableBufferPointer(start: p, count: pixels * cout), lastAxis: cout) }
    }
}

typealias OutputEpilogue = (_ chunk: UnsafeMutablePointer<Float>, _ firstPixel: Int, _ pixels: Int) -> Void

/// The three products of a grouped NHWC convolution with an HWIO kernel, shared
/// by Conv2D (forward, its two gradients) and Conv2DTranspose (whose forward is
/// Conv2D's input gradient and whose input gradient is Conv2D's forward).
/// Each is split across the engine's workers by output rows (whole images where
/// workers would otherwise write the same pixel), with one single-threaded
/// sgemm per chunk of rows and group.
enum ConvolutionKernels {
    static func isPointwise(_ g: Window2D, groups: Int) -> Bool {
        g.rows.kernel == 1 && g.cols.kernel == 1 && g.rows.stride == 1 && g.cols.stride == 1
            && g.rows.padBefore == 0 && g.cols.padBefore == 0 && groups == 1
    }

    /// z[n, oy, ox, :] = bias + Σ patches · W, for a window `g` over x. `epilogue`
    /// runs on each finished chunk of output pixels while it is in cache: Conv2D
    /// applies its activation there, or adds the other input of an Add.
    static func forward(_ x: Tensor, window g: Window2D, kernel: Tensor, groups: Int, bias: [Float]? = nil,
                        epilogue: OutputEpilogue? = nil) -> Tensor {
        let cin = x.shape[3], cout = kernel.shape[3]
        // Before Winograd: on ResNet50's 7x7 stage-5 maps the column split ran
        // its 3x3 layers in 12.8 ms a batch of 8, Winograd (128 tiles, a third padding) in 15.1.
        if splitsColumns(outputPixels: g.batch * g.rows.output * g.cols.output, outputChannels: cout, groups: groups) {
            return forwardByColumns(x, window: g, kernel: kernel, bias: bias, epilogue: epilogue)
        }
        if WinogradConvolution.applies(g, kernelShape: kernel.shape, inputChannels: cin, outputChannels: cout, groups: groups) {
            return WinogradConvolution.forward(x, batch: g.batch, rows: g.rows, cols: g.cols, kernel: kernel, bias: bias, epilogue: epilogue)
        }
        if forwardUsesDirectLoops(window: g, kernelShape: kernel.shape, inputChannels: cin, groups: groups) {
            return DirectConvolution.forward(x, window: g, kernel: kernel, bias: bias, epilogue: epilogue)
        }
        return forwardByGemm(x, window: g, kernel: kernel, groups: groups, bias: bias, epilogue: epilogue)
    }

    /// Whether `forward` runs on DirectConvolution's loops (not Winograd's nor sgemm's).
    static func forwardUsesDirectLoops(window g: Window2D, kernelShape: [Int], inputChannels cin: Int, groups: Int) -> Bool {
        let cout = kernelShape[3]
        if splitsColumns(outputPixels: g.batch * g.rows.output * g.cols.output, outputChannels: cout, groups: groups) { return false }
        // A pointwise layer with 32+ input channels is one sgemm on the input
        // itself (no patches): sgemm won there on MobileNetV2's expansions and
        // projections (144→24 at 56x56: 4.2 → 2.6 ms per batch of 8).
        if isPointwise(g, groups: groups) && cin >= 32 && DirectConvolution.forcedPath == nil { return false }
        // A strided kernel of 25+ taps (ResNet's 7x7/2 stem over 3 channels):
        // im2col's contiguous 21-float window rows and sgemm beat the direct
        // loops' strided reads, 22 vs 34 ms per batch of 8 at 224x224.
        if g.rows.kernel * g.cols.kernel >= 25 && (g.rows.stride > 1 || g.cols.stride > 1) && DirectConvolution.forcedPath == nil {
            return false
        }
        return !WinogradConvolution.applies(g, kernelShape: kernelShape, inputChannels: cin, outputChannels: cout, groups: groups)
            && DirectConvolution.isPreferred(inputChannels: cin / groups, outputChannels: cout, groups: groups, rowWidth: g.cols.output)
    }

    /// Whether `kernelGradient` runs on DirectConvolution's loops (not sgemm's).
    static func kernelGradientUsesDirectLoops(window g: Window2D, kernelShape: [Int], groups: Int) -> Bool {
        DirectConvolution.isPreferred(inputChannels: kernelShape[2], outputChannels: kernelShape[3], groups: groups,
                                      rowWidth: g.cols.output, forKernelGradient: true)
    }

    static func forwardByGemm(_ x: Tensor, window g: Window2D, kernel: Tensor, groups: Int, bias: [Float]?,
                              epilogue: OutputEpilogue?) -> Tensor {
        let cin = x.shape[3], cout = kernel.shape[3]
        let pointwise = isPointwise(g, groups: groups)
        // Pointwise: each chunk of the output starts as the bias and sgemm adds
        // the products to it (beta 1), so no pass zeroes it and none adds the bias.
        let epilogueAfterGemm: OutputEpilogue? = bias == nil || pointwise ? epilogue : { p, first, pixels in
            bias!.withUnsafeBufferPointer { b in
                for r in 0..<pixels { VectorMath.axpy(1, b.baseAddress!, p + r * cout, cout) }
            }
            epilogue?(p, first, pixels)
        }
        let cinG = cin / groups, coutG = cout / groups
        let width = g.rows.kernel * g.cols.kernel * cinG
        let m = g.batch * g.rows.output * g.cols.output
        return Tensor.uninitialized(shape: [g.batch, g.rows.output, g.cols.output, cout]) { out in
            let o = UncheckedSendable(out.baseAddress!)
            x.scalars.withUnsafeBufferPointer { xp in
                kernel.scalars.withUnsafeBufferPointer { wp in
                    Parallel.forEachRange(m, minimumPerWorker: 256) { rows in
                        if pointwise {
                            let chunk = Im2col.rowsPerChunk(width: cout)
                            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: chunk) {
                                let count = min(chunk, rows.upperBound - start)
                                let c = o.value + start * cout
                                if let bias {
                                    bias.withUnsafeBufferPointer { b in
                                        for r in 0..<count { (c + r * cout).update(from: b.baseAddress!, count: cout) }
                                    }
                                }
                                BLAS.sgemm(transA: false, transB: false, m: count, n: cout, k: cin,
                                           a: xp.baseAddress! + start * cin, lda: cin, b: wp.baseAddress!, ldb: cout,
                                           beta: bias == nil ? 0 : 1, c: c, ldc: cout)
                                epilogueAfterGemm?(c, start, count)
                            }
                            return
                        }
                        Im2col.forEachChunk(xp.baseAddress!, channels: cin, window: g, rows: rows, groups: groups) { part, group, patches in
                            BLAS.sgemm(transA: false, transB: false, m: part.count, n: coutG, k: width,
                                       a: patches, lda: width, b: wp.baseAddress! + group * coutG, ldb: cout, beta: 0,
                                       c: o.value + part.lowerBound * cout + group * coutG, ldc: cout)
                        } chunkDone: { part in
                            epilogueAfterGemm?(o.value + part.lowerBound * cout, part.lowerBound, part.count)
                        }
                    }
                }
            }
        }
    }

    /// dL/dW = Σ over output pixels of patchesᵀ · dz, in HWIO layout (each worker
    /// sums its rows into its own buffer, then the buffers are added in order, so
    /// the result is the same on every run with the same worker count), and, where the direct loops can take them from the
    /// rows they read anyway, the per-channel sums of dz or x (a bias gradient,
    /// else nil: the caller sums).
    /// (`x2`: the second part of a concatenated input, which the direct loops
    /// read in place; only given where they make the kernel gradient.)
    static func kernelGradient(_ x: Tensor, concatenatedWith x2: Tensor? = nil, window g: Window2D, dz: Tensor, kernelShape: [Int],
                               groups: Int, summing: DirectConvolution.RowSums?) -> (kernel: Tensor, sums: Tensor?) {
        if kernelGradientUsesDirectLoops(window: g, kernelShape: kernelShape, groups: groups) {
            return DirectConvolution.kernelGradient(x, concatenatedWith: x2, window: g, dy: dz, kernelShape: kernelShape, summing: summing)
        }
        precondition(x2 == nil, "a concatenated input's kernel gradient is the direct loops'")
        return (kernelGradientByGemm(x, window: g, dz: dz, kernelShape: kernelShape, groups: groups), nil)
    }

    static func kernelGradientByGemm(_ x: Tensor, window g: Window2D, dz: Tensor, kernelShape: [Int], groups: Int) -> Tensor {
        let cin = x.shape[3], cout = kernelShape[3]
        let cinG = cin / groups, coutG = cout / groups
        let width = g.rows.kernel * g.cols.kernel * cinG
        let m = g.batch * g.rows.output * g.cols.output
        let pointwise = isPointwise(g, groups: groups)
        let size = Tensor.elementCount(kernelShape)
        let parts = min(Parallel.maximumParts, max(1, m / 256))
        var partials = [Float](repeating: 0, count: parts * size)
        x.scalars.withUnsafeBufferPointer { xp in
            dz.scalars.withUnsafeBufferPointer { dzp in
                partials.withUnsafeMutableBufferPointer { pp in
                    let partialBase = UncheckedSendable(pp.baseAddress!)
                    Parallel.forEachRange(parts) { workers in
                        for worker in workers {
                            let rows = (m * worker / parts)..<(m * (worker + 1) / parts)
                            let dwp = partialBase.value + worker * size
                            if pointwise {
                                BLAS.sgemm(transA: true, transB: false, m: cin, n: cout, k: rows.count,
                                           a: xp.baseAddress! + rows.lowerBound * cin, lda: cin,
                                           b: dzp.baseAddress! + rows.lowerBound * cout, ldb: cout,
                                           beta: 0, c: dwp, ldc: cout)
                                continue
                            }
                            Im2col.forEachChunk(xp.baseAddress!, channels: cin, window: g, rows: rows, groups: groups) { part, group, patches in
                                BLAS.sgemm(transA: true, transB: false, m: width, n: coutG, k: part.count,
                                           a: patches, lda: width,
                                           b: dzp.baseAddress! + part.lowerBound * cout + group * coutG, ldb: cout,
                                           beta: 1, c: dwp + group * coutG, ldc: cout)
                            }
                        }
                    }
                }
            }
        }
        return Tensor(uncheckedShape: kernelShape, scalars: sumInOrder(partials, parts: parts))
    }

    /// Whether `inputGradient` runs on DirectConvolution's loops (not Winograd's nor sgemm's).
    static func inputGradientUsesDirectLoops(window g: Window2D, kernelShape: [Int], inputChannels cin: Int, groups: Int) -> Bool {
        let cout = kernelShape[3]
        return !WinogradConvolution.applies(g, kernelShape: kernelShape, inputChannels: cout, outputChannels: cin, groups: groups)
            && DirectConvolution.isPreferred(inputChannels: cout, outputChannels: cin / groups, groups: groups, rowWidth: g.cols.input)
    }

    /// dL/dx = col2im(dz · Wᵀ) (+ bias, for Conv2DTranspose) onto an input of
    /// `inputShape`; workers take whole images.
    static func inputGradient(_ dz: Tensor, window g: Window2D, kernel: Tensor, groups: Int, bias: [Float]? = nil,
                              inputShape: [Int]) -> Tensor {
        let cin = inputShape[3], cout = kernel.shape[3]
        if WinogradConvolution.applies(g, kernelShape: kernel.shape, inputChannels: cout, outputChannels: cin, groups: groups) {
            return WinogradConvolution.inputGradient(dz, window: g, kernel: kernel, bias: bias)
        }
        if inputGradientUsesDirectLoops(window: g, kernelShape: kernel.shape, inputChannels: cin, groups: groups) {
            return DirectConvolution.transpose(dz, window: g, kernel: kernel, bias: bias, outputShape: inputShape)
        }
        var dx = inputGradientByGemm(dz, window: g, kernel: kernel, groups: groups, inputShape: inputShape)
        if let bias { addBias(Tensor(uncheckedShape: [bias.count], scalars: bias), to: &dx) }
        return dx
    }

    static func inputGradientByGemm(_ dz: Tensor, window g: Window2D, kernel: Tensor, groups: Int, inputShape: [Int]) -> Tensor {
        let cin = inputShape[3], cout = kernel.shape[3]
        let cinG = cin / groups, coutG = cout / groups
        let width = g.rows.kernel * g.cols.kernel * cinG
        let perImage = g.rows.output * g.cols.output
        if isPointwise(g, groups: groups) {
            return Tensor.uninitialized(shape: inputShape) { dx in
                let d = UncheckedSendable(dx.baseAddress!)
                dz.scalars.withUnsafeBufferPointer { dzp in
                    kernel.scalars.withUnsafeBufferPointer { wp in
                        Parallel.forEachRange(g.batch * perImage, minimumPerWorker: 256) { rows in
                            BLAS.sgemm(transA: false, transB: true, m: rows.count, n: cin, k: cout,
                                       a: dzp.baseAddress! + rows.lowerBound * cout, lda: cout, b: wp.baseAddress!, ldb: cout,
                                       beta: 0, c: d.value + rows.lowerBound * cin, ldc: cin)
                        }
                    }
                }
            }
        }
        var dx = Tensor(zeros: inputShape)
        dz.scalars.withUnsafeBufferPointer { dzp in
            kernel.scalars.withUnsafeBufferPointer { wp in
                dx.scalars.withUnsafeMutableBufferPointer { dxp in
                    let d = UncheckedSendable(dxp.baseAddress!)
                    Parallel.forEachRange(g.batch) { images in
                        let rows = (images.lowerBound * perImage)..<(images.upperBound * perImage)
                        let chunk = Im2col.rowsPerChunk(width: width)
                        var cols = [Float](repeating: 0, count: min(chunk, rows.count) * width)
                        cols.withUnsafeMutableBufferPointer { cp in
                            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: chunk) {
                                let part = start..<min(start + chunk, rows.upperBound)
                                for group in 0..<groups {
                                    BLAS.sgemm(transA: false, transB: true, m: part.count, n: width, k: coutG,
                                               a: dzp.baseAddress! + start * cout + group * coutG, lda: cout,
                                               b: wp.baseAddress! + group * coutG, ldb: cout,
                                               beta: 0, c: cp.baseAddress!, ldc: width)
                                    Im2col.scatter(cp.baseAddress!, channels: cin, window: g, rows: part,
                                                   c0: group * cinG, cCount: cinG, into: d.value)
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// Adds a per-channel bias to every position (the last axis), rows split across workers.
func addBias(_ bias: Tensor, to z: inout Tensor) {
    let c = bias.count
    bias.scalars.withUnsafeBufferPointer { b in
        z.scalars.withUnsafeMutableBufferPointer { v in
            let (bb, vv) = (UncheckedSendable(b), UncheckedSendable(v))
            Parallel.forEachRange(v.count / c, minimumPerWorker: 4096) { rows in
                for r in rows {
                    let row = r * c
                    for k in 0..<c { vv.value[row + k] += bb.value[k] }
                }
            }
        }
    }
}

/// Per-channel sums over `rows` rows of `channels` values: `accumulate(rows,
/// partial)` adds one worker range's sums into its partial (of `channels`
/// floats), and the partials are added in order, for the same result on every run.
func channelSums(rows: Int, channels c: Int, _ accumulate: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
    let parts = min(Parallel.maximumParts, max(1, rows / 4096))
    var partials = [Float](repeating: 0, count: parts * c)
    partials.withUnsafeMutableBufferPointer { o in
        let oo = UncheckedSendable(o.baseAddress!)
        Parallel.forEachRange(parts) { workers in
            for w in workers { accumulate((rows * w / parts)..<(rows * (w + 1) / parts), oo.value + w * c) }
        }
    }
    return Tensor(uncheckedShape: [c], scalars: sumInOrder(partials, parts: parts))
}

/// Σ over all positions, per channel (the bias gradient).
func sumRows(_ dz: Tensor) -> Tensor {
    let c = dz.shape.last!
    return dz.scalars.withUnsafeBufferPointer { v in
        let vv = UncheckedSendable(v.baseAddress!)
        return channelSums(rows: dz.count / c, channels: c) { r, partial in
            segkit_sum_rows(vv.value + r.lowerBound * c, r.count, Int32(c), partial)
        }
    }
}

/// dz = dy where y > 0, else 0 (ReLU's gradient from its output), and Σ dz per
/// channel (the bias gradient), in one pass over dy.
func reluBackwardSummingRows(_ dy: Tensor, output y: Tensor) -> (Tensor, Tensor) {
    let c = dy.shape.last!
    var sums = Tensor(zeros: [c])
    let dz = Tensor.uninitialized(shape: dy.shape) { out in
        dy.scalars.withUnsafeBufferPointer { d in
            y.scalars.withUnsafeBufferPointer { yp in
                let (dd, yy, zz) = (UncheckedSendable(d.baseAddress!), UncheckedSendable(yp.baseAddress!), UncheckedSendable(out.baseAddress!))
                sums = channelSums(rows: dy.count / c, channels: c) { r, partial in
                    let offset = r.lowerBound * c
                    segkit_relu_backward_sum_rows(dd.value + offset, yy.value + offset, zz.value + offset, r.count, Int32(c), partial)
                }
            }
        }
    }
    return (dz, sums)
}

/// Σ of the `parts` equally long partial results laid end to end in
/// `partials`, added in their order (so the same on every run), the elements
/// split across the workers.
func sumInOrder(_ partials: [Float], parts: Int) -> [Float] {
    let size = partials.count / parts
    var total = Array(partials[0..<size])
    guard parts > 1 else { return total }
    total.withUnsafeMutableBufferPointer { t in
        partials.withUnsafeBufferPointer { p in
            let (tt, pp) = (UncheckedSendable(t.baseAddress!), UncheckedSendable(p.baseAddress!))
            Parallel.forEachRange(size, minimumPerWorker: 1 << 14) { r in
                for part in 1..<parts {
                    segkit_add(tt.value + r.lowerBound, pp.value + part * size + r.lowerBound, tt.value + r.lowerBound, r.count)
                }
            }
        }
    }
    return total
}
