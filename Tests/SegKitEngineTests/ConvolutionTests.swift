import Foundation
import Testing
@testable import SegKitEngine

@Suite struct Conv2DTests {
    @Test func sameRulePutsTheExtraPaddingAtTheBottomAndRight() throws {
        // 4x4 ramp, 3x3 ones, stride 2: total padding 1, all of it after (TF/Keras).
        let x = tensor([1, 4, 4, 1], (0..<16).map(Float.init))
        let conv = try Conv2D(name: "c", kernel: Tensor(repeating: 1, shape: [3, 3, 1, 1]), bias: nil,
                              strides: (2, 2), padding: .same)
        let y = try conv.forward([x], mode: .inference).output
        #expect(y.shape == [1, 2, 2, 1])
        #expect(y.scalars == [45, 39, 66, 50])
    }

    @Test func forwardMatchesTheDirectDefinitionOverRandomConfigurations() throws {
        var data = TestData(seed: 7)
        for _ in 0..<60 {
            let groups = data.int(1...2)
            let cin = groups * data.int(1...3), cout = groups * data.int(1...3)
            let k = (data.int(1...3), data.int(1...3))
            let dilated = data.int(0...2) == 0
            let strides = dilated ? (1, 1) : (data.int(1...3), data.int(1...3))
            let dilation = dilated ? (2, data.int(1...2)) : (1, 1)
            let same = data.bool()
            let x = data.normal([data.int(1...2), data.int(5...9), data.int(5...9), cin])
            let w = data.normal([k.0, k.1, cin / groups, cout])
            let b = data.bool() ? data.normal([cout]) : nil
            let conv = try Conv2D(name: "c", kernel: w, bias: b, strides: strides, padding: same ? .same : .valid,
                                  dilation: dilation, groups: groups)
            let y = try conv.forward([x], mode: .inference).output
            let ref = NaiveReference.conv2D(x, kernel: w, bias: b, strides: strides, same: same, dilation: dilation, groups: groups)
            #expect(maxDifference(y, ref) < 1e-4, "k \(k) s \(strides) d \(dilation) g \(groups) same \(same)")
        }
    }

