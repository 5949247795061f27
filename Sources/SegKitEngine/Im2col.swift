/// Patch extraction for convolution as a matrix product (NHWC, HWIO kernels).
///
/// Row r of the patch matrix is output pixel r (batch-major, then y, then x);
/// its columns run over (ky, kx, c) for the channels [c0, c0 + cCount) of the
/// input, exactly the row order of an HWIO kernel viewed as (kh·kw·cin, cout).
/// Padding positions are zeros. Both functions work on any range of rows, so
/// the engine's workers can each take a part of the output.
enum Im2col {
    /// Fills `cols` (one row per output pixel of `rows`, width kh·kw·cCount).
    static func gather(
        _ x: UnsafePointer<Float>, channels: Int, window g: Window2D,
        rows: Range<Int>, c0: Int, cCount: Int, into cols: UnsafeMutablePointer<Float>
    ) {
        let (ih, iw) = (g.rows.input, g.cols.input)
        let (oh, ow) = (g.rows.output, g.cols.output)
        let (kh, kw) = (g.rows.kernel, g.cols.kernel)
        // A window row whose kw taps are all inside the image and whose
        // channels are all taken is kw·channels contiguous floats of the input:
        // one copy instead of kw (ResNet's 7x7/2 stem over 3 channels: 21 floats
        // at a time; the stem went from 31 to 20 ms a batch of 8 with it).
        let rowsAreContiguous = g.cols.dilation == 1 && cCount == channels
        var dst = cols
        for r in rows {
            let n = r / (oh * ow), oy = (r / ow) % oh, ox = r % ow
            let image = x + n * ih * iw * channels + c0
            let firstColumn = g.cols.source(ox, 0)
            let columnsInside = rowsAreContiguous && firstColumn >= 0 && firstColumn + kw <= iw
            for ky in 0..<kh {
                let iy = g.rows.source(oy, ky)
                let rowInside = iy >= 0 && iy < ih
                if rowInside && columnsInside {
                    dst.update(from: image + (iy * iw + firstColumn) * channels, count: kw * cCount)
                    dst += kw * cCount
                    continue
                }
                for kx in 0..<kw {
                    let ix = g.cols.source(ox, kx)
                    if rowInside && ix >= 0 && ix < iw {
                        let src = image + (iy * iw + ix) * channels
                        // A plain loop: for the few channels of early layers a memcpy call costs more than the copy.
                        for c in 0..<cCount { dst[c] = src[c] }
                    } else {
                        for c in 0..<cCount { dst[c] = 0 }
                    }
                    dst += cCount
                }
            }
        }
    }

    /// The adjoint of `gather`: adds every patch-matrix entry back into the input
    /// position it was read from (overlapping windows sum). Callers give each
    /// worker whole images, so no two workers write the same input pixel.
    static func scatter(
        _ cols: UnsafePointer<Float>, channels: Int, window g: Window2D,
        rows: Range<Int>, c0: Int, cCount: Int, into x: UnsafeMutablePointer<Float>
    ) {
        let (ih, iw) = (g.rows.input, g.cols.input)
        let (oh, ow) = (g.rows.output, g.cols.output)
        let (kh, kw) = (g.rows.kernel, g.cols.kernel)
        var src = cols
        for r in rows {
            let n = r / (oh * ow), oy = (r / ow) % oh, ox = r % ow
            let image = x + n * ih * iw * channels + c0
            for ky in 0..<kh {
                let iy = g.rows.source(oy, ky)
                let rowInside = iy >= 0 && iy < ih
                for kx in 0..<kw {
                    let ix = g.cols.source(ox, kx)
                    if rowInside && ix >= 0 && ix < iw {
                        let dst = image + (iy * iw + ix) * channels
                        for c in 0..<cCount { dst[c] += src[c] }
                    }
                    src += cCount
                }
            }
        }
    }

    /// Walks `rows` in chunks sized by `rowsPerChunk`, gathering each chunk's
    /// patches, group by group, into one reused buffer: `body(chunk, group,
    /// patches)` for each, then `chunkDone(chunk)` while the chunk's results are
    /// still in cache. What the forward pass and the kernel gradient share.
    static func forEachChunk(
        _ x: UnsafePointer<Float>, channels: Int, window g: Window2D, rows: Range<Int>, groups: Int,
        _ body: (Range<Int>, Int, UnsafePointer<Float>) -> Void, chunkDone: ((Range<Int>) -> Void)? = nil
    ) {
        let perGroup = channels / groups
        let width = g.rows.kernel * g.cols.kernel * perGroup
        let chunk = rowsPerChunk(width: width)
        var cols = [Float](repeating: 0, count: min(chunk, rows.count) * width)
        cols.withUnsafeMutableBufferPointer { cp in
            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: chunk) {
                let part = start..<min(start + chunk, rows.upperBound)
                for group in 0..<groups {
                    gather(x, channels: channels, window: g, rows: part, c0: group * perGroup, cCount: perGroup, into: cp.baseAddress!)
                    body(part, group, cp.baseAddress!)
                }
                chunkDone?(part)
            }
        }
    }

    /// Rows per chunk so that a worker's patch matrix stays near `budget` floats
    /// (256 KB: it is still in L2 when sgemm reads it; measured against 1 MB and
    /// 16 MB chunks, 10–25% faster on the benchmark's convolutions).
    static func rowsPerChunk(width: Int, budget: Int = 64 << 10) -> Int {
        max(64, budget / max(width, 1))
    }
}
