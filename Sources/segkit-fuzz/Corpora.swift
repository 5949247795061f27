import Foundation
import HDF5
import SegKit
import SegKitEngine
import ZIPFoundation

/// Files the data, segmenter and command-line corpora start from, made once
/// per run by the `segkit` under test.
struct Assets {
    /// transposed-skips on the plain CNN fixture, for RGB images and 3 classes.
    let rgbSegmenter: String
    /// The same for grey images and the classifier's 11 classes.
    let greySegmenter: String
    /// `rgbSegmenter` trained one epoch: a checkpoint with its training state.
    let checkpoint: String
    /// Three generated canvases as an HDF5 data set.
    let dataH5: String
    /// Tests/Fixtures/data: image folders and dataset layouts written by Pillow.
    let data: String
    let classifier: String

    /// - Throws: when `segkit` cannot make them (the harness then stops).
    static func make(segkit: String, fixtures: String, recipes: String, work: String) throws -> Assets {
        let dir = work + "/assets"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let data = URL(fileURLWithPath: fixtures).deletingLastPathComponent().appendingPathComponent("data").path
        let a = Assets(rgbSegmenter: dir + "/rgb.keras", greySegmenter: dir + "/grey.keras", checkpoint: dir + "/trained.last.keras",
                       dataH5: dir + "/canvases.h5", data: data, classifier: fixtures + "/plain_cnn.k3.keras")
        for args in [["build", "--recipe", "transposed-skips", "--classifier", a.classifier, "--input-channels", "3", "--classes", "3", "--out", a.rgbSegmenter],
                     ["build", "--recipe", "transposed-skips", "--classifier", a.classifier, "--out", a.greySegmenter],
                     ["train", a.rgbSegmenter, "--data", data + "/odd", "--epochs", "1", "--batch", "2", "--out", dir + "/trained.keras"],
                     ["data", "fashion-canvas:count=3,size=32", "--out", a.dataH5]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: segkit)
            p.arguments = args
            p.environment = ProcessInfo.processInfo.environment.merging(["SEGKIT_RECIPES": recipes]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            let err = Pipe()
            p.standardError = err
            try p.run()
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw FuzzSetupError(description: "segkit \(args.joined(separator: " ")): \(message)") }
        }
        return a
    }
}

struct FuzzSetupError: Error, CustomStringConvertible { let description: String }