    @Test func forwardWithFusedBiasAndActivationMatchesTheDirectDefinition() throws {
        // From one input channel to many, so patches from 3 to 144 values wide.
        var data = TestData(seed: 9)
        for cin in [1, 3, 4, 8, 16] {
            for same in [true, false] {
                let k = data.int(1...3), s = data.int(1...2)
                let x = data.normal([2, data.int(5...9), data.int(5...9), cin])
                let w = data.normal([k, 3, cin, 5])
                let b = data.normal([5])
                let conv = try Conv2D(name: "c", kernel: w, bias: b, strides: (s, 1), padding: same ? .same : .valid, activation: .swish)
                let y = try conv.forward([x], mode: .inference).output
                var ref = NaiveReference.conv2D(x, kernel: w, bias: b, strides: (s, 1), same: same, dilation: (1, 1), groups: 1)
                ref.scalars = ref.scalars.map { $0 / (1 + Foundation.exp(-$0)) }
                #expect(maxDifference(y, ref) < 1e-4, "cin \(cin) k \(k) s \(s) same \(same): patch width \(k * 3 * cin)")
            }
        }
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 11)
        for trial in 0..<24 {
            let groups = trial % 5 == 0 ? 2 : 1
            let cin = groups * data.int(1...2), cout = groups * data.int(1...3)
            let k = trial % 6 == 1 ? (1, 1) : (data.int(1...3), data.int(1...3))
            let dilated = trial % 4 == 3
            let strides = dilated ? (1, 1) : (data.int(1...3), data.int(1...3))
            let conv = try Conv2D(
                name: "c", kernel: data.normal([k.0, k.1, cin / groups, cout], scale: 0.5),
                bias: data.bool() ? data.normal([cout]) : nil, strides: strides,
                padding: trial % 2 == 0 ? .same : .valid, dilation: dilated ? (2, 2) : (1, 1), groups: groups,
                activation: trial % 3 == 0 ? .swish : .linear)
            let x = data.normal([data.int(1...2), data.int(5...8), data.int(5...8), cin])
            try GradientCheck().check(conv, [x], seed: UInt64(trial))
        }
    }

    @Test func reluFusedInTrainingGivesTheLinearConvolutionsGradientsThroughTheMask() throws {
        // Training fuses ReLU into the convolution and takes ReLU's and the
        // bias's gradients in one pass; both must equal the unfused definition.
        var data = TestData(seed: 13)
        for (cin, cout, k) in [(3, 5, 3), (16, 16, 3), (8, 40, 1), (64, 64, 3)] {
            let w = data.normal([k, k, cin, cout], scale: 0.3), b = data.normal([cout])
            let x = data.normal([2, 9, 11, cin])
            let relu = try Conv2D(name: "r", kernel: w, bias: b, padding: .same, activation: .relu())
            let linear = try Conv2D(name: "l", kernel: w, bias: b, padding: .same)
            let fused = try relu.forward([x], mode: .training)
            let plain = try linear.forward([x], mode: .training)
            #expect(fused.output.scalars == plain.output.scalars.map { max($0, 0) }, "cin \(cin) cout \(cout)")
            let dy = data.normal(fused.output.shape)
            var masked = dy
            for i in 0..<masked.count where fused.output.scalars[i] <= 0 { masked.scalars[i] = 0 }
            let dxRelu = try relu.backward(dy, cache: fused.cache, needInputGradients: [true])[0]!
            let dxLinear = try linear.backward(masked, cache: plain.cache, needInputGradients: [true])[0]!
            #expect(maxDifference(dxRelu, dxLinear) < 1e-4)
            #expect(maxDifference(relu.kernel.gradient!, linear.kernel.gradient!) < 1e-3)
            #expect(maxDifference(relu.bias!.gradient!, linear.bias!.gradient!) < 1e-3)
        }
    }

    @Test func pointwiseConvolutionIsOneProductWithTheSameResult() throws {
        var data = TestData(seed: 3)
        let x = data.normal([2, 5, 7, 6])
        let w = data.normal([1, 1, 6, 4])
        let conv = try Conv2D(name: "c", kernel: w, bias: nil)
        #expect(conv.isPointwise)
        let y = try conv.forward([x], mode: .inference).output
        let ref = NaiveReference.conv2D(x, kernel: w, bias: nil, strides: (1, 1), same: false, dilation: (1, 1), groups: 1)
        #expect(maxDifference(y, ref) < 1e-5)
        try GradientCheck().check(conv, [x])
    }

    @Test func forwardAddingATensorEqualsTheOutputPlusThatTensorOnEveryPath() throws {
        var data = TestData(seed: 4)
        // (kernel, in, out, size): direct; 1x1 sgemm; im2col + sgemm; Winograd.
        for (k, cin, cout, size) in [(3, 3, 11, 9), (1, 20, 130, 5), (3, 24, 140, 6), (3, 64, 64, 17)] {
            let conv = try Conv2D(name: "c", kernel: data.normal([k, k, cin, cout], scale: 0.2), bias: data.normal([cout]), padding: .same)
            let x = data.normal([2, size, size, cin])
            let addend = data.normal([2, size, size, cout])
            let plain = try conv.forward([x], mode: .training).output
            let summed = try #require(try conv.forward([x], mode: .training, adding: addend))
            #expect(maxDifference(summed.output, Tensor(uncheckedShape: plain.shape, scalars: zip(plain.scalars, addend.scalars).map { $0 + $1 })) < 1e-5,
                    "\(k)x\(k) \(cin)→\(cout)")
        }
        // Not for a shape other than the output's, nor through a nonlinear activation.
        let conv = try Conv2D(name: "c", kernel: data.normal([1, 1, 2, 3]), bias: nil)
        #expect(try conv.forward([data.normal([1, 4, 4, 2])], mode: .inference, adding: Tensor(zeros: [1, 4, 4, 2])) == nil)
        let relu = try Conv2D(name: "r", kernel: data.normal([1, 1, 2, 3]), bias: nil, activation: .relu())
        #expect(try relu.forward([data.normal([1, 4, 4, 2])], mode: .inference, adding: Tensor(zeros: [1, 4, 4, 3])) == nil)
    }

    @Test func fewPixelsWithManyOutputChannelsSplitByColumnsGiveTheDefinitionsValues() throws {
        // ResNet50's stage-5 shapes, small: 3x3 same, 1x1, 1x1 stride 2; fewer
        // than 1,024 output pixels and 256+ output channels.
        var data = TestData(seed: 12)
        for (k, stride, cin, cout, size) in [(3, 1, 20, 272, 5), (1, 1, 40, 256, 7), (1, 2, 24, 300, 9)] {
            let w = data.normal([k, k, cin, cout], scale: 0.3)
            let b = data.normal([cout])
            let x = data.normal([3, size, size, cin])
            let g = try #require(Window2D.forward(over: x.shape, kernel: (k, k), strides: (stride, stride), padding: .same))
            #expect(ConvolutionKernels.splitsColumns(outputPixels: g.batch * g.rows.output * g.cols.output, outputChannels: cout, groups: 1)
                    == (Parallel.workers > 1 && Parallel.workers * 128 <= cout))
            // The epilogue must see every output once: adding 1 there shifts every value by exactly 1.
            let y = ConvolutionKernels.forwardByColumns(x, window: g, kernel: w, bias: b.scalars) { p, _, pixels in
                for i in 0..<(pixels * cout) { p[i] += 1 }
            }
            var ref = NaiveReference.conv2D(x, kernel: w, bias: b, strides: (stride, stride), same: true, dilation: (1, 1), groups: 1)
            ref.scalars = ref.scalars.map { $0 + 1 }
            #expect(y.shape == ref.shape)
            #expect(maxDifference(y, ref) < 1e-4, "\(k)x\(k)/\(stride) \(cin)→\(cout)")
            let conv = try Conv2D(name: "c", kernel: w, bias: b, strides: (stride, stride), padding: .same)
            ref.scalars = ref.scalars.map { $0 - 1 }
            #expect(maxDifference(try conv.forward([x], mode: .inference).output, ref) < 1e-4)
        }
    }

    @Test func aStridedSevenBySevenStemMatchesTheDefinition() throws {
        // ResNet's stem (7x7/2 over 3 channels) takes im2col's whole-window-row copies.
        var data = TestData(seed: 13)
        for same in [true, false] {
            let x = data.normal([2, 23, 18, 3])
            let w = data.normal([7, 7, 3, 16], scale: 0.2)
            let b = data.normal([16])
            let conv = try Conv2D(name: "stem", kernel: w, bias: b, strides: (2, 2), padding: same ? .same : .valid)
            let y = try conv.forward([x], mode: .inference).output
            let ref = NaiveReference.conv2D(x, kernel: w, bias: b, strides: (2, 2), same: same, dilation: (1, 1), groups: 1)
            #expect(maxDifference(y, ref) < 1e-4, "same \(same)")
        }
    }

    @Test func rejectsAnInputWithTheWrongChannelCount() throws {
        let conv = try Conv2D(name: "conv1", kernel: Tensor(zeros: [3, 3, 3, 8]), bias: nil)
        #expect(throws: EngineError.self) { try conv.forward([Tensor(zeros: [1, 8, 8, 1])], mode: .inference) }
    }
}

