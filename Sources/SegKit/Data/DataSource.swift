import Foundation

/// Where `--data` comes from: an HDF5 file (`images`, `masks`), or the
/// generated running example, `fashion-canvas:` with optional settings
/// `count=N,size=S,items=A-B,split=train|test,seed=K,overlap=yes`.
public enum DataSource: Sendable {
    case hdf5(String)
    case pngFolder(String)
    case fashionCanvas(FashionCanvas)

    public static func parse(_ text: String, fashionFolder: String? = nil) throws -> DataSource {
        if text.hasPrefix("fashion-canvas") {
            var spec = FashionCanvas()
            spec.folder = fashionFolder
            let settings = text.dropFirst("fashion-canvas".count).drop { $0 == ":" }
            for item in settings.split(separator: ",") where !item.isEmpty {
                let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { throw DataError.notFound("fashion-canvas setting '\(item)' is not KEY=VALUE") }
                switch kv[0] {
                case "count": spec.count = try int(kv[1], "count")
                case "size": spec.canvasSize = try int(kv[1], "size")
                case "seed": spec.seed = UInt64(try int(kv[1], "seed"))
                case "split":
                    guard let s = FashionCanvas.Split(rawValue: kv[1]) else { throw DataError.notFound("split must be train or test") }
                    spec.split = s
                case "items":
                    let range = kv[1].split(separator: "-").map(String.init)
                    spec.minItems = try int(range[0], "items")
                    spec.maxItems = try int(range.count > 1 ? range[1] : range[0], "items")
                case "overlap": spec.allowOverlap = ["yes", "true", "1"].contains(kv[1])
                default: throw DataError.notFound("unknown fashion-canvas setting '\(kv[0])' (count, size, items, split, seed, overlap)")
                }
            }
            return .fashionCanvas(spec)
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: text, isDirectory: &isFolder) else { throw DataError.notFound("--data \(text): no such file or folder") }
        return isFolder.boolValue ? .pngFolder(text) : .hdf5(text)
    }

    private static func int(_ s: String, _ what: String) throws -> Int {
        guard let v = Int(s) else { throw DataError.notFound("fashion-canvas \(what) must be a whole number, not '\(s)'") }
        return v
    }

    /// Loads the data; `skipBad` skips unusable PNG pairs (reported through `skipped`).
    public func load(skipBad: Bool = false, skipped: ((String) -> Void)? = nil) throws -> SegmentationDataset {
        switch self {
        case let .hdf5(path): return try SegmentationDataset.readHDF5(path)
        case let .pngFolder(path):
            let (data, bad) = try SegmentationDataset.readPNGFolder(path, skipBad: skipBad)
            bad.forEach { skipped?($0) }
            return data
        case let .fashionCanvas(spec): return try spec.generate()
        }
    }

    public var description: String {
        switch self {
        case let .hdf5(p), let .pngFolder(p): return p
        case let .fashionCanvas(s): return "fashion-canvas (\(s.count) \(s.split.rawValue) canvases of \(s.canvasSize)x\(s.canvasSize), \(s.minItems)-\(s.maxItems) items, seed \(s.seed))"
        }
    }
}
