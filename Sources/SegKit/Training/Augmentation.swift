import Foundation
import SegKitEngine

/// Random transformations applied identically to an image and its mask.
public enum Augmentation: String, Sendable, CaseIterable {
    /// Horizontal and vertical flips, each with probability ½.
    case flip
    /// A translation by up to an eighth of the size, borders mirrored.
    case shift
    /// U-Net's elastic deformation: random displacements (σ = 10 px) on a coarse
    /// 3x3 grid, interpolated smoothly over the image; images resampled
    /// bilinearly, masks by nearest neighbour.
    case elastic

    /// Transforms one sample in place (`pixels` H·W·C, `mask` H·W).
    static func apply(_ kinds: Set<Augmentation>, pixels: inout [Float], mask: inout [Int32],
                      height h: Int, width w: Int, channels c: Int, rng: inout SeededGenerator) {
        // Every transform is a map from output (y, x) to a source position.
        var flipY = false, flipX = false, dy = 0, dx = 0
        if kinds.contains(.flip) { flipY = rng.nextUniform() < 0.5; flipX = rng.nextUniform() < 0.5 }
        if kinds.contains(.shift) {
            dy = Int.random(in: -(h / 8)...(h / 8), using: &rng)
            dx = Int.random(in: -(w / 8)...(w / 8), using: &rng)
        }
        var grid = [Float](repeating: 0, count: 18)
        let elastic = kinds.contains(.elastic)
        if elastic { for i in 0..<18 { grid[i] = rng.nextNormal() * 10 } }
        let src = pixels, srcMask = mask
        for y in 0..<h {
            for x in 0..<w {
                var sy = Float(flipY ? h - 1 - y : y) - Float(dy), sx = Float(flipX ? w - 1 - x : x) - Float(dx)
                if elastic {
                    // Bilinear interpolation of the 3x3 displacement grid at (y, x).
                    let gy = Float(y) / Float(max(h - 1, 1)) * 2, gx = Float(x) / Float(max(w - 1, 1)) * 2
                    let y0 = min(Int(gy), 1), x0 = min(Int(gx), 1)
                    let fy = gy - Float(y0), fx = gx - Float(x0)
                    for (k, out) in [(0, 0), (9, 1)] {
                        let v00 = grid[k + y0 * 3 + x0], v01 = grid[k + y0 * 3 + x0 + 1]
                        let v10 = grid[k + (y0 + 1) * 3 + x0], v11 = grid[k + (y0 + 1) * 3 + x0 + 1]
                        let d = (1 - fy) * ((1 - fx) * v00 + fx * v01) + fy * ((1 - fx) * v10 + fx * v11)
                        if out == 0 { sy += d } else { sx += d }
                    }
                }
                let o = y * w + x
                mask[o] = srcMask[mirrorIndex(Int(sy.rounded()), h) * w + mirrorIndex(Int(sx.rounded()), w)]
                let y0 = Int(sy.rounded(.down)), x0 = Int(sx.rounded(.down))
                let fy = sy - Float(y0), fx = sx - Float(x0)
                let (r0, r1, c0, c1) = (mirrorIndex(y0, h), mirrorIndex(y0 + 1, h), mirrorIndex(x0, w), mirrorIndex(x0 + 1, w))
                for k in 0..<c {
                    let v = (1 - fy) * ((1 - fx) * src[(r0 * w + c0) * c + k] + fx * src[(r0 * w + c1) * c + k])
                        + fy * ((1 - fx) * src[(r1 * w + c0) * c + k] + fx * src[(r1 * w + c1) * c + k])
                    pixels[o * c + k] = v
                }
            }
        }
    }
}
