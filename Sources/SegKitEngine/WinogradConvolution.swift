import CKernels
import Foundation

/// 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) (CKernels/conv_winograd.c):
/// 16 multiplications per 2x2 outputs and channel pair instead of 36. Used
/// for the forward pass and for the input gradient (which, for a stride-1
/// 3x3 convolution, is another one: the kernel turned by 180° with its
/// channels swapped, padded by 2 − the forward padding).
enum WinogradConvolution {
    /// Whether a convolution over window `g` takes this path: 3x3, stride 1, no
    /// dilation or groups, at least 64 channels on each side and output rows of
    /// at least 16 pixels. Measured per U-Net layer shape against the direct
    /// and gemm paths (README, Performance): 128→64 at 32x32 forward 4.1 vs
    /// 5.2 ms, its input gradient 5.8 vs 7.0; but with 16–32 channels the
    /// transforms cost more than the multiplications saved (32→16 at 128x128:
    /// 11.9 vs 6.9 ms), and on 8-pixel rows half the tiles' work is padding.
    /// `rowWidth` is the width of the rows the convolution computes.
    static func applies(_ g: Window2D, kernelShape: [Int], inputChannels: Int, outputChannels: Int, groups: Int, rowWidth: Int) -> Bool {
        guard kernelShape[0] == 3, kernelShape[1] == 3, groups == 1,
              g.rows.stride == 1, g.cols.stride == 1, g.rows.dilation == 1, g.cols.dilation == 1 else { return false }
        if let forced = DirectConvolution.forcedPath { return forced == "winograd" }
        return inputChannels >= 64 && outputChannels >= 64 && rowWidth >= 16
    }

    /// y = conv(x) over `rows` × `cols` (the axes of the convolution computed),
    /// kernel HWIO 3x3, plus bias; `epilogue` runs on each finished pair of rows.
    static func forward(_ x: Tensor, batch: Int, rows: WindowAxis, cols: WindowAxis, kernel: Tensor, bias: [Float]?,
                        epilogue: OutputEpilogue?) -> Tensor {
        let cin = kernel.shape[2], cout = kernel.shape[3]
        let padded = DirectConvolution.paddedWidth(cout)
        // Split across the workers by input channel: on one thread the
        // transforms of a U-Net step cost ~3 ms while the other worker waited.
        let u = [Float](unsafeUninitializedCapacity: 16 * cin * padded) { buffer, initialized in
            let out = UncheckedSendable(buffer.baseAddress!)
            kernel.scalars.withUnsafeBufferPointer { w in
                let ww = UncheckedSendable(w.baseAddress!)
                Parallel.forEachRange(cin, minimumPerWorker: 8) { r in
                    segkit_winograd_kernel(ww.value, Int32(cin), Int32(cout), Int32(padded), out.value, Int32(r.lowerBound), Int32(r.upperBound))
                }
            }
            initialized = buffer.count
        }
        let (ra, ca) = (DirectConvolution.axis(rows), DirectConvolution.axis(cols))
        let tileRows = batch * ((rows.output + 1) / 2)
        let scratchCount = segkit_winograd_scratch_floats(Int32((cols.output + 1) / 2), Int32(cin), Int32(cout))
        return Tensor.uninitialized(shape: [batch, rows.output, cols.output, cout]) { out in
            let o = UncheckedSendable(out.baseAddress!)
            x.scalars.withUnsafeBufferPointer { xp in
                let xx = UncheckedSendable(xp.baseAddress!)
                bias.withBaseAddress { bp in
                    let bb = UncheckedSendable(bp)
                    Parallel.forEachRange(tileRows) { range in
                        var scratch = [Float](repeating: 0, count: scratchCount)
                        scratch.withUnsafeMutableBufferPointer { sp in
                            for t in range {
                                segkit_conv2d_winograd(xx.value, Int32(cin), ra, ca, u, Int32(cout), Int32(padded), bb.value,
                                                       o.value, sp.baseAddress!, Int32(t), Int32(t + 1))
                                guard let epilogue else { continue }
                                // Tile row t is output rows 2t and 2t + 1 of its image (the last may be missing).
                                let tilesPerImage = (rows.output + 1) / 2
                                let (n, ty) = (t / tilesPerImage, t % tilesPerImage)
                                let first = 2 * ty, count = min(2, rows.output - first)
                                let pixel = (n * rows.output + first) * cols.output
                                epilogue(o.value + pixel * cout, pixel, count * cols.output)
                            }
                        }
                    }
                }
            }
        }
    }

    /// dL/dx of the convolution over `g` (its axes: input x, output dz) with
    /// HWIO kernel `kernel`: the 3x3 convolution of dz by the kernel turned by
    /// 180° with input and output channels swapped.
    static func inputGradient(_ dz: Tensor, window g: Window2D, kernel: Tensor, bias: [Float]?) -> Tensor {
        let (cin, cout) = (kernel.shape[2], kernel.shape[3])
        let turned = [Float](unsafeUninitializedCapacity: 9 * cin * cout) { t, initialized in
            kernel.scalars.withUnsafeBufferPointer { k in
                for tap in 0..<9 {
                    let from = k.baseAddress! + tap * cin * cout, to = t.baseAddress! + (8 - tap) * cin * cout
                    for i in 0..<cin {
                        for o in 0..<cout { to[o * cin + i] = from[i * cout + o] }
                    }
                }
            }
            initialized = t.count
        }
        func reversed(_ a: WindowAxis) -> WindowAxis {
            WindowAxis(input: a.output, output: a.input, kernel: 3, stride: 1, dilation: 1, padBefore: 2 - a.padBefore)
        }
        return forward(dz, batch: g.batch, rows: reversed(g.rows), cols: reversed(g.cols),
                       kernel: Tensor(uncheckedShape: [3, 3, cout, cin], scalars: turned), bias: bias, epilogue: nil)
    }
}
