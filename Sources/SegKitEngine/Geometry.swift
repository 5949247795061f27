import SegKitSupport
/// Where a node's pixels sit in the input image along one spatial axis: the
/// coordinate bookkeeping of Long et al., "Fully Convolutional Networks for
/// Semantic Segmentation" (§3.1 and the crop layers of §4.2), derived layer by
/// layer from kernel, stride, padding and dilation rather than from sizes.
///
/// Pixel `i` of the node is centred on input coordinate `offset + i · stride`
/// (input pixels are at 0, 1, 2, …) and sees `receptiveField` input pixels.
public struct AxisGeometry: Equatable, Sendable {
    /// The node's length along the axis, at the input size the geometry was taken at.
    public var size: Int
    /// Input pixels between two neighbouring pixels of the node (1/2 after a 2x upsampling
    /// of the input; 0 for a global pooling's 1x1 map, which lies on no grid).
    public var stride: Double
    /// Input coordinate of the centre of the node's pixel 0 (negative where padding came first).
    public var offset: Double
    /// Input pixels one of the node's pixels depends on.
    public var receptiveField: Int
    /// Whether no window on the way dropped trailing input pixels: a `valid`
    /// window's floor may drop only explicit zero padding (ZeroPadding2D) or the
    /// pixels a window narrower than its stride skips anyway (`same` drops nothing).
    public var exact: Bool
    /// Trailing pixels of the map that are explicit zero padding.
    public var trailingPadding: Int = 0

    /// The input's own geometry.
    public static func input(_ size: Int) -> AxisGeometry {
        AxisGeometry(size: size, stride: 1, offset: 0, receptiveField: 1, exact: true, trailingPadding: 0)
    }

    /// A sliding window of `kernel` taps `dilation` apart, moved `step` at a time,
    /// with `padBefore` padding elements first (convolution and pooling).
    func window(kernel: Int, step: Int, dilation: Int, padBefore: Int, output: Int, exact windowExact: Bool) -> AxisGeometry {
        let span = (kernel - 1) * dilation
        return AxisGeometry(size: output, stride: stride * Double(step),
                            offset: offset + stride * (Double(span) / 2 - Double(padBefore)),
                            receptiveField: receptiveField + Int((Double(span) * stride).rounded(.up)), exact: exact && windowExact)
    }

    /// A forward window with Keras's `same` / `valid` padding rule.
    func window(kernel: Int, step: Int, dilation: Int, padding: Padding) throws -> AxisGeometry {
        guard let w = WindowAxis.forward(input: size, kernel: kernel, stride: step, dilation: dilation, padding: padding) else {
            throw GeometryError.tooSmall(size: size, needed: (kernel - 1) * dilation + 1)
        }
        let dropped = padding == .same ? 0 : (size - w.effectiveKernel) % step
        let divides = dropped <= max(trailingPadding, step - w.effectiveKernel)
        return window(kernel: kernel, step: step, dilation: dilation, padBefore: w.padBefore, output: w.output, exact: divides)
    }
}

/// Why a node has no geometry at some input size. `Graph.geometry` turns it
/// into an `EngineError` naming the node; alone it names the sizes.
public enum GeometryError: SegKitError, Equatable {
    /// An axis of `size` pixels under a window that needs `needed`.
    case tooSmall(size: Int, needed: Int)

    /// "expected at least N pixels, found M".
    public var errorDescription: String? {
        switch self {
        case let .tooSmall(size, needed): return "expected at least \(needed) pixels, found \(size)"
        }
    }
}

/// Both spatial axes of a 4-D (NHWC) node.
public struct NodeGeometry: Equatable, Sendable {
    /// The vertical axis (H of NHWC).
    public var rows: AxisGeometry
    /// The horizontal axis (W of NHWC).
    public var cols: AxisGeometry

    /// `rows` for axis 0, `cols` for any other.
    public subscript(axis: Int) -> AxisGeometry { axis == 0 ? rows : cols }

    /// The stride when both axes share one integer stride (an encoder stage's), else nil.
    public var integerStride: Int? {
        guard rows.stride == cols.stride, rows.stride >= 1, rows.stride == rows.stride.rounded() else { return nil }
        return Int(rows.stride)
    }
}

