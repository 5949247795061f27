import Foundation

/// How a mask file's pixels become class ids.
public enum MaskEncoding: Sendable {
    /// A grey (8 or 16-bit) or palette PNG whose values are the class ids
    /// (Pascal VOC's palette masks: the palette index is the class).
    case classIds
    /// An RGB PNG whose colours code the classes (`--mask-colors`).
    case colours(MaskColours)
    /// Values mapped to class ids by a table; values outside it are refused
    /// (Oxford-IIIT Pet's trimaps: 1 pet, 2 background, 3 border).
    case remapped([Int32: Int32])
}

/// A colour → class table: `R,G,B name` per line (`#` comments and blank lines
/// skipped); line k (counting only colour lines) is class k.
public struct MaskColours: Sendable {
    /// Class names by id, in line order; a line without a name gives "class_K".
    public let names: [String]
    let classOf: [UInt32: Int32]

    /// Class k's colour as [R, G, B], for k = 0, 1, …
    public var colours: [[Int]] {
        classOf.sorted { $0.value < $1.value }.map { [Int($0.key >> 16), Int($0.key >> 8 & 0xFF), Int($0.key & 0xFF)] }
    }

    /// Reads the table at `path`.
    ///
    /// - Throws: `DataError.badFile` naming the file: it cannot be read, has no
    ///   'R,G,B name' line, or (naming the line) has a malformed line or a repeated colour.
    public init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DataError.badFile(path, "cannot be read") }
        var names: [String] = [], table: [UInt32: Int32] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                .trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty { continue }
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            let rgb = parts[0].split(separator: ",").compactMap { UInt8($0) }
            guard rgb.count == 3, parts[0].split(separator: ",").count == 3 else {
                throw DataError.badFile(path, "line \(n + 1): '\(line)' is not 'R,G,B name' with R, G, B whole numbers 0 to 255")
            }
            let key = UInt32(rgb[0]) << 16 | UInt32(rgb[1]) << 8 | UInt32(rgb[2])
            if let first = table[key] {
                throw DataError.badFile(path, "line \(n + 1): colour \(parts[0]) is already class \(first) (\(names[Int(first)]))")
            }
            table[key] = Int32(names.count)
            names.append(parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "class_\(names.count)")
        }
        guard !names.isEmpty else { throw DataError.badFile(path, "no 'R,G,B name' lines") }
        self.names = names
        self.classOf = table
    }
}

/// A mask read into class ids.
public struct MaskFile: Sendable {
    /// Size of the mask in pixels.
    public let width: Int, height: Int
    /// H·W class ids.
    public let labels: [Int32]

    /// Reads `path` (PNG only: JPEG's lossy compression invents values at every
    /// edge, and a mask's values are class ids) by `encoding`.
    ///
    /// - Throws: `DataError.badFile` naming the file and, for a bad value, the pixel.
    public init(path: String, encoding: MaskEncoding) throws {
        if try ImageFile.format(of: path) == .jpeg {
            throw DataError.badFile(path, "is a JPEG mask; masks must be lossless (PNG): JPEG compression invents class ids at every edge")
        }
        let png = try PNGImage(path: path)
        (width, height) = (png.width, png.height)
        switch encoding {
        case .classIds:
            guard png.channels == 1 || png.channels == 2 else {
                throw DataError.badFile(path, "is an RGB mask; a mask holds one class id per pixel (grey or palette PNG), "
                                        + "or give --mask-colors FILE ('R,G,B name' per line) to map its colours to classes")
            }
            let step = png.channels
            labels = (0..<(width * height)).map { Int32(png.samples[$0 * step]) }
        case let .remapped(table):
            guard png.channels == 1 else { throw DataError.badFile(path, "expected a one-channel mask, found \(png.channels) channels") }
            var out = [Int32](repeating: 0, count: width * height)
            for p in 0..<(width * height) {
                guard let id = table[Int32(png.samples[p])] else {
                    throw DataError.badFile(path, "value \(png.samples[p]) at (row \(p / width), column \(p % width)) is not one of "
                                            + table.keys.sorted().map(String.init).joined(separator: ", "))
                }
                out[p] = id
            }
            labels = out
        case let .colours(colours):
            let image = png.decodedImage
            guard image.channels == 3, case let .bytes(rgb) = image.storage else {
                throw DataError.badFile(path, "--mask-colors needs an 8-bit RGB (or palette) mask, found \(image.channels) channel(s)")
            }
            var out = [Int32](repeating: 0, count: width * height)
            for p in 0..<(width * height) {
                let key = UInt32(rgb[3 * p]) << 16 | UInt32(rgb[3 * p + 1]) << 8 | UInt32(rgb[3 * p + 2])
                guard let id = colours.classOf[key] else {
                    throw DataError.badFile(path, "colour \(rgb[3 * p]),\(rgb[3 * p + 1]),\(rgb[3 * p + 2]) at (row \(p / width), column \(p % width)) "
                                            + "is not in --mask-colors")
                }
                out[p] = id
            }
            labels = out
        }
    }
}

/// Which class ids a segmenter accepts: 0 to `classes` − 1, and the ignore label.
public struct LabelCheck: Sendable {
    /// Number of classes: ids 0 to `classes` − 1 are accepted.
    public let classes: Int
    /// The one other id accepted (pixels left out of the loss and the metrics), e.g. VOC's 255.
    public let ignoreLabel: Int32?

    /// Accepts ids 0 to `classes` − 1 and `ignoreLabel`.
    public init(classes: Int, ignoreLabel: Int32?) {
        self.classes = classes
        self.ignoreLabel = ignoreLabel
    }

    /// Checks a mask of H·W ids, `width` per row (for the row and column in the message).
    ///
    /// - Throws: `DataError.badSample` naming `name`, the first bad pixel, its value
    ///   and the options that fix it.
    public func check(_ labels: [Int32], width: Int, name: String) throws {
        guard let p = labels.firstIndex(where: { ($0 < 0 || Int($0) >= classes) && $0 != ignoreLabel }) else { return }
        let v = labels[p]
        let hint = (ignoreLabel == nil ? "; if \(v) marks pixels to leave out (Pascal VOC's 255 does), give --ignore-label \(v)"
                                       : " nor the ignore label \(ignoreLabel!)")
            + (v >= Int32(classes) && v < 1024 ? "; if it is a class, the segmenter needs at least \(v + 1) classes (segkit build --classes)" : "")
        throw DataError.badSample(name, "class id \(v) at (row \(p / width), column \(p % width)) is not a class of this segmenter "
                                  + "(0 to \(classes - 1))\(hint)")
    }
}
