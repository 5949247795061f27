import Foundation

/// Where `--data` comes from: an HDF5 file (`images`, `masks`), a folder of
/// image/mask pairs, a named layout (`voc:DIR[:SPLIT]`, `pets:DIR[:SPLIT][:border=B]`),
/// or the generated running example, `fashion-canvas:` with optional settings
/// `count=N,size=S,items=A-B,split=train|test,seed=K,overlap=yes`.
public enum DataSource: Sendable {
    /// An HDF5 file with the datasets `images` and `masks` (`SegmentationDataset.readHDF5`): its path.
    case hdf5(String)
    /// A folder of `images/` and `masks/` paired by file name (`DatasetLayout.folder`): its path.
    case folder(String)
    /// PASCAL VOC 2012 (`DatasetLayout.voc`): the folder and the split (train, val or trainval; default train).
    case voc(String, split: String)
    /// Oxford-IIIT Pet (`DatasetLayout.pets`): the folder, the split (trainval, test or all; default
    /// trainval) and what the trimaps' border pixels become (default: ignored).
    case pets(String, split: String, border: DatasetLayout.PetBorder)
    /// The generated running example, with the settings given after `fashion-canvas:`.
    case fashionCanvas(FashionCanvas)

    /// Reads a `--data` value: `fashion-canvas[:SETTINGS]`, `voc:DIR[:SPLIT]`,
    /// `pets:DIR[:SPLIT][:border=B]`, else the path of a folder (image/mask pairs)
    /// or of a file (HDF5). A plain path must exist; a layout's files are checked
    /// by `open(_:)`. `fashionFolder` is where the Fashion-MNIST IDX files
    /// are (`--fashion-dir`; nil: `FashionCanvas.defaultFolder()`).
    ///
    /// - Throws: `SpecError` quoting the bad part of `text`, `DataError.notFound`
    ///   for a file or folder that is not there.
    public static func parse(_ text: String, fashionFolder: String? = nil) throws -> DataSource {
        if text == "fashion-canvas" || text.hasPrefix("fashion-canvas:") {
            var canvas = FashionCanvas()
            canvas.folder = fashionFolder
            let spec = OptionSpec("--data", text)
            let settings = String(text.dropFirst("fashion-canvas".count).drop { $0 == ":" })
            for item in settings.isEmpty ? [] : try spec.items(of: settings) {
                let (key, value) = try spec.setting(item)
                switch key {
                case "count": canvas.count = try spec.int(value, in: 1...1_000_000, "a canvas count")
                case "size": canvas.canvasSize = try spec.int(value, in: 28...4096, "a canvas size (pixels)")
                case "seed": canvas.seed = UInt64(try spec.int(value, in: 0...Int.max, "a seed"))
                case "split":
                    guard let s = FashionCanvas.Split(rawValue: value) else { throw spec.fail(item, "is not split=train or split=test") }
                    canvas.split = s
                case "items":
                    let (a, b) = try spec.range(value)
                    canvas.minItems = try spec.int(a, in: 1...64, "an item count")
                    canvas.maxItems = try spec.int(b, in: canvas.minItems...64, "an item count at least \(canvas.minItems)")
                case "overlap":
                    guard ["yes", "no", "true", "false", "1", "0"].contains(value) else { throw spec.fail(item, "is not overlap=yes or overlap=no") }
                    canvas.allowOverlap = ["yes", "true", "1"].contains(value)
                default: throw spec.fail(key, "is no fashion-canvas setting (count, size, items, split, seed, overlap)")
                }
            }
            return .fashionCanvas(canvas)
        }
        if text.hasPrefix("voc:") {
            let parts = text.dropFirst(4).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2, !parts[0].isEmpty else { throw OptionSpec("--data", text).fail(text, "is not voc:DIR or voc:DIR:SPLIT (train, val, trainval)") }
            return .voc(parts[0], split: parts.count > 1 ? parts[1] : "train")
        }
        if text.hasPrefix("pets:") {
            let parts = text.dropFirst(5).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            let spec = OptionSpec("--data", text)
            guard !parts[0].isEmpty else { throw spec.fail(text, "is not pets:DIR[:SPLIT][:border=ignore|pet|background|class]") }
            var split = "trainval", border = DatasetLayout.PetBorder.ignore
            for part in parts.dropFirst() {
                if part.hasPrefix("border=") {
                    guard let b = DatasetLayout.PetBorder(rawValue: String(part.dropFirst(7))) else {
                        throw spec.fail(part, "is not border=ignore, pet, background or class")
                    }
                    border = b
                } else if ["trainval", "test", "all"].contains(part) {
                    split = part
                } else {
                    throw spec.fail(part, "is not a pets split (trainval, test, all) nor border=ignore|pet|background|class")
                }
            }
            return .pets(parts[0], split: split, border: border)
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: text, isDirectory: &isFolder) else {
            throw DataError.notFound("--data \(text): no such file or folder (or a layout: voc:DIR, pets:DIR, fashion-canvas:…)")
        }
        return isFolder.boolValue ? .folder(text) : .hdf5(text)
    }