extension Graph {
    /// The geometry of every node for an input of `height` x `width` pixels (the
    /// graph's only input, NHWC): nil for nodes that are not 4-D maps (after a
    /// Flatten or a global pooling without `keepdims`).
    ///
    /// - Throws: `EngineError.graph` for a graph without exactly one input;
    ///   `EngineError.shapeMismatch` naming the node where the input is too small
    ///   for a window (or a CenterCrop), where a merge's inputs differ in size, or
    ///   where a node's map would be empty.
    public func geometry(height: Int, width: Int) throws -> [NodeGeometry?] {
        guard inputIndices.count == 1 else {
            throw EngineError.graph("geometry needs a graph with one image input, found \(inputIndices.count)")
        }
        var result = [NodeGeometry?](repeating: nil, count: nodes.count)
        for (i, node) in nodes.enumerated() {
            if node.layer is InputLayer {
                result[i] = NodeGeometry(rows: .input(height), cols: .input(width))
                continue
            }
            // Inputs without a map (a squeeze-and-excitation vector) broadcast; the
            // largest map sets the geometry, the last of equals (a decoder's skip,
            // which its upsampled map was aligned to).
            let inputs = node.inputs.compactMap { result[$0] }
            guard var first = inputs.first else { continue }
            for g in inputs where g.rows.size * g.cols.size >= first.rows.size * first.cols.size { first = g }
            do {
                result[i] = try Self.geometry(of: node.layer, from: inputs, first: first)
            } catch GeometryError.tooSmall(let size, let needed) {
                throw EngineError.shapeMismatch(op: "\(node.layer.kind) '\(node.name)'",
                                                expected: "a map at least \(needed) pixels across for its window", found: "\(size)")
            }
            if let g = result[i], g.rows.size < 1 || g.cols.size < 1 {
                throw EngineError.shapeMismatch(op: "\(node.layer.kind) '\(node.name)'", expected: "a non-empty map",
                                                found: "\(g.rows.size)x\(g.cols.size)")
            }
        }
        return result
    }