@Suite struct Conv2DTransposeTests {
    @Test func sameStride2Kernel3MatchesTensorFlowsLayout() throws {
        let x = tensor([1, 2, 2, 1], [1, 2, 3, 4])
        let up = try Conv2DTranspose(name: "t", kernel: Tensor(repeating: 1, shape: [3, 3, 1, 1]), bias: nil,
                                     strides: (2, 2), padding: .same)
        let y = try up.forward([x], mode: .inference).output
        #expect(y.shape == [1, 4, 4, 1])
        #expect(y.scalars == [1, 1, 3, 2, 1, 1, 3, 2, 4, 4, 10, 6, 3, 3, 7, 4])
    }

    @Test func validStride2Kernel2RepeatsEachPixel() throws {
        let x = tensor([1, 2, 2, 1], [1, 2, 3, 4])
        let up = try Conv2DTranspose(name: "t", kernel: Tensor(repeating: 1, shape: [2, 2, 1, 1]), bias: nil,
                                     strides: (2, 2), padding: .valid)
        let y = try up.forward([x], mode: .inference).output
        #expect(y.scalars == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    @Test func forwardMatchesTheScatterDefinition() throws {
        var data = TestData(seed: 5)
        for _ in 0..<50 {
            let (cin, cout) = (data.int(1...3), data.int(1...3))
            let k = (data.int(1...4), data.int(1...4))
            let s = (data.int(1...3), data.int(1...3))
            let same = data.bool()
            let d = data.int(0...3) == 0 ? (2, 1) : (1, 1)
            let op: (Int, Int)? = data.bool() ? (data.int(0...(s.0 - 1)), data.int(0...(s.1 - 1))) : nil
            let x = data.normal([data.int(1...2), data.int(2...5), data.int(2...5), cin])
            let w = data.normal([k.0, k.1, cout, cin])
            let up = try Conv2DTranspose(name: "t", kernel: w, bias: nil, strides: s, padding: same ? .same : .valid,
                                         outputPadding: op, dilation: d)
            let y = try up.forward([x], mode: .inference).output
            let rows = WindowAxis.transposed(input: x.shape[1], kernel: k.0, stride: s.0, dilation: d.0,
                                             padding: same ? .same : .valid, outputPadding: op?.0)
            let cols = WindowAxis.transposed(input: x.shape[2], kernel: k.1, stride: s.1, dilation: d.1,
                                             padding: same ? .same : .valid, outputPadding: op?.1)
            let ref = NaiveReference.conv2DTranspose(x, kernel: w, strides: s, outSize: (rows.input, cols.input),
                                                     pad: (rows.padBefore, cols.padBefore), dilation: d)
            #expect(maxDifference(y, ref) < 1e-4, "k \(k) s \(s) same \(same) op \(String(describing: op))")
        }
    }

