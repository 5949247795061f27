import Testing
@testable import SegKitEngine

/// Winograd F(2x2, 3x3) must give the convolution's values (to float rounding
/// of its ±½ transforms) on every size: even and odd, half tiles at the
/// bottom and right, both paddings, any channel counts.
@Suite struct WinogradConvolutionTests {
    @Test func forwardMatchesTheDefinition() throws {
        var data = TestData(seed: 31)
        for (i, (cin, cout)) in [(1, 1), (3, 5), (16, 16), (17, 33), (32, 64), (64, 11), (40, 80)].enumerated() {
            let same = i % 2 == 0
            let x = data.normal([2, data.int(3...12), data.int(3...13), cin])
            let w = data.normal([3, 3, cin, cout], scale: 0.3)
            let b = data.normal([cout])
            let g = try #require(Window2D.forward(over: x.shape, kernel: (3, 3), strides: (1, 1), padding: same ? .same : .valid))
            let y = WinogradConvolution.forward(x, batch: 2, rows: g.rows, cols: g.cols, kernel: w, bias: b.scalars, epilogue: nil)
            let ref = NaiveReference.conv2D(x, kernel: w, bias: b, strides: (1, 1), same: same, dilation: (1, 1), groups: 1)
            #expect(y.shape == ref.shape)
            #expect(maxDifference(y, ref) < 1e-4 * Float(cin).squareRoot() * 4, "cin \(cin) cout \(cout) x \(x.shape) same \(same)")
        }
    }

    @Test func chunksOfTileRowsAcrossImagesGiveEveryOutputOnceToTheEpilogue() throws {
        // Many tile rows (chunks end inside images and span two), odd sizes
        // (half tiles), tiny maps (2 tiles a row): each output gets the epilogue once.
        var data = TestData(seed: 33)
        for (n, h, w, cin, cout) in [(3, 31, 17, 64, 72), (5, 3, 4, 64, 64), (2, 8, 8, 96, 80)] {
            let x = data.normal([n, h, w, cin])
            let k = data.normal([3, 3, cin, cout], scale: 0.2)
            let g = try #require(Window2D.forward(over: x.shape, kernel: (3, 3), strides: (1, 1), padding: .same))
            let y = WinogradConvolution.forward(x, batch: n, rows: g.rows, cols: g.cols, kernel: k, bias: nil) { p, _, pixels in
                for i in 0..<(pixels * cout) { p[i] += 1 }
            }
            var ref = NaiveReference.conv2D(x, kernel: k, bias: nil, strides: (1, 1), same: true, dilation: (1, 1), groups: 1)
            ref.scalars = ref.scalars.map { $0 + 1 }
            #expect(maxDifference(y, ref) < 1e-4 * Float(cin).squareRoot() * 4, "\(x.shape) → \(cout)")
        }
    }

    @Test func inputGradientMatchesTheGemmPath() throws {
        var data = TestData(seed: 32)
        for (i, (cin, cout)) in [(2, 3), (16, 16), (33, 17), (64, 32)].enumerated() {
            let inputShape = [2, data.int(3...11), data.int(3...12), cin]
            let w = data.normal([3, 3, cin, cout], scale: 0.3)
            let g = try #require(Window2D.forward(over: inputShape, kernel: (3, 3), strides: (1, 1), padding: i % 2 == 0 ? .same : .valid))
            let dz = data.normal([2, g.rows.output, g.cols.output, cout])
            let winograd = WinogradConvolution.inputGradient(dz, window: g, kernel: w, bias: nil)
            let gemm = ConvolutionKernels.inputGradientByGemm(dz, window: g, kernel: w, groups: 1, inputShape: inputShape)
            #expect(winograd.shape == gemm.shape)
            #expect(maxDifference(winograd, gemm) < 1e-4 * Float(cout).squareRoot() * 4, "cin \(cin) cout \(cout) window \(g)")
        }
    }
}
