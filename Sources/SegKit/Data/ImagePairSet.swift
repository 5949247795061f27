import Foundation
import SegKitEngine

/// One image file and its mask file, named relative to the data folder.
public struct ImagePair: Sendable, Equatable {
    /// The sample's name in messages and `LabelledImage.name` (the layouts use the image's path).
    public var name: String
    /// The image file (PNG or JPEG), relative to the data folder.
    public var image: String
    /// The mask file (PNG), relative to the data folder.
    public var mask: String

    /// A pair of files named relative to the data folder (not checked here: `ImagePairSet.open` does).
    public init(name: String, image: String, mask: String) {
        (self.name, self.image, self.mask) = (name, image, mask)
    }
}

/// Image/mask file pairs (PNG or JPEG images, PNG masks) of any sizes.
///
/// Opening reads every image's header and decodes every mask on worker threads
/// (every image too, with `skipBad`),
/// so each fault a pair can have (missing or unreadable file, sizes that
/// disagree, a class id the segmenter does not have, a colour image for a grey
/// segmenter) is found before training starts, with the file named. When the
/// decoded set fits `memoryBudget` bytes it is kept decoded; otherwise images are
/// decoded again whenever they are asked for (a dataset larger than memory:
/// memory then holds only the sizes and what the batches in flight need).
public final class ImagePairSet: LabelledImages, @unchecked Sendable {
    /// The folder the names are relative to.
    public let root: String
    /// The pairs kept, in the order given (with `skipBad`, the faulty ones left out).
    public let pairs: [ImagePair]
    /// Channels of every sample: the segmenter's, grey images replicated to 3 for a colour one.
    public let channels: Int
    /// Always true: PNG and JPEG pixels are 0…255 values that input scaling maps.
    public var isByteValued: Bool { true }
    /// How the masks' pixels become class ids.
    public let encoding: MaskEncoding
    /// The class ids accepted (nil: any), checked on every mask read.
    public let check: LabelCheck?
    /// Whether every sample is held decoded.
    public let inMemory: Bool
    /// How many grey images are replicated to RGB for a colour segmenter.
    public let replicatedGrey: Int
    private let sizes: [(height: Int, width: Int)]
    private let stored: [(image: DecodedImage, mask: [Int32])]

    /// Default memory for decoded samples: 2 GiB.
    public static let defaultMemoryBudget = 2 << 30

    /// Opens `pairs` under `root`.
    ///
    /// - Parameters:
    ///   - channels: the segmenter's input channels (nil: 3 if any image is colour, else 1).
    ///   - check: the class ids to accept (nil: any).
    ///   - skipBad: skip faulty pairs (returned as messages) instead of throwing at the first.
    ///   - memoryBudget: bytes the decoded set may take, H·W·(C + 4) per pair (8-bit
    ///     pixels and Int32 mask ids); above it the set is read lazily.
    /// - Throws: `DataError` naming the first faulty pair's file (without `skipBad`),
    ///   or when no usable pair is left.
    public static func open(root: String, pairs: [ImagePair], encoding: MaskEncoding, check: LabelCheck?, channels: Int?,
                            skipBad: Bool, memoryBudget: Int = defaultMemoryBudget) throws -> (ImagePairSet, skipped: [String]) {
        guard !pairs.isEmpty else { throw DataError.notFound("\(root): no image/mask pairs") }
        // Headers first: sizes, channels and agreement of each pair, cheaply.
        let headers = parallelMap(pairs) { pair -> Result<(Int, Int, Int), DataError> in
            do {
                let fm = FileManager.default
                guard fm.fileExists(atPath: root + "/" + pair.image) else { throw DataError.badFile(pair.image, "is listed but missing") }
                guard fm.fileExists(atPath: root + "/" + pair.mask) else { throw DataError.badFile(pair.image, "has no mask (expected \(pair.mask))") }
                let image = try named(pair.image) { try ImageFile.imageHeader(root + "/" + pair.image) }
                let mask = try named(pair.mask) { try ImageFile.imageHeader(root + "/" + pair.mask) }
                guard (mask.width, mask.height) == (image.width, image.height) else {
                    throw DataError.badFile(pair.mask, "is \(mask.width)x\(mask.height); its image \(pair.image) is \(image.width)x\(image.height)")
                }
                return .success((image.height, image.width, image.channels))
            } catch let e as DataError { return .failure(e) } catch { return .failure(.badFile(pair.image, "\(error)")) }
        }
        let wanted = channels ?? (headers.contains { (try? $0.get().2) == 3 } ? 3 : 1)
        let total = headers.reduce(0) { sum, h in sum + ((try? h.get()).map { $0.0 * $0.1 * (wanted + 4) } ?? 0) }
        let keep = total <= memoryBudget
        // Then every mask (and, when it all fits, every image) decoded and checked;
        // a lazily read set keeps neither (memory then holds sizes and names only).
        let decoded = parallelMap(Array(zip(pairs, headers))) { pair, header -> Result<(DecodedImage, [Int32])?, DataError> in
            do {
                let (_, _, c) = try header.get()
                if c == 3 && wanted == 1 {
                    throw DataError.badFile(pair.image, "is a colour image and this segmenter takes grey images (1 channel); "
                                            + "build the segmenter with --input-channels 3 to train on colour")
                }
                let mask = try loadMask(root: root, pair: pair, encoding: encoding, check: check)
                if keep { return .success((try loadImage(root: root, pair: pair, channels: wanted), mask)) }
                // Skipping bad pairs of a lazily read set: every image is decoded once
                // now, so that a file damaged past its header is skipped here rather
                // than found in the middle of an epoch.
                if skipBad { _ = try loadImage(root: root, pair: pair, channels: wanted) }
                return .success(nil)
            } catch let e as DataError { return .failure(e) } catch { return .failure(.badFile(pair.image, "\(error)")) }
        }
        var skipped: [String] = [], kept: [ImagePair] = [], sizes: [(Int, Int)] = [], stored: [(DecodedImage, [Int32])] = []
        var grey = 0
        for (k, result) in decoded.enumerated() {
            switch result {
            case let .failure(e):
                guard skipBad else { throw e }
                skipped.append("\(e)")
            case let .success(sample):
                let h = try headers[k].get()
                kept.append(pairs[k])
                sizes.append((h.0, h.1))
                if h.2 == 1 && wanted == 3 { grey += 1 }
                if let sample { stored.append(sample) }
            }
        }
        guard !kept.isEmpty else { throw DataError.notFound("\(root): no usable image/mask pair (\(skipped.count) skipped)") }
        let set = ImagePairSet(root: root, pairs: kept, channels: wanted, encoding: encoding, check: check, inMemory: keep,
                               replicatedGrey: grey, sizes: sizes, stored: stored)
        return (set, skipped)
    }