    /// Opens the data for a segmenter: every mask checked against
    /// `request.classes`, grey images repeated into 3 channels for a colour
    /// segmenter, faulty samples left out with `request.skipBad`; a folder whose
    /// decoded samples exceed `request.memoryBudget` bytes is read lazily.
    ///
    /// - Throws: `DataError` naming the file (relative to the data folder), the
    ///   sample or pixel, the value found and the option that fixes it;
    ///   `HDF5Error` when libhdf5 cannot read an HDF5 source or it lacks `images`
    ///   or `masks`; Foundation's `CocoaError` when a layout's folder cannot be listed.
    public func open(_ request: DataRequest) throws -> LoadedData {
        var classes: DatasetClasses?
        if request.maskColours != nil, !({ if case .folder = self { return true }; return false }()) {
            throw DataError.notFound("--mask-colors applies to a folder of images/ and masks/; the masks of voc:, pets:, HDF5 and fashion-canvas data hold class ids")
        }
        switch self {
        case let .hdf5(path):
            return try LoadedData.inMemory(try SegmentationDataset.readHDF5(path), request: request)
        case let .fashionCanvas(spec):
            var data = try spec.generate()
            data.source = "fashion-canvas"
            return try LoadedData.inMemory(data, request: request,
                                           classes: DatasetClasses(names: FashionCanvas.classNames, background: Int(FashionCanvas.background)))
        case let .folder(root):
            let encoding: MaskEncoding = try request.maskColours.map { .colours(try MaskColours(path: $0)) } ?? .classIds
            if case let .colours(c) = encoding { classes = DatasetClasses(names: c.names, background: c.names.firstIndex(of: "background")) }
            return try LoadedData.files(root: root, pairs: try DatasetLayout.folder(root), encoding: encoding, classes: classes, request: request)
        case let .voc(dir, split):
            let (root, pairs, c) = try DatasetLayout.voc(dir, split: split)
            return try LoadedData.files(root: root, pairs: pairs, encoding: .classIds, classes: c, request: request)
        case let .pets(dir, split, border):
            let (pairs, encoding, c) = try DatasetLayout.pets(dir, split: split, border: border)
            return try LoadedData.files(root: dir, pairs: pairs, encoding: encoding, classes: c, request: request)
        }
    }
}

/// What the command asks of the data: the segmenter's classes and channels,
/// the labels to accept, how to treat faults.
public struct DataRequest: Sendable {
    /// The segmenter's class count (nil: accept any id).
    public var classes: Int?
    /// The segmenter's input channels (nil: the data's).
    public var channels: Int?
    /// `--ignore-label` (nil: the layout's, e.g. VOC's 255).
    public var ignoreLabel: Int32?
    /// `--mask-colors`: the path of a colour → class table (`MaskColours`) for a folder of
    /// RGB masks; nil: mask pixels are class ids.
    public var maskColours: String?
    /// `--skip-bad`: leave faulty samples out (listed in `LoadedData.skipped`) instead of
    /// throwing at the first.
    public var skipBad = false
    /// Memory, in bytes, for decoded samples before a folder is read lazily.
    public var memoryBudget = ImagePairSet.defaultMemoryBudget

