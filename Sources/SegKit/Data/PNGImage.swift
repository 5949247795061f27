import CPNG
import Foundation

/// A PNG read through libpng: grey, grey+alpha, RGB, RGBA or palette, 8 or 16 bits.
public struct PNGImage: Sendable {
    public let width: Int, height: Int
    /// Channels as stored (palette images: 1, the palette index).
    public let channels: Int
    public let bitDepth: Int
    public let isPalette: Bool
    public let samples: [UInt16]

    public static let maxPixels: UInt64 = 1 << 28

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
        isPalette = png.is_palette != 0
        samples = Array(UnsafeBufferPointer(start: png.samples, count: width * height * channels))
    }

    /// Pixel values for a network: alpha dropped (grey or RGB), 16-bit scaled to 0…255.
    public var imagePixels: (pixels: [Float], channels: Int) {
        let keep = channels == 2 ? 1 : channels == 4 ? 3 : channels
        let scale: Float = bitDepth == 16 ? 1 / 257 : 1
        var out = [Float](repeating: 0, count: width * height * keep)
        for p in 0..<(width * height) {
            for c in 0..<keep { out[p * keep + c] = Float(samples[p * channels + c]) * scale }
        }
        return (out, keep)
    }

    /// Class ids of a mask: a single-channel image's values, or a palette image's indices.
    public func maskLabels(path: String) throws -> [Int32] {
        guard channels == 1 else {
            throw DataError.badFile(path, "a mask must have one channel of class ids (or a palette), found \(channels) channels")
        }
        return samples.map { Int32($0) }
    }

    /// Writes 8-bit grey (1 channel) or RGB (3 channels) pixels.
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

extension SegmentationDataset {
    /// A folder with `images/` and `masks/` PNGs paired by file name. With
    /// `skipBad`, unreadable or mismatched pairs are skipped and counted;
    /// otherwise the first one is an error naming the file.
    public static func readPNGFolder(_ folder: String, skipBad: Bool = false) throws -> (SegmentationDataset, skipped: [String]) {
        let fm = FileManager.default
        let imagesDir = folder + "/images", masksDir = folder + "/masks"
        guard fm.fileExists(atPath: imagesDir), fm.fileExists(atPath: masksDir) else {
            throw DataError.notFound("\(folder): expected the folders images/ and masks/")
        }
        let names = try fm.contentsOfDirectory(atPath: imagesDir).filter { $0.lowercased().hasSuffix(".png") }.sorted()
        guard !names.isEmpty else { throw DataError.notFound("\(imagesDir): no PNG images") }
        var pixels: [Float] = [], masks: [Int32] = []
        var size: (Int, Int, Int)?
        var skipped: [String] = []
        for name in names {
            let imagePath = imagesDir + "/" + name, maskPath = masksDir + "/" + name
            do {
                guard fm.fileExists(atPath: maskPath) else { throw DataError.badFile(maskPath, "no mask for image \(name)") }
                let image = try PNGImage(path: imagePath), mask = try PNGImage(path: maskPath)
                guard (image.width, image.height) == (mask.width, mask.height) else {
                    throw DataError.badFile(maskPath, "mask is \(mask.width)x\(mask.height), its image \(image.width)x\(image.height)")
                }
                let (px, c) = image.imagePixels
                if let size, size != (image.height, image.width, c) {
                    throw DataError.badFile(imagePath, "is \(image.width)x\(image.height)x\(c); the folder's first image is \(size.1)x\(size.0)x\(size.2)")
                }
                let labels = try mask.maskLabels(path: maskPath)
                size = (image.height, image.width, c)
                pixels += px
                masks += labels
            } catch let error as DataError where skipBad {
                skipped.append("\(error)")
            }
        }
        guard let (h, w, c) = size else { throw DataError.notFound("\(folder): no usable image/mask pair (\(skipped.count) skipped)") }
        return (SegmentationDataset(count: masks.count / (h * w), height: h, width: w, channels: c, pixels: pixels, masks: masks,
                                    isByteValued: true), skipped)
    }
}
