import Testing
@testable import SegKitEngine

/// Hand-worked coordinate bookkeeping (FCN §3.1): pixel i of a node sits at
/// input coordinate offset + i·stride and sees receptiveField input pixels.
@Suite struct GeometryTests {
    func graph(_ layers: [Layer], size: Int = 16) throws -> (Graph, [NodeGeometry?]) {
        let g = Graph()
        var x = try g.addInput(name: "image", shape: [nil, nil, nil, 1])
        for l in layers { x = try g.add(l, inputs: [x]) }
        g.outputIndices = [x]
        return (g, try g.geometry(height: size, width: size))
    }

    func conv(_ name: String, _ k: Int, stride: Int = 1, padding: Padding = .valid, dilation: Int = 1) throws -> Conv2D {
        try Conv2D(name: name, kernel: Tensor(zeros: [k, k, 1, 1]), bias: nil, strides: (stride, stride), padding: padding, dilation: (dilation, dilation))
    }

    @Test func aStridedSameConvolutionOnAnEvenSizeCentresItsFirstPixelOnInputPixelOne() throws {
        // TensorFlow's `same` puts the one padding pixel at the end: output 0 reads input 0, 1, 2.
        let (_, g) = try graph([try conv("c", 3, stride: 2, padding: .same)])
        #expect(g[1]?.rows == AxisGeometry(size: 8, stride: 2, offset: 1, receptiveField: 3, exact: true, trailingPadding: 0))
    }

    @Test func validConvolutionsAndPoolingAddHalfTheirSpanAtEachStride() throws {
        // The keras-io MNIST convnet: 3x3 valid, 2x2/2 pool, 3x3 valid, 2x2/2 pool.
        let (_, g) = try graph([try conv("c1", 3), Pooling2D(name: "p1", .max), try conv("c2", 3), Pooling2D(name: "p2", .max)], size: 30)
        let rows = g.compactMap { $0?.rows }
        #expect(rows.map(\.size) == [30, 28, 14, 12, 6])
        #expect(rows.map(\.stride) == [1, 1, 2, 2, 4])
        #expect(rows.map(\.offset) == [0, 1, 1.5, 3.5, 4.5])
        #expect(rows.map(\.receptiveField) == [1, 3, 4, 8, 10])
        #expect(rows.allSatisfy { $0.exact })
        // At 28 the last pooling drops a column of real pixels: 11 → 5.
        let (_, g28) = try graph([try conv("c1", 3), Pooling2D(name: "p1", .max), try conv("c2", 3), Pooling2D(name: "p2", .max)], size: 28)
        #expect(g28[4]?.rows.size == 5 && g28[4]?.rows.exact == false)
    }

    @Test func zeroPaddingBeforeAValidConvolutionCountsAsPaddingNotAsDroppedPixels() throws {
        // ResNet's stem: ZeroPadding2D(3) then a 7x7/2 valid convolution, at 64.
        let (_, g) = try graph([ZeroPadding2D(name: "pad", rows: (3, 3), cols: (3, 3)), try conv("c", 7, stride: 2)], size: 64)
        #expect(g[1]?.rows.offset == -3 && g[1]?.rows.trailingPadding == 3)
        #expect(g[2]?.rows == AxisGeometry(size: 32, stride: 2, offset: 0, receptiveField: 7, exact: true, trailingPadding: 0))
    }

    @Test func dilationWidensTheReceptiveFieldNotTheStride() throws {
        let (_, g) = try graph([try conv("c", 3, padding: .same, dilation: 2)])
        #expect(g[1]?.rows.receptiveField == 5 && g[1]?.rows.stride == 1 && g[1]?.rows.offset == 0)
    }

    @Test func upsamplingAndTransposedConvolutionsDivideTheStride() throws {
        let up = try UpSampling2D(name: "up", size: (2, 2), interpolation: .bilinear)
        let t = try Conv2DTranspose(name: "t", kernel: Tensor(zeros: [3, 3, 1, 1]), bias: nil, strides: (2, 2), padding: .same)
        let (_, g) = try graph([try conv("c", 3, stride: 2, padding: .same), up, try conv("d", 3, stride: 2, padding: .same), t])
        // Half-pixel centres: output j of a 2x upsampling sits at (j + ½)/2 − ½ of its input.
        #expect(g[2]?.rows.stride == 1 && g[2]?.rows.offset == 0.5 && g[2]?.rows.size == 16)
        // A 3x3/2 `same` transposed convolution puts input i at output 2i + 1 (padBefore 0, centre tap 1).
        #expect(g[4]?.rows.stride == 1 && g[4]?.rows.offset == g[3]!.rows.offset - 1 && g[4]?.rows.size == 16)
    }

    @Test func croppingMovesTheOffsetAndAMergeOfMisalignedSizesIsAnError() throws {
        let g = Graph()
        let x = try g.addInput(name: "image", shape: [nil, nil, nil, 1])
        let a = try g.add(try conv("a", 3), inputs: [x])
        let cropped = try g.add(Cropping2D(name: "crop", rows: (1, 1), cols: (1, 1)), inputs: [x])
        let sum = try g.add(ElementwiseMerge(name: "sum", .add), inputs: [a, cropped])
        g.outputIndices = [sum]
        let geometry = try g.geometry(height: 10, width: 10)
        #expect(geometry[cropped]?.rows.offset == 1 && geometry[sum]?.rows.size == 8)
        let bad = Graph()
        let y = try bad.addInput(name: "image", shape: [nil, nil, nil, 1])
        let b = try bad.add(try conv("b", 3), inputs: [y])
        bad.outputIndices = [try bad.add(ElementwiseMerge(name: "sum", .add), inputs: [y, b])]
        #expect(throws: EngineError.self) { try bad.geometry(height: 10, width: 10) }
    }
}
