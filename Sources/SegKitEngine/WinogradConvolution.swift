import CKernels
import Foundation

/// 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) (CKernels/conv_winograd.c):
/// 16 multiplications per 2x2 outputs and channel pair instead of 36. Used
/// for the forward pass and for the input gradient (which, for a stride-1
/// 3x3 convolution, is another one: the kernel turned by 180° with its
/// channels swapped, padded by 2 − the forward padding).
enum WinogradConvolution {
    /// Whether a convolution over window `g` takes this path: 3x3, stride 1, no
    /// dilation or groups, at least 64 channels on each side. With 16–32
    /// channels the transforms cost more than the multiplications saved (32→16
    /// at 128x128: 11.9 vs 6.9 ms). With the products on sgemm, every map size
    /// gains: ResNet50's 3x3 layers at 56, 28 and 14 pixels a batch of 8 went
    /// from 17.0, 15.0 and 14.2 ms (direct tiles or im2col + sgemm) to 10.9,
    /// 9.2 and 9.2; the U-Net workload's 8x8 bottleneck from 130 to 172 GFLOP/s.
    static func applies(_ g: Window2D, kernelShape: [Int], inputChannels: Int, outputChannels: Int, groups: Int) -> Bool {
        guard kernelShape[0] == 3, kernelShape[1] == 3, groups == 1,
              g.rows.stride == 1, g.cols.stride == 1, g.rows.dilation == 1, g.cols.dilation == 1 else { return false }
        if let forced = DirectConvolution.forcedPath { return forced == "winograd" }
        return inputChannels >= 64 && outputChannels >= 64
    }

    /// y = conv(x) over `rows` × `cols` (the axes of the convolution computed),
    /// kernel HWIO 3x3, plus bias. The transforms are CKernels' (additions
    /// only); the 16 products of each chunk of tile rows are sgemm calls,
    /// [tiles × cin] · [cin × cout] per ξ: whole tile rows, ~`targetTiles` tiles
    /// a chunk so that sgemm has rows to work on (a 14x14 map has 7 tiles a
    /// row), the chunks split across the workers; `epilogue` runs on each
    /// chunk's output rows while they are in cache.
    static func forward(_ x: Tensor, batch: Int, rows: WindowAxis, cols: WindowAxis, kernel: Tensor, bias: [Float]?,
                        epilogue: OutputEpilogue?) -> Tensor {
        let cin = kernel.shape[2], cout = kernel.shape[3]
        // Split across the workers by input channel: on one thread the
        // transforms of a U-Net step cost ~3 ms while the other worker waited.
        let u = [Float](unsafeUninitializedCapacity: 16 * cin * cout) { buffer, initialized in
            let out = UncheckedSendable(buffer.baseAddress!)
            kernel.scalars.withUnsafeBufferPointer { w in
                let ww = UncheckedSendable(w.baseAddress!)
                Parallel.forEachRange(cin, minimumPerWorker: 8) { r in
                    segkit_winograd_kernel(ww.value, Int32(cin), Int32(cout), out.value, Int32(r.lowerBound), Int32(r.upperBound))
                }
            }
            initialized = buffer.count
        }
        let (ra, ca) = (DirectConvolution.axis(rows), DirectConvolution.axis(cols))
        let tilesPerRow = (cols.output + 1) / 2, tilesHigh = (rows.output + 1) / 2
        let tileRows = batch * tilesHigh
        // V and M of a chunk near 8 MB at most; at least one tile row.
        let targetTiles = max(64, min(256, (2 << 20) / (16 * (cin + cout))))
        let rowsPerChunk = max(1, min(targetTiles / tilesPerRow, (tileRows + Parallel.workers - 1) / Parallel.workers))
        let chunks = (tileRows + rowsPerChunk - 1) / rowsPerChunk
        let zeros = [Float](repeating: 0, count: cin)
        return Tensor.uninitialized(shape: [batch, rows.output, cols.output, cout]) { out in
            let o = UncheckedSendable(out.baseAddress!)
            x.scalars.withUnsafeBufferPointer { xp in
                let xx = UncheckedSendable(xp.baseAddress!)
                u.withUnsafeBufferPointer { up in
                    bias.withBaseAddress { bp in
                        let uu = UncheckedSendable(up.baseAddress!), bb = UncheckedSendable(bp)
                        Parallel.forEachRange(chunks) { range in
                            var v = [Float](repeating: 0, count: 16 * rowsPerChunk * tilesPerRow * cin)
                            var m = [Float](repeating: 0, count: 16 * rowsPerChunk * tilesPerRow * cout)
                            for chunk in range {
                                let first = chunk * rowsPerChunk, last = min(first + rowsPerChunk, tileRows)
                                let tiles = (last - first) * tilesPerRow
                                v.withUnsafeMutableBufferPointer { vp in
                                    m.withUnsafeMutableBufferPointer { mp in
                                        segkit_winograd_input_tiles(xx.value, Int32(cin), ra, ca, Int32(first), Int32(last), zeros, vp.baseAddress!)
                                        for xi in 0..<16 {
                                            BLAS.sgemm(transA: false, transB: false, m: tiles, n: cout, k: cin,
                                                       a: vp.baseAddress! + xi * tiles * cin, lda: cin, b: uu.value + xi * cin * cout, ldb: cout,
                                                       beta: 0, c: mp.baseAddress! + xi * tiles * cout, ldc: cout)
                                        }
                                        segkit_winograd_output_tiles(mp.baseAddress!, Int32(cout), ra, ca, Int32(first), Int32(last), bb.value, o.value)
                                    }
                                }
                                guard let epilogue else { continue }
                                // Tile rows [first, last) are output rows 2·ty, 2·ty + 1 of their images: contiguous pixels.
                                let (n0, ty0) = (first / tilesHigh, first % tilesHigh), (n1, ty1) = ((last - 1) / tilesHigh, (last - 1) % tilesHigh)
                                let start = (n0 * rows.output + 2 * ty0) * cols.output
                                let end = (n1 * rows.output + min(2 * ty1 + 2, rows.output)) * cols.output
                                epilogue(o.value + start * cout, start, end - start)
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
