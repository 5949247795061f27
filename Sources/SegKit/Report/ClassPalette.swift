import SegKitSupport
import Foundation

/// Distinct colours per class for overlays, legends and reports; the
/// background class is drawn as the image itself.
public struct ClassPalette: Sendable {
    /// Number of classes K; a label outside 0..<K (an ignored pixel) is drawn white.
    public let classes: Int
    /// The class an overlay leaves as the image itself; black in legends.
    public let background: Int

    /// A palette of `classes` classes with `background` as the background class.
    public init(classes: Int, background: Int) {
        self.classes = classes
        self.background = background
    }

    static let base: [(UInt8, UInt8, UInt8)] = [
        (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
        (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40), (128, 0, 0),
    ]

    /// The colour of class `c` as (R, G, B) bytes: one of 14 distinct colours (repeating
    /// beyond 14 classes), black for `background`, white for a label that is no class (an
    /// ignored pixel of a ground-truth mask).
    public func color(_ c: Int) -> (UInt8, UInt8, UInt8) {
        c == background ? (0, 0, 0) : c < 0 || c >= classes ? (255, 255, 255) : Self.base[c % Self.base.count]
    }

    /// `color(c)` as "#rrggbb", for HTML and SVG.
    public func hex(_ c: Int) -> String {
        let (r, g, b) = color(c)
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    /// The image (grey or RGB, 0…255) with each non-background pixel blended half-way to its class colour:
    /// `pixels` H·W·`channels`, `labels` H·W; the result is H·W·3 RGB bytes.
    public func overlay(pixels: [Float], channels: Int, labels: [Int]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: labels.count * 3)
        for p in 0..<labels.count {
            for k in 0..<3 {
                let v = pixels[p * channels + (channels >= 3 ? k : 0)]
                let base = min(max(v, 0), 255)
                if labels[p] == background {
                    out[p * 3 + k] = UInt8(base)
                } else {
                    let c = [color(labels[p]).0, color(labels[p]).1, color(labels[p]).2][k]
                    out[p * 3 + k] = UInt8((base + Float(c)) / 2)
                }
            }
        }
        return out
    }

    /// legend.txt (id, colour, name) and legend.png (one 24-pixel swatch per class, in order).
    /// Classes without a name in `names` are called "class_K".
    ///
    /// - Throws: `FileError` when a file cannot be written or replaced in `folder`,
    ///   `DataError.badFile` when libpng cannot write the PNG, Foundation's `CocoaError`
    ///   when the text cannot be written.
    public func writeLegend(folder: String, names: [String]) throws {
        let text = (0..<classes).map { "\($0)\t\(hex($0))\t\($0 < names.count ? names[$0] : "class_\($0)")" }.joined(separator: "\n") + "\n"
        try writeAtomically(folder + "/legend.txt") { try text.write(toFile: $0, atomically: false, encoding: .utf8) }
        var swatches = [UInt8](repeating: 255, count: 24 * 24 * classes * 3)
        for c in 0..<classes {
            let (r, g, b) = color(c)
            for y in 2..<22 { for x in (c * 24 + 2)..<(c * 24 + 22) {
                let o = (y * 24 * classes + x) * 3
                swatches[o] = r; swatches[o + 1] = g; swatches[o + 2] = b
            } }
        }
        try writeAtomically(folder + "/legend.png") { try PNGImage.write($0, width: 24 * classes, height: 24, channels: 3, pixels: swatches) }
    }
}
