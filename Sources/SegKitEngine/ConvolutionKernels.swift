import CKernels

/// Work on a finished chunk of a convolution's output, while it is in cache:
/// the chunk, the index of its first pixel in the output, and its pixel count.
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
