import CJPEG
import Foundation

/// A JPEG read through libjpeg-turbo: grey or colour (YCbCr decoded to RGB),
/// baseline or progressive, in display orientation (the EXIF Orientation tag
/// applied as Pillow's `ImageOps.exif_transpose` does). CMYK/YCCK files, damaged
/// data (libjpeg's warnings included: it would fill the gap with grey) and
/// images over `PNGImage.maxPixels` are refused.
public struct JPEGImage: Sendable {
    /// Display size in pixels (after the EXIF orientation: a rotated photo's are swapped).
    public let width: Int, height: Int
    /// 1 (grey) or 3 (RGB).
    public let channels: Int
    /// The EXIF orientation that was applied (1: none).
    public let orientation: Int
    /// Whether the file is progressive JPEG (rather than baseline or extended sequential).
    public let isProgressive: Bool
    /// 8-bit samples, row-major, H·W·C.
    public let samples: [UInt8]

    /// Decodes `path` (JPEG, ITU-T T.81, in a JFIF or Exif file) to 8-bit
    /// samples, H·W·C, with the EXIF orientation applied.
    ///
    /// - Throws: `DataError.badFile` naming `path` and libjpeg's reason.
    public init(path: String) throws {
        var jpeg = segkit_jpeg()
        let status = segkit_jpeg_read(path, PNGImage.maxPixels, &jpeg)
        defer { segkit_jpeg_free(&jpeg) }
        guard status == 0 else { throw DataError.badFile(path, Self.message(jpeg.error, or: "cannot be read as JPEG")) }
        width = Int(jpeg.width)
        height = Int(jpeg.height)
        channels = Int(jpeg.channels)
        orientation = Int(jpeg.orientation)
        isProgressive = jpeg.progressive != 0
        samples = Array(UnsafeBufferPointer(start: jpeg.samples, count: width * height * channels))
    }

    /// Display size and channels from the header alone (no pixels decoded).
    ///
    /// - Throws: `DataError.badFile` for a damaged header or a CMYK file.
    public static func header(path: String) throws -> (width: Int, height: Int, channels: Int) {
        var w: UInt32 = 0, h: UInt32 = 0, c: Int32 = 0
        var error = [CChar](repeating: 0, count: 256)
        guard segkit_jpeg_size(path, &w, &h, &c, &error, error.count) == 0 else {
            throw DataError.badFile(path, String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return (Int(w), Int(h), Int(c))
    }

    private static func message<T>(_ tuple: T, or fallback: String) -> String {
        let text = withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return text.isEmpty ? fallback : text
    }
}
