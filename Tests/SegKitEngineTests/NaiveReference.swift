@testable import SegKitEngine

/// Direct-loop references, written from the definitions and independently of
/// the engine's im2col/sgemm code (llm.c keeps one beside every fast kernel).
enum NaiveReference {
    /// Keras 'same': pad total = max((out−1)·s + eff − in, 0), extra at the end.
    static func padBefore(input: Int, kernel: Int, stride: Int, dilation: Int, same: Bool) -> (out: Int, pad: Int) {
        let eff = (kernel - 1) * dilation + 1
        if !same { return ((input - eff) / stride + 1, 0) }
        let out = (input + stride - 1) / stride
        return (out, max((out - 1) * stride + eff - input, 0) / 2)
    }

    static func conv2D(_ x: Tensor, kernel w: Tensor, bias: Tensor?, strides: (Int, Int), same: Bool,
                       dilation: (Int, Int), groups: Int) -> Tensor {
        let (n, h, wd, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cinG, cout) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let coutG = cout / groups
        let (oh, pt) = padBefore(input: h, kernel: kh, stride: strides.0, dilation: dilation.0, same: same)
        let (ow, pl) = padBefore(input: wd, kernel: kw, stride: strides.1, dilation: dilation.1, same: same)
        var y = Tensor(zeros: [n, oh, ow, cout])
        for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for co in 0..<cout {
            let g = co / coutG
            var sum: Float = bias?.scalars[co] ?? 0
            for ky in 0..<kh { for kx in 0..<kw { for ci in 0..<cinG {
                let iy = oy * strides.0 - pt + ky * dilation.0, ix = ox * strides.1 - pl + kx * dilation.1
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                sum += x.scalars[((b * h + iy) * wd + ix) * cin + g * cinG + ci]
                    * w.scalars[((ky * kw + kx) * cinG + ci) * cout + co]
            } } }
            y.scalars[((b * oh + oy) * ow + ox) * cout + co] = sum
        } } } }
        _ = cin
        return y
    }

    /// Transposed convolution by its definition: every input pixel scatters
    /// kernel-weighted copies into the output (overlaps sum). `outSize` and the
    /// padding come from Keras's deconv_output_length and TF's padding rule.
    static func conv2DTranspose(_ x: Tensor, kernel w: Tensor, strides: (Int, Int), outSize: (Int, Int),
                                pad: (Int, Int), dilation: (Int, Int)) -> Tensor {
        let (n, h, wd, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cout) = (w.shape[0], w.shape[1], w.shape[2])
        var y = Tensor(zeros: [n, outSize.0, outSize.1, cout])
        for b in 0..<n { for iy in 0..<h { for ix in 0..<wd { for ky in 0..<kh { for kx in 0..<kw {
            let oy = iy * strides.0 - pad.0 + ky * dilation.0, ox = ix * strides.1 - pad.1 + kx * dilation.1
            guard oy >= 0, oy < outSize.0, ox >= 0, ox < outSize.1 else { continue }
            for co in 0..<cout { for ci in 0..<cin {
                y.scalars[((b * outSize.0 + oy) * outSize.1 + ox) * cout + co] +=
                    x.scalars[((b * h + iy) * wd + ix) * cin + ci] * w.scalars[((ky * kw + kx) * cout + co) * cin + ci]
            } }
        } } } } }
        return y
    }

    static func depthwise(_ x: Tensor, kernel w: Tensor, strides: (Int, Int), same: Bool, dilation: (Int, Int)) -> Tensor {
        let (n, h, wd, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, dm) = (w.shape[0], w.shape[1], w.shape[3])
        let (oh, pt) = padBefore(input: h, kernel: kh, stride: strides.0, dilation: dilation.0, same: same)
        let (ow, pl) = padBefore(input: wd, kernel: kw, stride: strides.1, dilation: dilation.1, same: same)
        var y = Tensor(zeros: [n, oh, ow, cin * dm])
        for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for c in 0..<cin { for m in 0..<dm {
            var sum: Float = 0
            for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * strides.0 - pt + ky * dilation.0, ix = ox * strides.1 - pl + kx * dilation.1
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                sum += x.scalars[((b * h + iy) * wd + ix) * cin + c] * w.scalars[((ky * kw + kx) * cin + c) * dm + m]
            } }
            y.scalars[((b * oh + oy) * ow + ox) * cin * dm + c * dm + m] = sum
        } } } } }
        return y
    }
}
