/// Keras's two padding modes for convolutions and pooling.
public enum Padding: String, Sendable, CaseIterable {
    /// Output = ceil(input / stride); the total padding is split with the extra
    /// row or column at the bottom / right (TensorFlow's rule, which Keras keeps).
    case same
    /// No padding; output = floor((input - effectiveKernel) / stride) + 1.
    case valid
}

/// Sliding-window geometry along one spatial axis.
struct WindowAxis: Equatable {
    var input: Int
    var output: Int
    var kernel: Int
    var stride: Int
    var dilation: Int
    /// Padding before the first input element (top or left).
    var padBefore: Int

    var effectiveKernel: Int { (kernel - 1) * dilation + 1 }

    /// Whether some tap of some output element reads each input element
    /// (not so where the stride skips past the kernel, or `valid` drops a tail).
    var readsEveryInput: Bool {
        (0..<input).allSatisfy { i in
            (0..<kernel).contains { k in
                let n = i + padBefore - k * dilation
                return n >= 0 && n % stride == 0 && n / stride < output
            }
        }
    }

    /// The window of a forward convolution or pooling over `input` elements.
    static func forward(input: Int, kernel: Int, stride: Int, dilation: Int = 1, padding: Padding) -> WindowAxis? {
        let eff = (kernel - 1) * dilation + 1
        switch padding {
        case .valid:
            guard input >= eff else { return nil }
            return WindowAxis(input: input, output: (input - eff) / stride + 1, kernel: kernel,
                              stride: stride, dilation: dilation, padBefore: 0)
        case .same:
            let output = (input + stride - 1) / stride
            let total = max((output - 1) * stride + eff - input, 0)
            return WindowAxis(input: input, output: output, kernel: kernel,
                              stride: stride, dilation: dilation, padBefore: total / 2)
        }
    }

    /// Static output length (nil stays nil: an unknown size gives an unknown size).
    static func forwardLength(_ input: Int?, kernel: Int, stride: Int, dilation: Int = 1, padding: Padding) -> Int? {
        guard let input else { return nil }
        return forward(input: input, kernel: kernel, stride: stride, dilation: dilation, padding: padding)?.output
    }

    /// Output length of a transposed convolution, as Keras's `deconv_output_length`.
    static func transposedLength(
        input: Int, kernel: Int, stride: Int, dilation: Int, padding: Padding, outputPadding: Int?
    ) -> Int {
        let eff = (kernel - 1) * dilation + 1
        guard let outputPadding else {
            switch padding {
            case .valid: return input * stride + max(eff - stride, 0)
            case .same: return input * stride
            }
        }
        let pad = padding == .same ? eff / 2 : 0
        return (input - 1) * stride + eff - 2 * pad + outputPadding
    }

    /// The geometry of the forward convolution whose input-gradient a transposed
    /// convolution computes: its "input" is the transposed conv's output.
    static func transposed(
        input: Int, kernel: Int, stride: Int, dilation: Int, padding: Padding, outputPadding: Int?
    ) -> WindowAxis {
        let output = transposedLength(input: input, kernel: kernel, stride: stride, dilation: dilation,
                                      padding: padding, outputPadding: outputPadding)
        let eff = (kernel - 1) * dilation + 1
        let padBefore = padding == .same ? max((input - 1) * stride + eff - output, 0) / 2 : 0
        return WindowAxis(input: output, output: input, kernel: kernel, stride: stride,
                          dilation: dilation, padBefore: padBefore)
    }

    /// Input index read by output `o` at kernel tap `k` (may be out of range: padding).
    @inline(__always) func source(_ o: Int, _ k: Int) -> Int { o * stride - padBefore + k * dilation }
}

/// Geometry of a 2-D window op over an NHWC batch.
struct Window2D: Equatable {
    var batch: Int
    var rows: WindowAxis
    var cols: WindowAxis
}

extension Window2D {
    /// The window of a forward convolution or pooling over an NHWC input of
    /// `shape`; nil when `valid` padding leaves no output.
    static func forward(
        over shape: [Int], kernel: (Int, Int), strides: (Int, Int), dilation: (Int, Int) = (1, 1), padding: Padding
    ) -> Window2D? {
        guard let rows = WindowAxis.forward(input: shape[1], kernel: kernel.0, stride: strides.0, dilation: dilation.0, padding: padding),
              let cols = WindowAxis.forward(input: shape[2], kernel: kernel.1, stride: strides.1, dilation: dilation.1, padding: padding)
        else { return nil }
        return Window2D(batch: shape[0], rows: rows, cols: cols)
    }

    /// The static output shape of such a window op: unknown sizes stay unknown.
    static func forwardShape(
        _ s: StaticShape, kernel: (Int, Int), strides: (Int, Int), dilation: (Int, Int) = (1, 1), padding: Padding, channels: Int?
    ) -> StaticShape {
        [s[0],
         WindowAxis.forwardLength(s[1], kernel: kernel.0, stride: strides.0, dilation: dilation.0, padding: padding),
         WindowAxis.forwardLength(s[2], kernel: kernel.1, stride: strides.1, dilation: dilation.1, padding: padding),
         channels]
    }
}
