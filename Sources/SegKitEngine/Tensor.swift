import Foundation

/// A dense float32 tensor in row-major order; images are NHWC.
///
/// Storage is a Swift array, so copies are copy-on-write: passing a tensor
/// around is cheap and a kernel that writes into one copy never disturbs
/// another. Kernels take the buffer pointer once (`withUnsafeBufferPointer`)
/// and index it directly, so hot loops carry no per-element bounds checks.
public struct Tensor: Sendable, Equatable {
    /// The dimensions, outermost first (`[N, H, W, C]` for an image batch).
    public private(set) var shape: [Int]
    /// The elements in row-major order; `count` is the product of `shape`.
    public var scalars: [Float]

    /// Number of elements.
    public var count: Int { scalars.count }
    /// Number of dimensions (4 for an NHWC batch).
    public var rank: Int { shape.count }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.scalars = [Float](repeating: 0, count: Tensor.elementCount(shape))
    }

    /// A tensor of `shape` with every element `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.shape = shape
        self.scalars = [Float](repeating: value, count: Tensor.elementCount(shape))
    }

    /// Wraps `scalars`, which must hold exactly `shape`'s element count.
    /// - Throws: `EngineError.shapeMismatch` when a dimension is negative or the
    ///   count differs.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), Tensor.elementCount(shape) == scalars.count else {
            throw EngineError.shapeMismatch(
                op: "Tensor", expected: "\(Tensor.elementCount(shape)) scalars for shape \(shape)",
                found: "\(scalars.count) scalars")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// Internal initialiser for kernels that already know the count matches.
    init(uncheckedShape shape: [Int], scalars: [Float]) {
        assert(Tensor.elementCount(shape) == scalars.count)
        self.shape = shape
        self.scalars = scalars
    }

    /// Wraps `scalars` that the caller built for `shape` (checked in debug builds).
    public static func assembled(shape: [Int], scalars: [Float]) -> Tensor {
        Tensor(uncheckedShape: shape, scalars: scalars)
    }

    /// A tensor whose elements are written once by `fill` (no zeroing pass);
    /// `fill` must write every element.
    public static func uninitialized(
        shape: [Int], _ fill: (UnsafeMutableBufferPointer<Float>) -> Void
    ) -> Tensor {
        let n = elementCount(shape)
        let scalars = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            fill(buffer)
            initialized = n
        }
        return Tensor(uncheckedShape: shape, scalars: scalars)
    }

    /// The product of `shape`, saturating at Int.max (a hostile file's shape must
    /// give a mismatch error, never an arithmetic trap).
    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return Int.max }
            n = p
        }
        return n
    }

    /// The same elements under another shape of equal element count (no copy:
    /// the storage is shared copy-on-write).
    /// - Throws: `EngineError.shapeMismatch` when the counts differ or a dimension
    ///   is negative.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard Tensor.elementCount(newShape) == count, newShape.allSatisfy({ $0 >= 0 }) else {
            throw EngineError.shapeMismatch(
                op: "reshape", expected: "a shape with \(count) elements", found: "\(newShape)")
        }
        return Tensor(uncheckedShape: newShape, scalars: scalars)
    }

    /// Reshape that the caller has already validated.
    func reshapedUnchecked(_ newShape: [Int]) -> Tensor {
        Tensor(uncheckedShape: newShape, scalars: scalars)
    }

    /// The element at row-major position `index` (0 ..< `count`; traps outside).
    public subscript(flat index: Int) -> Float {
        get { scalars[index] }
        set { scalars[index] = newValue }
    }

    /// NHWC view of a rank-4 tensor's dimensions.
    public var nhwc: (n: Int, h: Int, w: Int, c: Int) {
        precondition(shape.count == 4, "nhwc on a rank-\(shape.count) tensor")
        return (shape[0], shape[1], shape[2], shape[3])
    }

    /// Adds `other` element by element (shapes must match; used to accumulate gradients).
    mutating func add(_ other: Tensor) {
        precondition(shape == other.shape, "accumulating \(other.shape) into \(shape)")
        scalars.withUnsafeMutableBufferPointer { a in
            other.scalars.withUnsafeBufferPointer { b in
                let (aa, bb) = (UncheckedSendable(a), UncheckedSendable(b))
                Parallel.forEachRange(a.count, minimumPerWorker: 1 << 16) { r in for i in r { aa.value[i] += bb.value[i] } }
            }
        }
    }
}

extension Tensor: CustomStringConvertible {
    /// The shape and the first eight elements, e.g. "Tensor([1, 2, 2, 3]: [0, 1, …])".
    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(preview)\(count > 8 ? ", …" : "")])"
    }
}

extension Optional where Wrapped == [Float] {
    /// The values' base address for C code (nil when there are none), valid
    /// inside `body`: an optional bias or weight list handed to CKernels.
    func withBaseAddress<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let values = self else { return body(nil) }
        return values.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