    @Test func outputSizesFollowKerasDeconvOutputLength() {
        // (input, kernel, stride, padding, output_padding) → Keras's length.
        #expect(WindowAxis.transposedLength(input: 16, kernel: 3, stride: 2, dilation: 1, padding: .same, outputPadding: nil) == 32)
        #expect(WindowAxis.transposedLength(input: 16, kernel: 3, stride: 2, dilation: 1, padding: .valid, outputPadding: nil) == 33)
        #expect(WindowAxis.transposedLength(input: 16, kernel: 1, stride: 2, dilation: 1, padding: .valid, outputPadding: nil) == 32)
        #expect(WindowAxis.transposedLength(input: 5, kernel: 3, stride: 2, dilation: 1, padding: .same, outputPadding: 0) == 9)
        #expect(WindowAxis.transposedLength(input: 5, kernel: 4, stride: 3, dilation: 1, padding: .valid, outputPadding: 2) == 18)
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 13)
        for trial in 0..<20 {
            let (cin, cout) = (data.int(1...3), data.int(1...3))
            let s = (data.int(1...3), data.int(1...3))
            let up = try Conv2DTranspose(
                name: "t", kernel: data.normal([data.int(1...4), data.int(1...4), cout, cin], scale: 0.5),
                bias: data.bool() ? data.normal([cout]) : nil, strides: s,
                padding: trial % 2 == 0 ? .same : .valid,
                outputPadding: trial % 3 == 0 ? (s.0 - 1, 0) : nil, dilation: trial % 5 == 4 ? (2, 1) : (1, 1),
                activation: trial % 4 == 0 ? .tanh : .linear)
            try GradientCheck().check(up, [data.normal([data.int(1...2), data.int(2...5), data.int(2...5), cin])],
                                      seed: UInt64(trial))
        }
    }
}

@Suite struct DepthwiseConv2DTests {
    @Test func forwardMatchesTheDirectDefinition() throws {
        var data = TestData(seed: 17)
        for _ in 0..<30 {
            let (cin, dm) = (data.int(1...4), data.int(1...2))
            let k = (data.int(1...3), data.int(1...3))
            let s = (data.int(1...3), data.int(1...3))
            let same = data.bool()
            let x = data.normal([data.int(1...2), data.int(4...8), data.int(4...8), cin])
            let w = data.normal([k.0, k.1, cin, dm])
            let dw = try DepthwiseConv2D(name: "d", kernel: w, bias: nil, strides: s, padding: same ? .same : .valid)
            let y = try dw.forward([x], mode: .inference).output
            #expect(maxDifference(y, NaiveReference.depthwise(x, kernel: w, strides: s, same: same, dilation: (1, 1))) < 1e-4)
        }
    }