extension Mutator {
    mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }
    mutating func chance(_ p: Double) -> Bool { Double(rng.next() % 1_000_000) / 1_000_000 < p }

    /// A spec string damaged the way a typo damages it: a character dropped,
    /// a separator inserted or doubled, a number made negative or empty — never
    /// made larger (a valid but huge request is not a fault).
    mutating func typo(_ s: String) -> String {
        guard !s.isEmpty else { return pick([",", ":", "=", "-"]) }
        var chars = Array(s)
        switch int(5) {
        case 0: chars.remove(at: int(chars.count))
        case 1: chars.insert(pick([",", ":", "=", "-", "x", ".", " "]), at: int(chars.count + 1))
        case 2:
            let i = int(chars.count)
            if ",:=-".contains(chars[i]) { chars.insert(chars[i], at: i) } else { chars[i] = pick([",", ":", "="]) }
        case 3:
            if let i = chars.firstIndex(where: \.isNumber) { chars.insert("-", at: i) }
        default:
            if let i = chars.lastIndex(where: \.isNumber) { chars.remove(at: i) }
        }
        return String(chars)
    }

    /// A value for an option: mostly from `values`, sometimes a typo of one, sometimes nothing.
    mutating func value(_ values: [String]) -> String {
        let v = pick(values)
        return chance(0.15) ? typo(v) : v
    }

    // MARK: command lines

    /// A random command line of a random subcommand: options drawn from each
    /// subcommand's table of good, boundary and bad values.
    mutating func commandLine(_ index: Int, directory: String, assets a: Assets) -> FuzzCase {
        let d = a.data
        let datas = ["\(d)/odd", "\(d)/mixed", "\(d)/jpeg_folder", "voc:\(d)/voc", "voc:\(d)/voc:val", "pets:\(d)/pets", "pets:\(d)/pets:test:border=class",
                     "\(d)/colour_masks", "fashion-canvas:count=3,size=32", "fashion-canvas:count=2,size=28,items=1-2,split=test,seed=3",
                     a.dataH5, "\(directory)/missing", "\(d)/jpeg_mask_folder", "\(d)/jpeg", "voc:\(d)/pets"]
        let segmenters = [a.rgbSegmenter, a.rgbSegmenter, a.rgbSegmenter, a.greySegmenter, a.checkpoint, "\(directory)/missing.keras", a.dataH5,
                          "\(d)/odd/images/img_00.png"]
        let numbers = ["0", "1", "2", "-1", "x", "", "99999999999999999999", "nan", "1e3"]
        let floats = ["0.01", "0", "-1", "nan", "inf", "1e-13", "1000", "x", "0.5"]
        let outs = ["\(directory)/out.keras", "\(directory)/out.keras", "\(directory)/no/such/folder/out.keras", directory, "\(directory)/out.h5"]
        let command = pick(["train", "train", "train", "eval", "eval", "predict", "build", "build", "data", "compare", "inspect", "convolutionalize"])
        var args = [command]
        var options: [(String, [String])] = []
        switch command {
        case "train":
            args.append(pick(segmenters))
            args += ["--data", value(datas), "--out", pick(outs)]
            if chance(0.7) { args += ["--epochs", pick(["1", "1", "2"])] }
            options = [("--val-data", datas), ("--epochs", numbers), ("--batch", ["1", "2", "4", "0", "-3", "x", "70000"]),
                       ("--optimizer", ["sgd", "adam", "sgdd", ""]), ("--lr", floats), ("--momentum", ["0.9", "1", "-0.1", "x"]),
                       ("--weight-decay", ["0", "0.01", "-1", "nan"]), ("--schedule", ["constant", "step", "cosine", "linear"]),
                       ("--loss", ["ce", "dice", "ce+dice", "weighted-ce", "focal"]),
                       ("--class-weights", ["auto", "1,1,1", "1,2", "a", "1,,1", "-1,1,1", "nan,1,1", "1e7,1,1"]),
                       ("--border-weight", ["10,5", "0,0", "x", "10,5,3", "-1,2", "1e30,1"]),
                       ("--augment", ["flip", "flip,shift,elastic", "scale:0.5-2.0", "scale:2-1", "scale:0-1", "scale:a-b", "scale:", "blur", ",,", "flip,scale:0.9-1.1"]),
                       ("--crop", ["32,32", "40,40", "1,1", "0,4", "9000,10", "a,b", "32", "64,24"]),
                       ("--seed", ["0", "1", "-1", "18446744073709551616"]), ("--patience", ["1", "0", "-1"]),
                       ("--cache-mb", ["0", "1", "-1"]), ("--ignore-label", ["255", "-1", "0", "2147483648", "x"]),
                       ("--resume", [a.checkpoint, a.rgbSegmenter, "\(directory)/missing.keras"]),
                       ("--val-fraction", ["0", "0.5", "1", "-0.1", "nan"]),
                       ("--input-scale", ["unit", "raw", "symmetric", "mean-std:0.5,0.25", "mean-std:0.5,0", "mean-std:a,b", "foo"]),
                       ("--mask-colors", ["\(d)/colour_masks/colors.txt", "\(directory)/missing.txt", "\(d)/odd/images/img_00.png"]),
                       ("--data-memory-mb", ["0", "1", "-1", "4096"]), ("--skip-bad", []), ("--no-cache", []), ("--bogus", ["1"])]
        case "eval":
            args.append(pick(segmenters))
            args += ["--data", value(datas)]
            options = [("--batch", ["1", "3", "0", "-1", "x"]), ("--background", ["0", "2", "3", "-1", "x"]),
                       ("--ignore-label", ["255", "-1", "0", "x"]), ("--json", []), ("--skip-bad", []),
                       ("--input-scale", ["unit", "raw", "mean-std:0.5,0.25", "mean-std:,", "foo"]),
                       ("--mask-colors", ["\(d)/colour_masks/colors.txt", "\(directory)/missing.txt"]), ("--data-memory-mb", ["0", "1"])]
        case "predict":
            args.append(pick(segmenters))
            args.append(pick(["\(d)/odd/images", "\(d)/jpeg/orient_6.jpg", "\(d)/jpeg/cmyk.jpg", "\(directory)/missing.png", "\(d)/colour_masks/colors.txt",
                              "\(d)/voc/VOC2012/JPEGImages", "\(d)/jpeg/truncated.jpg", "\(d)/jpeg"]))
            args += ["--out", pick(["\(directory)/masks", "\(directory)/masks", "\(d)/colour_masks/colors.txt"])]
            options = [("--tile", ["16", "15", "100000", "x", "20"]), ("--margin", ["0", "-1", "5000", "8"]),
                       ("--input-scale", ["unit", "raw", "mean-std:0.5,0.25", "nope"])]
        case "build":
            args += ["--recipe", value(["unet-scratch", "transposed-skips", "fcn-8s", "heatmap-bilinear", "unet-pretrained", "transposed", "nonexistent",
                                        "\(d)/colour_masks/colors.txt"])]
            if chance(0.7) { args += ["--classifier", pick([a.classifier, a.classifier, "\(directory)/missing.keras", a.dataH5, a.rgbSegmenter])] }
            args += ["--out", pick(outs)]
            options = [("--classes", ["3", "0", "-1", "70000", "1", "2"]), ("--input-channels", ["1", "3", "0", "5000"]), ("--head", ["keep", "new", "maybe"]),
                       ("--set", ["depth=2", "depth=-1", "depth=100", "base_filters=0", "base_filters=4", "dropout=5", "dropout=0.2", "padding=weird",
                                  "padding=valid", "=3", "x", "seed=-1", "classes=0", "output=nope", "batch_norm=maybe", "decoder=unet-scratch"]),
                       ("--class-names", ["a,b,c", ",", "", "a"]), ("--output", ["nope", "dense"])]
        case "data":
            args.append(value(["fashion-canvas:count=3,size=32", "fashion-canvas:count=2,size=28,items=1-3,seed=2,overlap=yes", "fashion-canvas:count=4,split=test,size=30",
                               "fashion-canvas:count=-1", "fashion-canvas:items=3-1", "fashion-canvas:size=8", "fashion-canvas:bogus=1", "voc:\(d)/voc"]))
            args += ["--out", pick(["\(directory)/d.h5", "\(directory)/folder", "\(directory)/no/such/d.h5"])]
            options = [("--folder", []), ("--classifier", []), ("--fashion-dir", ["\(directory)/missing", d])]
        case "compare":
            args += ["--classifier", pick([a.classifier, a.classifier, "\(directory)/missing.keras", a.rgbSegmenter])]
            args += ["--data", value(["fashion-canvas:count=6,size=32", "fashion-canvas:count=6,size=32", "\(d)/odd"])]
            args += ["--test-data", value(["fashion-canvas:count=2,size=32,split=test", "\(d)/mixed"])]
            args += ["--labels", value(["2,4", "2", "0", "a", "4,2", ""]), "--epochs", "1", "--batch", "2", "--out", "\(directory)/report"]
            args += ["--recipes", value(["heatmap-bilinear", "heatmap-bilinear,transposed-skips", "nope"]), "--baseline", pick(["none", "none", "unet-scratch"])]
            if args.last == "unet-scratch" { args += ["--set", "depth=2", "--set", "base_filters=4"] }
            options = [("--val-count", ["1", "0", "-1"]), ("--examples", ["0", "1", "-1"]), ("--crop", ["16,16", "0,0", "x"]),
                       ("--optimizer", ["sgd", "nesterov"]), ("--lr", floats), ("--seeds", ["2", "0", "-1", "x"]),
                       ("--patience", ["1", "0"]), ("--max-epochs", ["1", "0"]), ("--budget-seconds", ["1", "0", "nan", "-2"])]
        case "inspect":
            args.append(pick([a.classifier, a.rgbSegmenter, a.checkpoint, a.dataH5, "\(directory)/missing.keras", "\(d)/jpeg/grey.jpg"]))
        default:
            args.append(pick([a.classifier, a.rgbSegmenter, a.dataH5, "\(directory)/missing.keras"]))
            args += ["--out", pick(outs)]
            options = [("--output", ["nope", "dense"])]
        }
        for (option, values) in options where chance(0.25) {
            args.append(option)
            if !values.isEmpty { args.append(value(values)) }
        }
        return FuzzCase(corpus: "cli", kind: command, label: args.joined(separator: " "), arguments: args, directory: directory)
    }

    // MARK: data

    /// A dataset with a damaged part: a flipped, cut, emptied or deleted file, a
    /// mask replaced by an image, garbage in a split list, or a damaged HDF5 set.
    mutating func dataCase(_ index: Int, directory: String, assets a: Assets) throws -> FuzzCase {
        let fm = FileManager.default
        let base = pick(["odd", "mixed", "jpeg_folder", "colour_masks", "voc", "pets", "h5", "h5"])
        let kind: String
        var spec: String
        if base == "h5" {
            let path = directory + "/data.h5"
            try fm.copyItem(atPath: a.dataH5, toPath: path)
            kind = pick(["bitflip", "truncate", "dataset"])
            switch kind {
            case "bitflip": try bitflip(path)
            case "truncate": try truncate(path, zip: false)
            default: try redeclareDataset(path)
            }
            return FuzzCase(corpus: "data", kind: "h5 " + kind, label: "canvases.h5",
                            arguments: ["eval", a.greySegmenter, "--data", path], directory: directory)
        }
        let root = directory + "/data"
        try fm.copyItem(atPath: "\(a.data)/\(base)", toPath: root)
        spec = base == "voc" ? "voc:\(root)" : base == "pets" ? "pets:\(root)" : root
        var files: [String] = []
        if let walker = fm.enumerator(atPath: root) {
            for case let f as String in walker {
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: root + "/" + f, isDirectory: &isDir), !isDir.boolValue { files.append(f) }
            }
        }
        files.sort()
        let target = root + "/" + pick(files)
        kind = pick(["bitflip", "bitflip", "truncate", "delete", "empty", "swap", "list", "junk"])
        switch kind {
        case "bitflip": try bitflip(target)
        case "truncate": try truncate(target, zip: false)
        case "delete": try fm.removeItem(atPath: target)
        case "empty": try Data().write(to: URL(fileURLWithPath: target))
        case "swap":
            let source = root + "/" + pick(files)
            if source != target {
                try fm.removeItem(atPath: target)
                try fm.copyItem(atPath: source, toPath: target)
            }
        case "list":
            let lists = files.filter { $0.hasSuffix(".txt") }
            let list = root + "/" + (lists.isEmpty ? "images/extra.txt" : pick(lists))
            let line = pick(["../../../etc/passwd", "", "   ", "no_such_image", String(repeating: "x", count: 5000), "a b c d e", "\u{0}"])
            try (((try? String(contentsOfFile: list, encoding: .utf8)) ?? "") + line + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        default:
            var junk = Data(count: 64 + int(4096))
            for i in junk.indices { junk[i] = UInt8(truncatingIfNeeded: rng.next()) }
            if chance(0.5) { junk.replaceSubrange(0..<8, with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) } else { junk.replaceSubrange(0..<3, with: [0xFF, 0xD8, 0xFF]) }
            try junk.write(to: URL(fileURLWithPath: target))
        }
        var args = chance(0.7) ? ["eval", a.rgbSegmenter, "--data", spec]
                               : ["train", a.rgbSegmenter, "--data", spec, "--epochs", "1", "--batch", "2", "--out", directory + "/t.keras"]
        if base == "colour_masks" { args += ["--mask-colors", root + "/colors.txt"] }
        if base == "voc" || base == "pets" { args += ["--ignore-label", "255"] }
        if chance(0.4) { args.append("--skip-bad") }
        if chance(0.2) { args += ["--data-memory-mb", "0"] }
        return FuzzCase(corpus: "data", kind: "\(base) \(kind)", label: "\(base): \(target.dropFirst(root.count + 1))", arguments: args, directory: directory)
    }

    // MARK: segmenters and checkpoints

    /// A segmenter or checkpoint with damaged SegKit parts: its `segkit.json`
    /// corrupted, its training state's values made inconsistent (progress, history,
    /// optimizer arrays, parameter list) or its bytes flipped.
    mutating func segmenterCase(_ index: Int, directory: String, assets a: Assets) throws -> FuzzCase {
        let path = directory + "/seg.last.keras"
        try FileManager.default.copyItem(atPath: chance(0.75) ? a.checkpoint : a.rgbSegmenter, toPath: path)
        let kind = pick(["metadata", "metadata", "state", "state", "state", "history", "statebits"])
        switch kind {
        case "metadata": try rewriteZip(path, corrupting: "segkit.json")
        case "statebits": try rewriteZip(path, corrupting: "segkit_state.h5")
        default: try editState(path, history: kind == "history")
        }
        let args: [String]
        switch int(4) {
        case 0: args = ["eval", path, "--data", a.data + "/odd"]
        case 1: args = ["predict", path, a.data + "/odd/images/img_00.png", "--out", directory + "/masks"]
        case 2: args = ["inspect", path]
        default: args = ["train", a.rgbSegmenter, "--data", a.data + "/odd", "--resume", path, "--epochs", "2", "--batch", "2", "--out", directory + "/r.keras"]
        }
        return FuzzCase(corpus: "segmenters", kind: kind, label: (args[0] == "train" ? "resume " : "\(args[0]) ") + kind, arguments: args, directory: directory)
    }

    /// Rewrites a checkpoint's `segkit_state.h5` with inconsistent values.
    mutating func editState(_ path: String, history: Bool) throws {
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        guard let entry = archive["segkit_state.h5"] else { return try rewriteZip(path, corrupting: "segkit.json") }
        var data = Data()
        _ = try archive.extract(entry) { data.append($0) }
        let h5 = path + ".state.h5"
        try data.write(to: URL(fileURLWithPath: h5))
        if history {
            let lines = ["1,0.5,,,,0.001", "x,y,z,1,2,3,4", "", "1,nan,inf,-1,2,0.001,1e308", String(repeating: ",", count: 10_000), "1"]
            try rewriteStringAttribute(h5, "history", (0..<(1 + int(3))).map { _ in pick(lines) }.joined(separator: "\n"))
        } else {
            var state = try TrainingState.read(from: try HDF5File(readingFrom: h5))
            switch int(5) {
            case 0: state.progress = [Int64(int(5)) - 2, pick([0, 1, 7, 1 << 40]), -1, pick([0, 3])]
            case 1: state.progress = [0, Int64(pick([5, 100, 1_000_000])), 0, 0]
            case 2: state.optimizerState = state.optimizerState.mapValues { arrays in arrays.map { Array($0.dropLast(int(3))) } }
            case 3: state.parameterNames = Array(state.parameterNames.dropLast(1 + int(2)))
            default: state.optimizer = pick(["sgd", "", "adamw"])
            }
            try FileManager.default.removeItem(atPath: h5)
            try state.write(to: h5)
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: h5))
        try FileManager.default.removeItem(atPath: h5)
        try rewriteZip(path, replacing: ("segkit_state.h5", bytes))
    }
}
