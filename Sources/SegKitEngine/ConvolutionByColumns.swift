/// The forward product for convolutions with few output pixels and a wide
/// kernel matrix: the workers split the output's channels, not its rows.
///
/// ResNet50's stage 5 at 224x224 has 7x7 maps: 392 output rows a batch of 8
/// against a 4608x512 kernel matrix. Split by rows, each worker had too few to
/// be worth a thread (one ran it all, 81 GFLOP/s), or each packed the whole
/// 9 MB kernel matrix for a few dozen rows. Split by columns, each worker packs
/// its half of the kernel matrix once and multiplies every row by it.
extension ConvolutionKernels {
    /// Whether `forward` takes the column split for an ungrouped layer with `m`
    /// output pixels and `outputChannels` channels: fewer than 1,024 pixels (a
    /// row split would give each worker fewer than ~256) and at least 128
    /// output channels per worker (whole 16-channel blocks, each a product
    /// worth a thread).
    static func splitsColumns(outputPixels m: Int, outputChannels: Int, groups: Int) -> Bool {
        Parallel.workers > 1 && groups == 1 && m < 1024 && outputChannels >= 128 * Parallel.workers
            && DirectConvolution.forcedPath == nil
    }

    /// z = bias + patches(x) · W over window `g`, W the HWIO kernel viewed as
    /// (kh·kw·cin, cout): the patches gathered once (by rows, across the
    /// workers; a pointwise layer's are its input), the output filled with the
    /// bias, then one sgemm per worker on its share of the columns (beta 1), and
    /// `epilogue` on chunks of rows at the end. Ungrouped layers only.
    static func forwardByColumns(_ x: Tensor, window g: Window2D, kernel: Tensor, bias: [Float]?,
                                 epilogue: OutputEpilogue?) -> Tensor {
        let cin = x.shape[3], cout = kernel.shape[3]
        let width = g.rows.kernel * g.cols.kernel * cin
        let m = g.batch * g.rows.output * g.cols.output
        let pointwise = isPointwise(g, groups: 1)
        var patches = [Float]()
        if !pointwise {
            patches = [Float](unsafeUninitializedCapacity: m * width) { buffer, initialized in
                let p = UncheckedSendable(buffer.baseAddress!)
                x.scalars.withUnsafeBufferPointer { xp in
                    Parallel.forEachRange(m, minimumPerWorker: 16) { rows in
                        Im2col.gather(xp.baseAddress!, channels: cin, window: g, rows: rows, c0: 0, cCount: cin,
                                      into: p.value + rows.lowerBound * width)
                    }
                }
                initialized = buffer.count
            }
        }
        return Tensor.uninitialized(shape: [g.batch, g.rows.output, g.cols.output, cout]) { out in
            let o = UncheckedSendable(out.baseAddress!)
            if let bias {
                bias.withUnsafeBufferPointer { b in
                    for r in 0..<m { (o.value + r * cout).update(from: b.baseAddress!, count: cout) }
                }
            }
            let blocks = (cout + 15) / 16
            let a = pointwise ? x.scalars : patches
            a.withUnsafeBufferPointer { ap in
                kernel.scalars.withUnsafeBufferPointer { wp in
                    // One range per worker: each more would pack the shared rows again.
                    Parallel.forEachRange(blocks, minimumPerWorker: (blocks + Parallel.workers - 1) / Parallel.workers) { part in
                        let first = 16 * part.lowerBound, columns = min(16 * part.upperBound, cout) - first
                        BLAS.sgemm(transA: false, transB: false, m: m, n: columns, k: width,
                                   a: ap.baseAddress!, lda: width, b: wp.baseAddress! + first, ldb: cout,
                                   beta: bias == nil ? 0 : 1, c: o.value + first, ldc: cout)
                    }
                }
            }
            if let epilogue {
                Parallel.forEachRange(m, minimumPerWorker: 64) { rows in epilogue(o.value + rows.lowerBound * cout, rows.lowerBound, rows.count) }
            }
        }
    }
}