    /// One layer's rule. Layers not named here keep the map's geometry (they act
    /// per pixel: activations, normalisation, Dense on the channel axis, merges).
    static func geometry(of layer: Layer, from inputs: [NodeGeometry], first g: NodeGeometry) throws -> NodeGeometry? {
        func both(_ f: (AxisGeometry, Int) throws -> AxisGeometry) rethrows -> NodeGeometry {
            NodeGeometry(rows: try f(g.rows, 0), cols: try f(g.cols, 1))
        }
        func pick(_ pair: (Int, Int), _ axis: Int) -> Int { axis == 0 ? pair.0 : pair.1 }
        switch layer {
        case let c as Conv2D:
            return try both { a, k in try a.window(kernel: pick(c.kernelSize, k), step: pick(c.strides, k), dilation: pick(c.dilation, k), padding: c.padding) }
        case let c as DepthwiseConv2D:
            return try both { a, k in try a.window(kernel: pick(c.kernelSize, k), step: pick(c.strides, k), dilation: pick(c.dilation, k), padding: c.padding) }
        case let c as SeparableConv2D:
            let d = c.depthwise
            return try both { a, k in try a.window(kernel: pick(d.kernelSize, k), step: pick(d.strides, k), dilation: pick(d.dilation, k), padding: d.padding) }
        case let p as Pooling2D:
            return try both { a, k in try a.window(kernel: pick(p.poolSize, k), step: pick(p.strides, k), dilation: 1, padding: p.padding) }
        case let t as Conv2DTranspose:
            return both { a, k in
                let (kernel, step, dilation) = (pick(t.kernelSize, k), pick(t.strides, k), pick(t.dilation, k))
                let w = WindowAxis.transposed(input: a.size, kernel: kernel, stride: step, dilation: dilation, padding: t.padding,
                                              outputPadding: t.outputPadding.map { pick($0, k) })
                // Output t receives input i through tap j where t = i·step − padBefore + j·dilation;
                // the kernel's centre tap puts input i at output i·step − padBefore + span/2.
                let stride = a.stride / Double(step)
                let span = Double((kernel - 1) * dilation)
                let reach = (kernel - 1) * dilation / step
                return AxisGeometry(size: w.input, stride: stride, offset: a.offset + stride * (Double(w.padBefore) - span / 2),
                                    receptiveField: a.receptiveField + reach * Int(a.stride.rounded(.up)), exact: a.exact)
            }
        case let u as UpSampling2D:
            // Pixel j of the output is centred at (j + ½)/f − ½ input pixels (half-pixel
            // centres, as Keras's nearest and bilinear resizing).
            return both { a, k in
                let f = Double(pick(u.size, k))
                let stride = a.stride / f
                return AxisGeometry(size: a.size * pick(u.size, k), stride: stride, offset: a.offset + (stride - a.stride) / 2,
                                    receptiveField: a.receptiveField + (u.interpolation == .bilinear ? Int(a.stride.rounded(.up)) : 0),
                                    exact: a.exact)
            }
        case let z as ZeroPadding2D:
            return both { a, k in
                let (before, after) = k == 0 ? z.rows : z.cols
                var out = a
                out.size += before + after
                out.offset -= Double(before) * a.stride
                out.trailingPadding += after
                return out
            }
        case let c as Cropping2D:
            return both { a, k in
                let (before, after) = k == 0 ? c.rows : c.cols
                var out = a
                out.size -= before + after
                out.offset += Double(before) * a.stride
                out.trailingPadding = max(0, out.trailingPadding - after)
                return out
            }
        case let p as Permute:
            switch p.dims {
            case [1, 2, 3]: return g
            case [2, 1, 3]: return NodeGeometry(rows: g.cols, cols: g.rows)
            default: return nil    // channels moved into space: no map of the image
            }
        case let r as Resizing:
            // Half-pixel centres: output o sits at (o + ½)·in/out − ½ of the input.
            return both { a, k in
                let out = k == 0 ? r.height : r.width
                let stride = a.stride * Double(a.size) / Double(out)
                return AxisGeometry(size: out, stride: stride, offset: a.offset + (stride - a.stride) / 2,
                                    receptiveField: a.receptiveField + Int(stride.rounded(.up)), exact: a.exact)
            }
        case let c as CenterCrop:
            return try both { a, k in
                let out = k == 0 ? c.height : c.width
                guard a.size >= out else { throw GeometryError.tooSmall(size: a.size, needed: out) }
                var g = a
                g.offset += Double((a.size - out) / 2) * a.stride
                g.size = out
                return g
            }
        case is GroupNormalization:
            // Normalised by statistics of the whole map: each pixel sees all the map sees, on the same grid.
            return both { a, _ in
                var whole = a
                whole.receptiveField = a.receptiveField + Int((Double(a.size - 1) * a.stride).rounded(.up))
                return whole
            }
        case let p as GlobalPooling2D:
            guard p.keepDims else { return nil }
            // A summary of the whole map, on no grid: stride 0 (squeeze-and-excitation
            // gates must not make the encoder's period depend on the input size).
            return both { a, _ in
                AxisGeometry(size: 1, stride: 0, offset: a.offset + a.stride * Double(a.size - 1) / 2,
                             receptiveField: a.receptiveField + Int((Double(a.size - 1) * a.stride).rounded(.up)), exact: a.exact)
            }
        case is Reshape:
            return nil
        default:
            for other in inputs where (other.rows.size != g.rows.size || other.cols.size != g.cols.size)
                && (other.rows.size != 1 || other.cols.size != 1) {
                throw EngineError.shapeMismatch(op: "\(layer.kind) '\(layer.name)'", expected: "inputs of one height and width",
                                                found: "\(g.rows.size)x\(g.cols.size) and \(other.rows.size)x\(other.cols.size)")
            }
            // A merge sees what every input sees.
            var merged = g
            for other in inputs {
                merged.rows.receptiveField = max(merged.rows.receptiveField, other.rows.receptiveField)
                merged.cols.receptiveField = max(merged.cols.receptiveField, other.cols.receptiveField)
                merged.rows.exact = merged.rows.exact && other.rows.exact
                merged.cols.exact = merged.cols.exact && other.cols.exact
            }
            return merged
        }
    }
}
