import Testing
@testable import SegKitEngine

/// The two ways the engine convolves — CKernels' direct loops and im2col +
/// sgemm — must agree with the definition and with each other on every shape
/// either may be given, whichever one `DirectConvolution.isPreferred` picks.
@Suite struct DirectConvolutionTests {
    /// Channel counts on both sides of every tile width the C kernel switches
    /// between (16-channel vectors, up to 4 per tile, then more blocks), and
    /// output widths that leave every pixel tail.
    static let channels = [1, 3, 11, 16, 17, 32, 47, 64, 65, 80]

    @Test func directForwardMatchesTheDefinitionForEveryTileShape() throws {
        var data = TestData(seed: 21)
        for (i, cout) in Self.channels.enumerated() {
            let cin = Self.channels[(i * 3) % Self.channels.count]
            let dilated = i % 4 == 3
            let strides = dilated ? (1, 1) : (data.int(1...2), data.int(1...3))
            let dilation = dilated ? (2, 3) : (1, 1)
            let same = i % 2 == 0
            let x = data.normal([2, data.int(5...9), data.int(13...37), cin])
            let w = data.normal([data.int(1...3), data.int(1...3), cin, cout])
            let b = i % 3 == 0 ? nil : data.normal([cout])
            let g = try #require(Window2D.forward(over: x.shape, kernel: (w.shape[0], w.shape[1]), strides: strides,
                                                  dilation: dilation, padding: same ? .same : .valid))
            let y = DirectConvolution.forward(x, window: g, kernel: w, bias: b?.scalars, epilogue: nil)
            let ref = NaiveReference.conv2D(x, kernel: w, bias: b, strides: strides, same: same, dilation: dilation, groups: 1)
            #expect(maxDifference(y, ref) < 1e-3, "cin \(cin) cout \(cout) k \(w.shape) s \(strides) d \(dilation) same \(same)")
        }
    }

    @Test func directTransposeMatchesTheGemmAndCol2imPath() throws {
        var data = TestData(seed: 22)
        for (i, cx) in Self.channels.enumerated() {
            let cdy = Self.channels[(i * 7 + 2) % Self.channels.count]
            let dilated = i % 5 == 4
            let strides = dilated ? (1, 1) : (data.int(1...3), data.int(1...3))
            let dilation = dilated ? (2, 2) : (1, 1)
            // The convolution being transposed maps cx channels to cdy.
            let inputShape = [2, data.int(5...12), data.int(9...30), cx]
            let w = data.normal([data.int(1...4), data.int(1...4), cx, cdy])
            guard let g = Window2D.forward(over: inputShape, kernel: (w.shape[0], w.shape[1]), strides: strides,
                                           dilation: dilation, padding: i % 2 == 0 ? .same : .valid) else { continue }
            let dy = data.normal([2, g.rows.output, g.cols.output, cdy])
            let b = data.normal([cx])
            let direct = DirectConvolution.transpose(dy, window: g, kernel: w, bias: b.scalars, outputShape: inputShape)
            var gemm = ConvolutionKernels.inputGradientByGemm(dy, window: g, kernel: w, groups: 1, inputShape: inputShape)
            addBias(b, to: &gemm)
            #expect(maxDifference(direct, gemm) < 1e-3, "cx \(cx) cdy \(cdy) k \(w.shape) s \(strides) d \(dilation) window \(g)")
        }
    }

    @Test func directKernelGradientMatchesTheGemmPath() throws {
        var data = TestData(seed: 24)
        for (i, cout) in Self.channels.enumerated() {
            let cin = Self.channels[(i * 3 + 1) % Self.channels.count]
            let dilated = i % 4 == 2
            let strides = dilated ? (1, 1) : (data.int(1...3), data.int(1...2))
            let dilation = dilated ? (3, 2) : (1, 1)
            let x = data.normal([2, data.int(5...9), data.int(7...29), cin])
            let shape = [data.int(1...3), data.int(1...4), cin, cout]
            guard let g = Window2D.forward(over: x.shape, kernel: (shape[0], shape[1]), strides: strides,
                                           dilation: dilation, padding: i % 2 == 0 ? .same : .valid) else { continue }
            let dy = data.normal([2, g.rows.output, g.cols.output, cout])
            let gemm = ConvolutionKernels.kernelGradientByGemm(x, window: g, dz: dy, kernelShape: shape, groups: 1)
            let tolerance = 1e-3 * Float(g.batch * g.rows.output * g.cols.output).squareRoot()
            let direct = DirectConvolution.kernelGradient(x, window: g, dy: dy, kernelShape: shape)
            #expect(direct.sums == nil && maxDifference(direct.kernel, gemm) < tolerance,
                    "cin \(cin) cout \(cout) k \(shape) s \(strides) d \(dilation) window \(g)")
            // The bias gradients taken on the way: Σ dy always; Σ x when every input row is read.
            let summingDy = DirectConvolution.kernelGradient(x, window: g, dy: dy, kernelShape: shape, summing: .outputGradient)
            #expect(summingDy.kernel == direct.kernel)
            #expect(maxDifference(try #require(summingDy.sums), sumRows(dy)) < tolerance, "Σ dy, window \(g)")
            let summingX = DirectConvolution.kernelGradient(x, window: g, dy: dy, kernelShape: shape, summing: .input)
            #expect(summingX.kernel == direct.kernel)
            if g.rows.readsEveryInput {
                #expect(maxDifference(try #require(summingX.sums), sumRows(x)) < tolerance, "Σ x, window \(g)")
            } else {
                #expect(summingX.sums == nil, "window \(g) leaves input rows unread")
            }
        }
    }

    @Test func kernelGradientThroughAReLUMatchesMaskingThenTheGemmPath() throws {
        var data = TestData(seed: 26)
        for (i, cout) in Self.channels.enumerated() {
            let cin = Self.channels[(i * 7 + 3) % Self.channels.count]
            let strides = (data.int(1...2), data.int(1...3))
            let x = data.normal([2, data.int(5...9), data.int(7...29), cin])
            let shape = [data.int(1...3), data.int(1...3), cin, cout]
            guard let g = Window2D.forward(over: x.shape, kernel: (shape[0], shape[1]), strides: strides,
                                           padding: i % 2 == 0 ? .same : .valid) else { continue }
            let dy = data.normal([2, g.rows.output, g.cols.output, cout])
            let y = data.normal(dy.shape)   // about half of it ≤ 0: the ReLU's output, zeros where it cut
            var masked = dy
            for j in 0..<masked.count where y.scalars[j] <= 0 { masked.scalars[j] = 0 }
            let fused = DirectConvolution.kernelGradientThroughReLU(x, window: g, dy: dy, output: y, kernelShape: shape,
                                                                     summingBias: i % 3 != 0)
            let tolerance = 1e-3 * Float(g.batch * g.rows.output * g.cols.output).squareRoot()
            #expect(fused.dz == masked, "cin \(cin) cout \(cout) window \(g)")
            let gemm = ConvolutionKernels.kernelGradientByGemm(x, window: g, dz: masked, kernelShape: shape, groups: 1)
            #expect(maxDifference(fused.kernel, gemm) < tolerance, "cin \(cin) cout \(cout) k \(shape) window \(g)")
            if i % 3 != 0 {
                #expect(maxDifference(try #require(fused.sums), sumRows(masked)) < tolerance)
            } else {
                #expect(fused.sums == nil)
            }
        }
    }

    @Test func bothTransposeGradientsInOnePassMatchTheSeparateGemmPaths() throws {
        var data = TestData(seed: 27)
        for (i, cg) in Self.channels.enumerated() {
            let cx = [1, 3, 11, 16, 5][i % 5]
            let dilated = i % 4 == 3
            let strides = dilated ? (1, 1) : (data.int(1...3), data.int(1...3))
            let dilation = dilated ? (2, 2) : (1, 1)
            // dz: the transposed convolution's output gradient, the convolution's input.
            let dz = data.normal([2, data.int(5...12), data.int(9...30), cg])
            let kernel = data.normal([data.int(1...4), data.int(1...4), cg, cx])
            guard let g = Window2D.forward(over: dz.shape, kernel: (kernel.shape[0], kernel.shape[1]), strides: strides,
                                           dilation: dilation, padding: i % 2 == 0 ? .same : .valid) else { continue }
            let x = data.normal([2, g.rows.output, g.cols.output, cx])
            let both = DirectConvolution.transposeGradients(dz, window: g, input: x, kernel: kernel, summingBias: true)
            let tolerance = 1e-3 * Float(g.batch * g.rows.output * g.cols.output).squareRoot()
            let dw = ConvolutionKernels.kernelGradientByGemm(dz, window: g, dz: x, kernelShape: kernel.shape, groups: 1)
            let dx = ConvolutionKernels.forwardByGemm(dz, window: g, kernel: kernel, groups: 1, bias: nil, epilogue: nil)
            let context = "cg \(cg) cx \(cx) k \(kernel.shape) s \(strides) d \(dilation) window \(g)"
            #expect(maxDifference(both.kernel, dw) < tolerance, "dW, \(context)")
            #expect(both.inputGradient.shape == x.shape && maxDifference(both.inputGradient, dx) < 1e-3, "dx, \(context)")
            if g.rows.readsEveryInput {
                #expect(maxDifference(try #require(both.sums), sumRows(dz)) < tolerance, "Σ dz, \(context)")
            } else {
                #expect(both.sums == nil, "\(context)")
            }
        }
    }

    @Test func aWindowReadsEveryInputRowUnlessItsStrideOrValidPaddingSkipsSome() throws {
        #expect(try #require(WindowAxis.forward(input: 128, kernel: 3, stride: 2, padding: .same)).readsEveryInput)
        #expect(try #require(WindowAxis.forward(input: 9, kernel: 1, stride: 1, padding: .valid)).readsEveryInput)
        #expect(try #require(WindowAxis.forward(input: 9, kernel: 2, stride: 3, padding: .same)).readsEveryInput == false)
        #expect(try #require(WindowAxis.forward(input: 10, kernel: 3, stride: 2, padding: .valid)).readsEveryInput == false)
    }

    @Test func directTransposeFoldsAPointwiseProjectionOfASkipIntoItsOutput() throws {
        var data = TestData(seed: 25)
        for (i, cx) in Self.channels.enumerated() {
            let (cdy, cskip) = (Self.channels[(i * 7 + 2) % Self.channels.count], Self.channels[(i * 3 + 5) % Self.channels.count])
            let strides = (data.int(1...3), data.int(1...3))
            let inputShape = [2, data.int(5...12), data.int(9...30), cx]
            let w = data.normal([data.int(1...4), data.int(1...4), cx, cdy])
            guard let g = Window2D.forward(over: inputShape, kernel: (w.shape[0], w.shape[1]), strides: strides,
                                           padding: i % 2 == 0 ? .same : .valid) else { continue }
            let dy = data.normal([2, g.rows.output, g.cols.output, cdy])
            let skip = data.normal([2, inputShape[1], inputShape[2], cskip])
            let projection = PointwiseProjection(input: skip, kernel: data.normal([1, 1, cskip, cx]), bias: nil)
            let b = data.normal([cx])
            let folded = DirectConvolution.transpose(dy, window: g, kernel: w, bias: b.scalars, outputShape: inputShape, plus: projection)
            var reference = DirectConvolution.transpose(dy, window: g, kernel: w, bias: b.scalars, outputShape: inputShape)
            reference.add(NaiveReference.conv2D(skip, kernel: projection.kernel, bias: nil, strides: (1, 1), same: true,
                                                dilation: (1, 1), groups: 1))
            #expect(maxDifference(folded, reference) < 1e-3, "cx \(cx) cdy \(cdy) cskip \(cskip) k \(w.shape) s \(strides) window \(g)")
        }
    }

    @Test func gemmForwardStillMatchesTheDefinitionOnWideLayers() throws {
        var data = TestData(seed: 23)
        for (cin, cout) in [(32, 40), (24, 64), (48, 17)] {
            let x = data.normal([2, 9, 11, cin])
            let w = data.normal([3, 3, cin, cout], scale: 0.2)
            let b = data.normal([cout])
            let g = try #require(Window2D.forward(over: x.shape, kernel: (3, 3), strides: (2, 1), padding: .same))
            let y = ConvolutionKernels.forwardByGemm(x, window: g, kernel: w, groups: 1, bias: b.scalars, epilogue: nil)
            let ref = NaiveReference.conv2D(x, kernel: w, bias: b, strides: (2, 1), same: true, dilation: (1, 1), groups: 1)
            #expect(maxDifference(y, ref) < 1e-3, "cin \(cin) cout \(cout)")
        }
    }
}
