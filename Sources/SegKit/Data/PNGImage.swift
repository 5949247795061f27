import CPNG
import Foundation

/// A PNG read through libpng: grey, grey+alpha, RGB, RGBA or palette, 8 or 16 bits
/// (the format of the PNG specification, W3C / ISO/IEC 15948).
public struct PNGImage: Sendable {
    /// Size in pixels.
    public let width: Int, height: Int
    /// Channels as stored (palette images: 1, the palette index).
    public let channels: Int
    /// Bits per sample as read: 8 or 16 (1, 2 and 4-bit samples are unpacked to a byte each,
    /// their values kept, not scaled).
    public let bitDepth: Int
    /// Bits per sample in the file: 1, 2, 4, 8 or 16. A grey image of fewer than
    /// 8 bits is scaled to 0…255 in `decodedImage` (its samples keep the raw levels,
    /// which a mask's class ids are).
    public let fileBitDepth: Int
    /// Whether `samples` are palette indices (colour type 3) rather than values.
    public let isPalette: Bool
    /// The samples, row-major, H·W·`channels` (8-bit values widened).
    public let samples: [UInt16]
    /// A palette image's colours, RGB per entry (empty otherwise).
    public let palette: [UInt8]

    /// The largest width·height SegKit decodes, PNG or JPEG: 2²⁸ pixels, so that a small
    /// file cannot ask for gigabytes.
    public static let maxPixels: UInt64 = 1 << 28

    /// Decodes `path` (a tRNS chunk becomes an alpha channel, but on palette images).
    ///
    /// - Throws: `DataError.badFile` naming `path` and libpng's reason: not a PNG, damaged,
    ///   over `maxPixels`, or out of memory.
    public init(path: String) throws {
        var png = segkit_png()
        let status = segkit_png_read(path, Self.maxPixels, &png)
        defer { segkit_png_free(&png) }
        guard status == 0 else {
            let message = withUnsafeBytes(of: png.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw DataError.badFile(path, message.isEmpty ? "cannot be read as PNG" : message)
        }
        width = Int(png.width)
        height = Int(png.height)
        channels = Int(png.channels)
        bitDepth = Int(png.bit_depth)
        fileBitDepth = Int(png.file_bit_depth)
        isPalette = png.is_palette != 0
        palette = withUnsafeBytes(of: png.palette) { Array($0.prefix(3 * Int(png.palette_size))) }
        samples = Array(UnsafeBufferPointer(start: png.samples, count: width * height * channels))
    }

    /// Writes 8-bit grey (1 channel) or RGB (3 channels) pixels, H·W·C row-major;
    /// any other `channels` is written as grey.
    ///
    /// - Throws: `DataError.badFile` naming `path` and libpng's reason.
    public static func write(_ path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        var error = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer {
            segkit_png_write(path, UInt32(width), UInt32(height), Int32(channels), $0.baseAddress, &error, error.count)
        }
        guard status == 0 else {
            throw DataError.badFile(path, String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }
}
