/// Patch extraction for convolution as a matrix product (NHWC, HWIO kernels).
///
/// Row r of the patch matrix is output pixel r (batch-major, then y, then x);
/// its columns run over (ky, kx, c) for the channels [c0, c0 + cCount) of the
/// input, exactly the row order of an HWIO kernel viewed as (kh·kw·cin, cout).
/// Padding positions are zeros.
enum Im2col {
    /// Fills `cols` (rows `images.lowerBound*OH*OW ..<`, width kh·kw·cCount) for a
    /// range of images.
    static func gather(
        _ x: UnsafePointer<Float>, channels: Int, window g: Window2D,
        images: Range<Int>, c0: Int, cCount: Int, into cols: UnsafeMutablePointer<Float>
    ) {
        let (ih, iw) = (g.rows.input, g.cols.input)
        let (oh, ow) = (g.rows.output, g.cols.output)
        let (kh, kw) = (g.rows.kernel, g.cols.kernel)
        let width = kh * kw * cCount
        var row = cols
        for n in images {
            let image = x + n * ih * iw * channels
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var dst = row
                    for ky in 0..<kh {
                        let iy = g.rows.source(oy, ky)
                        let rowInside = iy >= 0 && iy < ih
                        for kx in 0..<kw {
                            let ix = g.cols.source(ox, kx)
                            if rowInside && ix >= 0 && ix < iw {
                                dst.update(from: image + (iy * iw + ix) * channels + c0, count: cCount)
                            } else {
                                dst.update(repeating: 0, count: cCount)
                            }
                            dst += cCount
                        }
                    }
                    row += width
                }
            }
        }
    }

    /// The adjoint of `gather`: adds every patch-matrix entry back into the input
    /// position it was read from (overlapping windows sum). `x` must be zeroed
    /// (or hold values to add to) for the images in range.
    static func scatter(
        _ cols: UnsafePointer<Float>, channels: Int, window g: Window2D,
        images: Range<Int>, c0: Int, cCount: Int, into x: UnsafeMutablePointer<Float>
    ) {
        let (ih, iw) = (g.rows.input, g.cols.input)
        let (oh, ow) = (g.rows.output, g.cols.output)
        let (kh, kw) = (g.rows.kernel, g.cols.kernel)
        let width = kh * kw * cCount
        var row = cols
        for n in images {
            let image = x + n * ih * iw * channels
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var src = row
                    for ky in 0..<kh {
                        let iy = g.rows.source(oy, ky)
                        let rowInside = iy >= 0 && iy < ih
                        for kx in 0..<kw {
                            let ix = g.cols.source(ox, kx)
                            if rowInside && ix >= 0 && ix < iw {
                                let dst = image + (iy * iw + ix) * channels + c0
                                for c in 0..<cCount { dst[c] += src[c] }
                            }
                            src += cCount
                        }
                    }
                    row += width
                }
            }
        }
    }

    /// Images per chunk so that a patch matrix stays near `budget` floats: one
    /// sgemm per chunk keeps the product large while bounding memory.
    static func imagesPerChunk(batch: Int, rowsPerImage: Int, width: Int, budget: Int = 8 << 20) -> Int {
        let perImage = max(rowsPerImage * width, 1)
        return max(1, min(batch, budget / perImage))
    }
}
