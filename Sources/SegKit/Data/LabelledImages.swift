import Foundation

/// One image and its mask, of any size.
public struct LabelledImage: Sendable {
    /// Where it came from, for messages: a file relative to the data folder, or "sample N".
    public var name: String
    /// Size of the image and of its mask in pixels, and the image's channels (1 grey, 3 RGB).
    public var height: Int, width: Int, channels: Int
    /// Raw values, H·W·C (0…255 for 8-bit sources, before input scaling).
    public var pixels: [Float]
    /// H·W class ids (or the ignore label).
    public var mask: [Int32]

    /// A sample; `pixels` holds H·W·C values and `mask` H·W ids (not checked).
    public init(name: String, height: Int, width: Int, channels: Int, pixels: [Float], mask: [Int32]) {
        (self.name, self.height, self.width, self.channels, self.pixels, self.mask) = (name, height, width, channels, pixels, mask)
    }
}

/// A labelled set: images with masks, of one size or of many, held in memory or
/// decoded when asked for. Every training, evaluation and comparison loop reads
/// data through this, so each works on every source.
public protocol LabelledImages: Sendable {
    /// Number of samples.
    var count: Int { get }
    /// Channels of every image (grey images of a colour set come replicated).
    var channels: Int { get }
    /// Whether pixels are 0…255 values (8-bit sources) that input scaling maps.
    var isByteValued: Bool { get }
    /// (height, width) of sample `i`, known without decoding it.
    func size(of i: Int) -> (height: Int, width: Int)
    /// Sample `i`.
    ///
    /// - Throws: `DataError` naming the file when it cannot be decoded.
    func sample(_ i: Int) throws -> LabelledImage
    /// Sample `i`'s mask alone (class weights, statistics: no image decoding).
    ///
    /// - Throws: `DataError` naming the file when it cannot be read.
    func mask(_ i: Int) throws -> [Int32]
    /// Samples `indices`, in that order.
    func selecting(_ indices: [Int]) -> any LabelledImages
}

extension LabelledImages {
    /// Sample `i`'s mask, by decoding the whole sample (sets that can read a mask alone
    /// implement it themselves).
    ///
    /// - Throws: what `sample(_:)` throws (`DataError`).
    public func mask(_ i: Int) throws -> [Int32] { try sample(i).mask }

    /// Samples `indices`, in that order, as a `LabelledSubset` of this set (nothing copied).
    public func selecting(_ indices: [Int]) -> any LabelledImages { LabelledSubset(base: self, indices: indices) }

    /// The first `n` samples (the labelled-set sizes of a comparison).
    public func first(_ n: Int) -> any LabelledImages { selecting(Array(0..<min(n, count))) }

    /// The one size of every sample, or nil when sizes differ.
    public var uniformSize: (height: Int, width: Int)? {
        guard count > 0 else { return nil }
        let s = size(of: 0)
        return (1..<count).allSatisfy { size(of: $0) == s } ? s : nil
    }

    /// The distinct sizes, most frequent first, with their counts.
    public var sizeCounts: [(height: Int, width: Int, count: Int)] {
        var counts: [Int: Int] = [:]
        for i in 0..<count { let s = size(of: i); counts[s.height << 32 | s.width, default: 0] += 1 }
        return counts.map { ($0.key >> 32, $0.key & 0xFFFF_FFFF, $0.value) }
            .sorted { ($0.count, $1.height, $1.width) > ($1.count, $0.height, $0.width) }
    }
}

/// Some samples of another set, by index.
public struct LabelledSubset: LabelledImages {
    /// The set the samples come from.
    public let base: any LabelledImages
    /// Indices into `base`, in this set's order.
    public let indices: [Int]
    /// Number of samples selected.
    public var count: Int { indices.count }
    /// Channels of every image (1 or 3), as in `base`.
    public var channels: Int { base.channels }
    /// Whether `base`'s pixels are 0…255 values.
    public var isByteValued: Bool { base.isByteValued }
    /// The size of `base`'s sample `indices[i]`, in pixels.
    public func size(of i: Int) -> (height: Int, width: Int) { base.size(of: indices[i]) }
    /// `base`'s sample `indices[i]`.
    ///
    /// - Throws: what `base` throws (`DataError`).
    public func sample(_ i: Int) throws -> LabelledImage { try base.sample(indices[i]) }
    /// `base`'s mask of sample `indices[i]`.
    ///
    /// - Throws: what `base` throws (`DataError`).
    public func mask(_ i: Int) throws -> [Int32] { try base.mask(indices[i]) }
    /// Samples `more` (indices into this subset) as one subset of `base`, not a subset of a subset.
    public func selecting(_ more: [Int]) -> any LabelledImages { LabelledSubset(base: base, indices: more.map { indices[$0] }) }
}

extension SegmentationDataset: LabelledImages {
    /// Every sample's size: (`height`, `width`) pixels.
    public func size(of i: Int) -> (height: Int, width: Int) { (height, width) }

    /// Sample `i`, copied out of `pixels` and `masks`, named "SOURCE sample i".
    ///
    /// - Throws: never: the samples are in memory (an `i` out of range traps).
    public func sample(_ i: Int) throws -> LabelledImage {
        LabelledImage(name: "\(source) sample \(i)", height: height, width: width, channels: channels,
                      pixels: Array(pixels[(i * pixelsPerImage)..<((i + 1) * pixelsPerImage)]),
                      mask: Array(masks[(i * labelsPerImage)..<((i + 1) * labelsPerImage)]))
    }

    /// Sample `i`'s H·W class ids, copied out of `masks`.
    ///
    /// - Throws: never: the masks are in memory (an `i` out of range traps).
    public func mask(_ i: Int) throws -> [Int32] { Array(masks[(i * labelsPerImage)..<((i + 1) * labelsPerImage)]) }

    /// Samples `indices` copied into a new `SegmentationDataset` (`subset(_:)`).
    public func selecting(_ indices: [Int]) -> any LabelledImages { subset(indices) }
}