    private init(root: String, pairs: [ImagePair], channels: Int, encoding: MaskEncoding, check: LabelCheck?, inMemory: Bool,
                 replicatedGrey: Int, sizes: [(Int, Int)], stored: [(DecodedImage, [Int32])]) {
        self.root = root
        self.pairs = pairs
        self.channels = channels
        self.encoding = encoding
        self.check = check
        self.inMemory = inMemory
        self.replicatedGrey = replicatedGrey
        self.sizes = sizes.map { (height: $0.0, width: $0.1) }
        self.stored = stored.map { (image: $0.0, mask: $0.1) }
    }

    /// Number of pairs kept.
    public var count: Int { pairs.count }

    /// Sample `i`'s size in pixels, from its header (no decoding).
    public func size(of i: Int) -> (height: Int, width: Int) { sizes[i] }

    /// Sample `i`: held in memory, or decoded from its files when the set is read lazily.
    ///
    /// - Throws: `DataError` naming the file: it can no longer be decoded, its mask holds a
    ///   refused class id, or its size changed since the set was opened (read lazily only).
    public func sample(_ i: Int) throws -> LabelledImage {
        let pair = pairs[i]
        let (image, mask) = inMemory
            ? stored[i]
            : (try Self.loadImage(root: root, pair: pair, channels: channels), try Self.loadMask(root: root, pair: pair, encoding: encoding, check: check))
        guard (image.height, image.width) == sizes[i] else {
            throw DataError.badFile(pair.image, "changed size while SegKit was reading the data (\(image.width)x\(image.height), was \(sizes[i].width)x\(sizes[i].height))")
        }
        return LabelledImage(name: pair.name, height: image.height, width: image.width, channels: image.channels, pixels: image.pixels, mask: mask)
    }

    /// Sample `i`'s H·W class ids, without decoding its image.
    ///
    /// - Throws: `DataError` naming the mask file when it can no longer be read (read lazily only).
    public func mask(_ i: Int) throws -> [Int32] {
        inMemory ? stored[i].mask : try Self.loadMask(root: root, pair: pairs[i], encoding: encoding, check: check)
    }

    static func loadImage(root: String, pair: ImagePair, channels: Int) throws -> DecodedImage {
        let image = try named(pair.image) { try ImageFile.readImage(root + "/" + pair.image) }
        return image.channels == 1 && channels == 3 ? image.replicatedToRGB() : image
    }

    static func loadMask(root: String, pair: ImagePair, encoding: MaskEncoding, check: LabelCheck?) throws -> [Int32] {
        let mask = try named(pair.mask) { try MaskFile(path: root + "/" + pair.mask, encoding: encoding) }
        try check?.check(mask.labels, width: mask.width, name: pair.mask)
        return mask.labels
    }

    /// Runs `body`, naming its file errors by `name` (relative to the data folder) instead of the full path.
    static func named<T>(_ name: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let DataError.badFile(_, message) { throw DataError.badFile(name, message) }
    }
}

/// `transform` applied to every element on the machine's cores, results in order.
func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
    var results = [R?](repeating: nil, count: items.count)
    let lock = NSLock()
    results.withUnsafeMutableBufferPointer { out in
        let base = UncheckedSendable(out)
        DispatchQueue.concurrentPerform(iterations: items.count) { i in
            let r = transform(items[i])
            lock.lock()
            base.value[i] = r
            lock.unlock()
        }
    }
    return results.map { $0! }
}
