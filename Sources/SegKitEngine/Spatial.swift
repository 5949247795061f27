/// Keras's ZeroPadding2D and Cropping2D: add or remove rows and columns at the
/// borders, `((top, bottom), (left, right))`. Each is the other's backward pass.
public final class ZeroPadding2D: Layer {
    /// Rows of zeros added (top, bottom).
    public let rows: (Int, Int)
    /// Columns of zeros added (left, right).
    public let cols: (Int, Int)

    /// Keras's ZeroPadding2D (keras/src/layers/reshaping/zero_padding2d.py), channels last.
    public init(name: String, rows: (Int, Int), cols: (Int, Int)) {
        self.rows = rows
        self.cols = cols
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        ZeroPadding2D(name: name, rows: rows, cols: cols)
    }

    /// `[N, H + top + bottom, W + left + right, C]`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        return [s[0], s[1].map { $0 + rows.0 + rows.1 }, s[2].map { $0 + cols.0 + cols.1 }, s[3]]
    }

    /// x placed in a zero border; the cache is the input shape.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let (n, h, w, c) = x.nhwc
        let y = borderCopy(x, to: [n, h + rows.0 + rows.1, w + cols.0 + cols.1, c], offset: (rows.0, cols.0))
        return LayerOutput(y, cache: mode == .training ? x.shape : nil)
    }

    /// dy with the border cropped off.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        let shape = try requireCache(cache, as: [Int].self)
        return [borderCopy(gradOutput, to: shape, offset: (-rows.0, -cols.0))]
    }
}

/// Keras's Cropping2D (keras/src/layers/reshaping/cropping2d.py): removes
/// `rows` (top, bottom) and `cols` (left, right) pixels from the borders.
public final class Cropping2D: Layer {
    /// Rows removed (top, bottom).
    public let rows: (Int, Int)
    /// Columns removed (left, right).
    public let cols: (Int, Int)

    /// A cropping layer; sizes are checked against the input when it is known.
    public init(name: String, rows: (Int, Int), cols: (Int, Int)) {
        self.rows = rows
        self.cols = cols
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        Cropping2D(name: name, rows: rows, cols: cols)
    }

    /// `[N, H − top − bottom, W − left − right, C]`.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or not larger than the cropping.
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape {
        let s = inputShapes[0]
        try expectStaticRank(4, s, layer: self)
        let h = s[1].map { $0 - rows.0 - rows.1 }, w = s[2].map { $0 - cols.0 - cols.1 }
        if let h, h <= 0 { throw tooSmall(s) }
        if let w, w <= 0 { throw tooSmall(s) }
        return [s[0], h, w, s[3]]
    }

    private func tooSmall(_ s: Any) -> EngineError {
        .shapeMismatch(op: "Cropping2D '\(name)'", expected: "an input larger than the cropping \(rows), \(cols)", found: "\(s)")
    }

    /// The inner window of x; the cache is the input shape.
    /// - Throws: `EngineError.shapeMismatch` for an input not of rank 4 or not larger than the cropping.
    public override func forward(_ inputs: [Tensor], mode: ExecutionMode) throws -> LayerOutput {
        let x = inputs[0]
        try expectRank(4, x, layer: self)
        let (n, h, w, c) = x.nhwc
        let (oh, ow) = (h - rows.0 - rows.1, w - cols.0 - cols.1)
        guard oh > 0, ow > 0 else { throw tooSmall(x.shape) }
        let y = borderCopy(x, to: [n, oh, ow, c], offset: (-rows.0, -cols.0))
        return LayerOutput(y, cache: mode == .training ? x.shape : nil)
    }

    /// dy placed back in a zero border of the input's shape.
    /// - Throws: `EngineError.invalidArgument` when `cache` is not from a training-mode forward pass.
    public override func backward(_ gradOutput: Tensor, cache: Any?, needInputGradients: [Bool]) throws -> [Tensor?] {
        guard needInputGradients[0] else { return [nil] }
        let shape = try requireCache(cache, as: [Int].self)
        return [borderCopy(gradOutput, to: shape, offset: (rows.0, cols.0))]
    }
}

/// Copies `x` into a zero tensor of `shape` so that x's pixel (y, x) lands at
/// (y + offset.0, x + offset.1); what falls outside is dropped. Padding uses a
/// positive offset, cropping a negative one.
func borderCopy(_ x: Tensor, to shape: [Int], offset: (Int, Int)) -> Tensor {
    let (n, h, w, c) = x.nhwc
    let (oh, ow) = (shape[1], shape[2])
    // Output columns [x0 + offset, x1 + offset) come from the input, the others are zero.
    let x0 = max(0, -offset.1), x1 = max(x0, min(w, ow - offset.1))
    let y0 = max(0, -offset.0), y1 = max(y0, min(h, oh - offset.0))
    // Row by row across the workers, each output row written once (zeros and
    // copy together): a padded 112x112x96 batch is tens of MB, a serial
    // zero-fill and copy of it cost a MobileNetV2 forward pass ~5%.
    return Tensor.uninitialized(shape: shape) { out in
        let o = UncheckedSendable(out.baseAddress!)
        x.scalars.withUnsafeBufferPointer { src in
            let sp = UncheckedSendable(src.baseAddress)
            Parallel.forEachRange(n * oh, minimumPerWorker: 16) { rows in
                for r in rows {
                    let (b, row) = (r / oh, r % oh)
                    let dst = o.value + r * ow * c
                    let source = row - offset.0
                    guard source >= y0, source < y1, x1 > x0, let base = sp.value else {
                        dst.update(repeating: 0, count: ow * c)
                        continue
                    }
                    let left = (x0 + offset.1) * c, width = (x1 - x0) * c
                    dst.update(repeating: 0, count: left)
                    (dst + left).update(from: base + ((b * h + source) * w + x0) * c, count: width)
                    (dst + left + width).update(repeating: 0, count: ow * c - left - width)
                }
            }
        }
    }
}