    /// A request; each parameter sets the property of its name, and `memoryBudget` starts at
    /// `ImagePairSet.defaultMemoryBudget` (2 GiB).
    public init(classes: Int? = nil, channels: Int? = nil, ignoreLabel: Int32? = nil, maskColours: String? = nil, skipBad: Bool = false) {
        self.classes = classes
        self.channels = channels
        self.ignoreLabel = ignoreLabel
        self.maskColours = maskColours
        self.skipBad = skipBad
    }
}

/// Opened data, what its layout says about classes, and what was skipped or converted.
public struct LoadedData: Sendable {
    /// The samples: images H·W·C (raw values, 0…255 for 8-bit sources) with H·W masks, of one
    /// size or of many.
    public var samples: any LabelledImages
    /// What the source says about its classes (VOC's 21, Pets' 2 or 3, a `--mask-colors` table,
    /// the canvases' 11); nil for a plain folder or an HDF5 file.
    public var classes: DatasetClasses?
    /// The ignore label in force: `--ignore-label`, else the layout's.
    public var ignoreLabel: Int32?
    /// One message per skipped sample (`--skip-bad`).
    public var skipped: [String]
    /// What was converted on the way (grey images replicated, lazily read), for the user.
    public var notes: [String]

    static func files(root: String, pairs: [ImagePair], encoding: MaskEncoding, classes: DatasetClasses?, request: DataRequest) throws -> LoadedData {
        let ignore = request.ignoreLabel ?? classes?.ignoreLabel
        let check = request.classes.map { LabelCheck(classes: $0, ignoreLabel: ignore) }
        let (set, skipped) = try ImagePairSet.open(root: root, pairs: pairs, encoding: encoding, check: check, channels: request.channels,
                                                   skipBad: request.skipBad, memoryBudget: request.memoryBudget)
        var notes: [String] = []
        if set.replicatedGrey > 0 {
            notes.append("\(set.replicatedGrey) grey image(s) repeated into 3 channels for this colour segmenter (build one with --input-channels 1 to train on grey)")
        }
        if !set.inMemory { notes.append("\(set.count) images are more than --data-memory-mb holds decoded: each batch is decoded as it is needed, ahead of the compute") }
        return LoadedData(samples: set, classes: classes, ignoreLabel: ignore, skipped: skipped, notes: notes)
    }

    static func inMemory(_ data: SegmentationDataset, request: DataRequest, classes: DatasetClasses? = nil) throws -> LoadedData {
        var data = data, notes: [String] = [], skipped: [String] = []
        if let want = request.channels, want != data.channels {
            guard want == 3, data.channels == 1 else {
                throw DataError.badFile(data.source, "has \(data.channels)-channel images and this segmenter takes \(want); "
                                        + "build the segmenter with --input-channels \(data.channels)")
            }
            data.pixels = data.pixels.flatMap { [$0, $0, $0] }
            data.channels = 3
            notes.append("\(data.count) grey image(s) repeated into 3 channels for this colour segmenter (build one with --input-channels 1 to train on grey)")
        }
        let ignore = request.ignoreLabel ?? classes?.ignoreLabel
        var samples: any LabelledImages = data
        if let k = request.classes {
            let check = LabelCheck(classes: k, ignoreLabel: ignore)
            var good: [Int] = []
            for i in 0..<data.count {
                do {
                    try check.check(try data.mask(i), width: data.width, name: "\(data.source) sample \(i)")
                    good.append(i)
                } catch let e as DataError where request.skipBad { skipped.append("\(e)") }
            }
            guard !good.isEmpty else { throw DataError.notFound("\(data.source): no usable sample (\(skipped.count) skipped)") }
            if good.count < data.count { samples = data.subset(good) }
        }
        return LoadedData(samples: samples, classes: classes, ignoreLabel: ignore, skipped: skipped, notes: notes)
    }
}
