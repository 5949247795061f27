import SegKitSupport
import Foundation
import HDF5
import SegKitEngine

/// Images and per-pixel class masks of one size: images as uint8 (scaled when
/// batched) or float32, N x H x W x C; masks N x H x W class ids.
public struct SegmentationDataset: Sendable {
    /// Number of samples, N.
    public var count: Int
    /// Size of every image and mask in pixels (H, W), and the images' channels (C).
    public var height: Int, width: Int, channels: Int
    /// Raw pixel values, N·H·W·C (0…255 for 8-bit data).
    public var pixels: [Float]
    /// Class ids (or the ignore label), N·H·W, row-major.
    public var masks: [Int32]
    /// Whether `pixels` hold 0…255 integers (uint8 sources) that input scaling maps.
    public var isByteValued: Bool
    /// Where the samples came from (a file, the generator), for messages.
    public var source = "data"

    /// A dataset over `pixels` (N·H·W·C) and `masks` (N·H·W), not checked; its `source` is "data".
    public init(count: Int, height: Int, width: Int, channels: Int, pixels: [Float], masks: [Int32], isByteValued: Bool) {
        self.count = count
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.masks = masks
        self.isByteValued = isByteValued
    }

    /// H·W·C: one sample's span in `pixels`.
    public var pixelsPerImage: Int { height * width * channels }
    /// H·W: one sample's span in `masks`.
    public var labelsPerImage: Int { height * width }

    /// The masks of samples `indices`, one after another (a training batch's labels).
    public func masks(of indices: [Int]) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(indices.count * labelsPerImage)
        for i in indices { out += masks[(i * labelsPerImage)..<((i + 1) * labelsPerImage)] }
        return out
    }

    /// Samples `indices`, in that order.
    public func subset(_ indices: [Int]) -> SegmentationDataset {
        var px: [Float] = []
        px.reserveCapacity(indices.count * pixelsPerImage)
        for i in indices { px += pixels[(i * pixelsPerImage)..<((i + 1) * pixelsPerImage)] }
        var out = SegmentationDataset(count: indices.count, height: height, width: width, channels: channels, pixels: px, masks: masks(of: indices),
                                      isByteValued: isByteValued)
        out.source = source
        return out
    }

    // MARK: HDF5

    /// Reads datasets `images` (N,H,W,C or N,H,W; uint8 or float) and `masks` (N,H,W integers).
    /// Integer images are byte-valued (input scaling applies), float ones taken as scaled.
    ///
    /// - Throws: `HDF5Error` when libhdf5 cannot open the file or read either dataset
    ///   (missing, over 2³¹ elements); `DataError.badFile` when the shapes are not
    ///   (N, H, W[, C]) and (N, H, W).
    public static func readHDF5(_ path: String) throws -> SegmentationDataset {
        let root = try HDF5File(readingFrom: path).root
        let images = try root.dataset("images"), masks = try root.dataset("masks")
        var shape = try images.shape()
        if shape.count == 3 { shape.append(1) }
        guard shape.count == 4 else { throw DataError.badFile(path, "images has shape \(shape), expected (N, H, W, C)") }
        let maskShape = try masks.shape()
        guard maskShape == Array(shape.prefix(3)) else {
            throw DataError.badFile(path, "masks has shape \(maskShape), the images need \(Array(shape.prefix(3)))")
        }
        let limit = 1 << 31
        let px = try images.readFloats(limit: limit)
        let byteValued = try images.elementClass() == .integer
        let mk = try masks.readInt64s(limit: limit).map { Int32(clamping: $0) }
        var data = SegmentationDataset(count: shape[0], height: shape[1], width: shape[2], channels: shape[3], pixels: px, masks: mk,
                                       isByteValued: byteValued)
        data.source = (path as NSString).lastPathComponent
        return data
    }

    /// Writes `images` and `masks` (int64): byte-valued images as uint8, so
    /// that `readHDF5` gives them back byte-valued (input scaling applies to
    /// them, as to PNG files); others as float32, read back as already scaled.
    ///
    /// - Throws: `HDF5Error` when libhdf5 cannot write the file, `FileError` when its
    ///   folder does not exist or it cannot replace `path` (either way nothing is left
    ///   at `path`).
    public func writeHDF5(_ path: String) throws {
        try writeAtomically(path) { temp in
            let root = try HDF5File(creating: temp).root
            if isByteValued {
                try root.writeDataset("images", shape: [count, height, width, channels], bytes: pixels.map { UInt8(clamping: Int($0.rounded())) })
            } else {
                try root.writeDataset("images", shape: [count, height, width, channels], floats: pixels)
            }
            try root.writeDataset("masks", shape: [count, height, width], int64s: masks.map(Int64.init))
        }
    }
}