    /// The kernels run 16 channels to a vector and the rest one by one: channel
    /// counts of whole vectors, with a remainder, and a depth multiplier,
    /// strides 1 and 2, dilation, bias and a fused ReLU6.
    @Test func wideChannelCountsMatchTheDirectDefinition() throws {
        var data = TestData(seed: 23)
        for (trial, (cin, dm)) in [(16, 1), (35, 1), (48, 1), (17, 2)].enumerated() {
            for stride in [1, 2] {
                let dilation = trial == 1 && stride == 1 ? (2, 2) : (1, 1)
                let x = data.normal([2, 9, 8, cin])
                let w = data.normal([3, 3, cin, dm]), b = data.normal([cin * dm])
                let dw = try DepthwiseConv2D(name: "d", kernel: w, bias: b, strides: (stride, stride), padding: trial % 2 == 0 ? .same : .valid,
                                             dilation: dilation, activation: .relu6)
                var ref = NaiveReference.depthwise(x, kernel: w, strides: (stride, stride), same: trial % 2 == 0, dilation: dilation)
                for i in ref.scalars.indices { ref.scalars[i] = min(max(ref.scalars[i] + b.scalars[i % (cin * dm)], 0), 6) }
                #expect(maxDifference(try dw.forward([x], mode: .inference).output, ref) < 1e-4)
                #expect(maxDifference(try dw.forward([x], mode: .training).output, ref) < 1e-4)
            }
        }
    }

    @Test func wideChannelGradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 29)
        for (trial, cin) in [16, 19].enumerated() {
            let dw = try DepthwiseConv2D(name: "d", kernel: data.normal([3, 3, cin, 1]), bias: data.normal([cin]),
                                         strides: (trial + 1, trial + 1), padding: .same, activation: .swish)
            try GradientCheck().check(dw, [data.normal([1, 5, 6, cin])], seed: UInt64(trial))
        }
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 19)
        for trial in 0..<16 {
            let (cin, dm) = (data.int(1...3), data.int(1...2))
            let dilated = trial % 4 == 0
            let dw = try DepthwiseConv2D(
                name: "d", kernel: data.normal([data.int(1...3), data.int(1...3), cin, dm]),
                bias: data.bool() ? data.normal([cin * dm]) : nil,
                strides: dilated ? (1, 1) : (data.int(1...3), data.int(1...3)),
                padding: trial % 2 == 0 ? .same : .valid, dilation: dilated ? (2, 2) : (1, 1),
                activation: trial % 3 == 0 ? .swish : .linear)
            try GradientCheck().check(dw, [data.normal([data.int(1...2), data.int(5...8), data.int(5...8), cin])],
                                      seed: UInt64(trial))
        }
    }
}

@Suite struct SeparableConv2DTests {
    @Test func equalsADepthwiseThenAPointwiseConvolution() throws {
        var data = TestData(seed: 73)
        let dk = data.normal([3, 3, 2, 2]), pk = data.normal([1, 1, 4, 5]), b = data.normal([5])
        let sep = try SeparableConv2D(name: "s", depthwiseKernel: dk, pointwiseKernel: pk, bias: b,
                                      strides: (2, 2), padding: .same, activation: .relu())
        let x = data.normal([2, 7, 6, 2])
        let mid = NaiveReference.depthwise(x, kernel: dk, strides: (2, 2), same: true, dilation: (1, 1))
        var ref = NaiveReference.conv2D(mid, kernel: pk, bias: b, strides: (1, 1), same: false, dilation: (1, 1), groups: 1)
        ref.scalars = ref.scalars.map { max($0, 0) }
        #expect(maxDifference(try sep.forward([x], mode: .inference).output, ref) < 1e-4)
        #expect(sep.parameters.map(\.name) == ["depthwise_kernel", "pointwise_kernel", "bias"])
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var data = TestData(seed: 79)
        for trial in 0..<6 {
            let (cin, dm) = (data.int(1...3), data.int(1...2))
            let sep = try SeparableConv2D(
                name: "s", depthwiseKernel: data.normal([3, 3, cin, dm]), pointwiseKernel: data.normal([1, 1, cin * dm, 3]),
                bias: data.normal([3]), strides: (data.int(1...2), data.int(1...2)),
                padding: trial % 2 == 0 ? .same : .valid, activation: .swish)
            try GradientCheck().check(sep, [data.normal([2, 6, 5, cin])], seed: UInt64(trial))
        }
    }
}
