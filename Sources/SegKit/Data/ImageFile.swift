import Foundation

/// An image for a network, from a PNG or JPEG file: grey (1 channel) or RGB (3),
/// alpha dropped, palette images expanded to their colours, values 0…255
/// (16-bit PNGs scaled by 1/257, so not always whole numbers).
public struct DecodedImage: Sendable {
    /// Size in pixels, and 1 (grey) or 3 (RGB) channels.
    public let width: Int, height: Int, channels: Int
    /// H·W·C values, stored compactly: 8-bit sources as bytes.
    public let storage: PixelStorage

    /// H·W·C values, row-major: `bytes` for 8-bit sources, `floats` for 16-bit PNGs scaled by 1/257.
    public enum PixelStorage: Sendable {
        case bytes([UInt8])
        case floats([Float])
    }

    /// An image whose `storage` holds `height`·`width`·`channels` values (not checked).
    public init(width: Int, height: Int, channels: Int, storage: PixelStorage) {
        (self.width, self.height, self.channels, self.storage) = (width, height, channels, storage)
    }

    /// The values as floats, H·W·C.
    public var pixels: [Float] {
        switch storage {
        case let .bytes(b): return b.map(Float.init)
        case let .floats(f): return f
        }
    }

    /// A grey image repeated into 3 channels (what Keras users do with
    /// `tf.image.grayscale_to_rgb` to feed an RGB encoder).
    public func replicatedToRGB() -> DecodedImage {
        guard channels == 1 else { return self }
        switch storage {
        case let .bytes(b): return DecodedImage(width: width, height: height, channels: 3, storage: .bytes(b.flatMap { [$0, $0, $0] }))
        case let .floats(f): return DecodedImage(width: width, height: height, channels: 3, storage: .floats(f.flatMap { [$0, $0, $0] }))
        }
    }
}

/// Reading image and mask files by their content (PNG or JPEG signature), not their name.
public enum ImageFile {
    /// The formats SegKit reads, told apart by signature: PNG's 89 50 4E 47, JPEG's SOI marker FF D8 FF.
    public enum Format: Sendable { case png, jpeg }

    /// The format of `path` from its first bytes.
    ///
    /// - Throws: `DataError.badFile` when it is neither PNG nor JPEG or cannot be opened.
    public static func format(of path: String) throws -> Format {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw DataError.badFile(path, "cannot be opened") }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return .png }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        throw DataError.badFile(path, "is neither a PNG nor a JPEG file")
    }

    /// File extensions SegKit looks for in image folders.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Decodes an image for a network.
    ///
    /// - Throws: `DataError.badFile` naming `path`: unreadable, damaged, CMYK, too large.
    public static func readImage(_ path: String) throws -> DecodedImage {
        switch try format(of: path) {
        case .jpeg:
            let j = try JPEGImage(path: path)
            return DecodedImage(width: j.width, height: j.height, channels: j.channels, storage: .bytes(j.samples))
        case .png:
            return try PNGImage(path: path).decodedImage
        }
    }

    /// Display width, height and channels (after alpha is dropped and a palette
    /// expanded) from the file's header, without decoding pixels.
    ///
    /// - Throws: `DataError.badFile` naming `path`.
    public static func imageHeader(_ path: String) throws -> (width: Int, height: Int, channels: Int) {
        switch try format(of: path) {
        case .jpeg: return try JPEGImage.header(path: path)
        case .png:
            let h = try pngHeader(path)
            return (h.width, h.height, h.colourType == 0 || h.colourType == 4 ? 1 : 3)
        }
    }

    /// Width, height and colour type from a PNG's IHDR chunk (PNG spec, 11.2.2).
    static func pngHeader(_ path: String) throws -> (width: Int, height: Int, colourType: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw DataError.badFile(path, "cannot be opened") }
        defer { try? handle.close() }
        let b = [UInt8]((try? handle.read(upToCount: 26)) ?? Data())
        guard b.count == 26, Array(b[12..<16]) == Array("IHDR".utf8) else { throw DataError.badFile(path, "corrupt PNG header") }
        func u32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        return (u32(16), u32(20), Int(b[25]))
    }
}

extension PNGImage {
    /// The image for a network: alpha dropped, palette expanded to RGB, 16-bit
    /// scaled to 0…255, and 1-, 2- and 4-bit grey levels scaled to 0…255 by
    /// 255 / (2^bits − 1), as the PNG specification's sample depth scaling
    /// (section 12.5) and Pillow's decoder do.
    public var decodedImage: DecodedImage {
        if isPalette {
            var out = [UInt8](repeating: 0, count: width * height * 3)
            for p in 0..<(width * height) {
                let i = Int(samples[p])
                for c in 0..<3 where i < palette.count / 3 { out[p * 3 + c] = palette[i * 3 + c] }
            }
            return DecodedImage(width: width, height: height, channels: 3, storage: .bytes(out))
        }
        let keep = channels == 2 ? 1 : channels == 4 ? 3 : channels
        if bitDepth == 16 {
            var out = [Float](repeating: 0, count: width * height * keep)
            for p in 0..<(width * height) { for c in 0..<keep { out[p * keep + c] = Float(samples[p * channels + c]) / 257 } }
            return DecodedImage(width: width, height: height, channels: keep, storage: .floats(out))
        }
        // Exact for 1, 2 and 4 bits: 255 is divisible by 1, 3 and 15.
        let scale = fileBitDepth < 8 ? UInt16(255 / ((1 << fileBitDepth) - 1)) : 1
        var out = [UInt8](repeating: 0, count: width * height * keep)
        for p in 0..<(width * height) { for c in 0..<keep { out[p * keep + c] = UInt8(truncatingIfNeeded: samples[p * channels + c] * scale) } }
        return DecodedImage(width: width, height: height, channels: keep, storage: .bytes(out))
    }
}
