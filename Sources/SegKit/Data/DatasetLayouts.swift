import Foundation

/// What a dataset layout says about its classes, beside its files.
public struct DatasetClasses: Sendable, Equatable {
    /// Class names, indexed by class id.
    public var names: [String]
    /// The background class, when the layout has one.
    public var background: Int?
    /// The label the layout uses for pixels that belong to no class.
    public var ignoreLabel: Int32?
}

/// The standard ways segmentation datasets ship, turned into image/mask pairs.
public enum DatasetLayout {
    /// Pascal VOC 2012's 21 classes (background first, as the masks number them).
    public static let vocClassNames = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
                                       "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]

    /// A folder with `images/` (PNG or JPEG) and `masks/` (PNG), paired by file
    /// name without extension. An image without a mask is a fault of that pair.
    ///
    /// - Throws: `DataError.notFound` when `images/` or `masks/` is missing or
    ///   `images/` holds no PNG or JPEG file; Foundation's `CocoaError` when a
    ///   folder cannot be listed.
    public static func folder(_ root: String) throws -> [ImagePair] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: root + "/images"), fm.fileExists(atPath: root + "/masks") else {
            throw DataError.notFound("\(root): expected the folders images/ and masks/ (or a layout: voc:DIR, pets:DIR)")
        }
        let images = try fm.contentsOfDirectory(atPath: root + "/images")
            .filter { !$0.hasPrefix(".") && ImageFile.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
        guard !images.isEmpty else { throw DataError.notFound("\(root)/images: no PNG or JPEG images") }
        let masks = Dictionary(try fm.contentsOfDirectory(atPath: root + "/masks").filter { !$0.hasPrefix(".") }
            .map { (($0 as NSString).deletingPathExtension, $0) }, uniquingKeysWith: { a, b in a.hasSuffix(".png") ? a : b })
        return images.map { name in
            let stem = (name as NSString).deletingPathExtension
            return ImagePair(name: "images/" + name, image: "images/" + name, mask: "masks/" + (masks[stem] ?? stem + ".png"))
        }
    }

    /// Pascal VOC 2012 (`VOCdevkit/VOC2012`, or that folder itself): the names in
    /// `ImageSets/Segmentation/SPLIT.txt`, images `JPEGImages/NAME.jpg`, palette
    /// masks `SegmentationClass/NAME.png` (the palette index is the class; 255 the void border),
    /// as the PASCAL VOC 2012 development kit lays them out (Everingham et al.).
    ///
    /// - Throws: `DataError.notFound` naming what is missing.
    public static func voc(_ dir: String, split: String) throws -> (root: String, pairs: [ImagePair], classes: DatasetClasses) {
        let candidates = [dir, dir + "/VOC2012", dir + "/VOCdevkit/VOC2012"]
        guard let root = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/ImageSets/Segmentation") }) else {
            throw DataError.notFound("voc:\(dir): no ImageSets/Segmentation in \(dir), \(dir)/VOC2012 or \(dir)/VOCdevkit/VOC2012")
        }
        let names = try listFile(root + "/ImageSets/Segmentation/\(split).txt", what: "voc split '\(split)' (train, val or trainval)")
            .map { String($0.split(separator: " ").first ?? "") }
        let pairs = names.map { ImagePair(name: "JPEGImages/\($0).jpg", image: "JPEGImages/\($0).jpg", mask: "SegmentationClass/\($0).png") }
        return (root, pairs, DatasetClasses(names: vocClassNames, background: 0, ignoreLabel: 255))
    }

    /// What Oxford-IIIT Pet's border pixels (trimap value 3) become.
    public enum PetBorder: String, Sendable, CaseIterable {
        /// Ignored in the loss and the metrics (label 255): the usual choice.
        case ignore
        /// Part of the pet, or of the background.
        case pet, background
        /// A third class, "border".
        case `class`
    }

    /// Oxford-IIIT Pet: `images/NAME.jpg`, trimaps `annotations/trimaps/NAME.png`
    /// (1 pet, 2 background, 3 border), the names in `annotations/SPLIT.txt`
    /// (trainval or test; `all`: every image with a trimap), as the Oxford-IIIT
    /// Pet archives unpack (Parkhi et al., 2012). Class 0 is the pet and 1 the
    /// background, the border as `border` says; with `.class` the border is
    /// class 1 and the background class 2.
    ///
    /// - Throws: `DataError.notFound` naming what is missing; Foundation's
    ///   `CocoaError` when `annotations/trimaps` cannot be listed (split `all`).
    public static func pets(_ dir: String, split: String, border: PetBorder) throws -> (pairs: [ImagePair], encoding: MaskEncoding, classes: DatasetClasses) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: dir + "/images"), fm.fileExists(atPath: dir + "/annotations/trimaps") else {
            throw DataError.notFound("pets:\(dir): expected images/ and annotations/trimaps/ (the Oxford-IIIT Pet archives unpacked into one folder)")
        }
        let names: [String]
        if split == "all" {
            names = try fm.contentsOfDirectory(atPath: dir + "/annotations/trimaps")
                .filter { !$0.hasPrefix(".") && $0.hasSuffix(".png") }.map { String($0.dropLast(4)) }.sorted()
        } else {
            names = try listFile(dir + "/annotations/\(split).txt", what: "pets split '\(split)' (trainval, test or all)")
                .map { String($0.split(separator: " ").first ?? "") }
        }
        let pairs = names.map { ImagePair(name: "images/\($0).jpg", image: "images/\($0).jpg", mask: "annotations/trimaps/\($0).png") }
        let table: [Int32: Int32]
        var classes = DatasetClasses(names: ["pet", "background"], background: 1, ignoreLabel: nil)
        switch border {
        case .ignore: table = [1: 0, 2: 1, 3: 255]; classes.ignoreLabel = 255
        case .pet: table = [1: 0, 2: 1, 3: 0]
        case .background: table = [1: 0, 2: 1, 3: 1]
        case .class: table = [1: 0, 2: 2, 3: 1]; classes.names = ["pet", "border", "background"]; classes.background = 2
        }
        return (pairs, .remapped(table), classes)
    }

    /// The non-empty, non-comment lines of a list file.
    static func listFile(_ path: String, what: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DataError.notFound("\(path): missing (\(what))") }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { throw DataError.notFound("\(path): lists no images") }
        return lines
    }
}
