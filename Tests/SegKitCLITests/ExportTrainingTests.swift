import SegKitSupport
import Foundation
import Testing
import SegKit
import SegKitKeras
import HDF5

/// `segkit export-training`: the run `train` would make, as a standalone Keras
/// script whose settings name every option given. Running the script needs
/// TensorFlow (a developer check: `make export-check`); here it must be written,
/// compile, and carry the run's settings.
@Suite struct ExportTrainingTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-export-\(UUID().uuidString)").path

    init() throws { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }

    /// The settings train.py carries: the JSON between `json.loads(r'''` and `''')`.
    func settings(_ script: String) throws -> JSONValue {
        let text = try String(contentsOfFile: script, encoding: .utf8)
        let start = try #require(text.range(of: "CONFIG = json.loads(r'''"))
        let end = try #require(text.range(of: "''')", range: start.upperBound..<text.endIndex))
        return try JSONValue.parse(Data(text[start.upperBound..<end.lowerBound].utf8), source: script)
    }

    func compiles(_ script: String) throws -> (Bool, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-m", "py_compile", script]
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus == 0, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test func theExportedScriptCompilesAndNamesEveryOptionItWasGiven() throws {
        let seg = "\(folder)/seg.keras"
        let b = try CLI.run(["build", "--recipe", "transposed-skips", "--classifier", CLI.root.appendingPathComponent("Recipes/demo/classifier.keras").path,
                             "--out", seg])
        #expect(b.status == 0, "\(b.stderr)")
        let out = "\(folder)/run"
        let r = try CLI.run(["export-training", seg, "--data", "fashion-canvas:count=12,size=48,seed=3", "--val-fraction", "0.25",
                             "--epochs", "3", "--batch", "4", "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.8", "--weight-decay", "0.001",
                             "--schedule", "cosine", "--loss", "weighted-ce", "--class-weights", "auto", "--augment", "flip,shift",
                             "--crop", "32,40", "--seed", "7", "--patience", "2", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        for file in ["segmenter.keras", "train.py", "README.md", "data/train.h5"] { #expect(FileManager.default.fileExists(atPath: "\(out)/\(file)"), "\(file)") }
        let (ok, message) = try compiles("\(out)/train.py")
        #expect(ok, "py_compile: \(message)")
        let c = try settings("\(out)/train.py")
        #expect(c["epochs"]?.int == 3 && c["batch"]?.int == 4 && c["optimizer"]?.string == "sgd" && c["seed"]?.int == 7 && c["patience"]?.int == 2)
        #expect(c["lr"]?.double.map { abs($0 - 0.01) < 1e-6 } == true && c["momentum"]?.double.map { abs($0 - 0.8) < 1e-6 } == true)
        #expect(c["weight_decay"]?.double.map { abs($0 - 0.001) < 1e-6 } == true && c["schedule"]?.string == "cosine")
        #expect(c["loss"]?.string == "weighted-ce" && c["class_weights"]?.array?.count == 11, "auto weights resolved from the masks")
        #expect(c["augment"]?.array?.compactMap(\.string) == ["flip", "shift"] && c["crop"]?.array?.compactMap(\.int) == [32, 40])
        #expect(c["input_scale"]?.string == "unit" && c["classes"]?.int == 11 && c["background_class"]?.int == 10)
        #expect(c["data"]?["kind"]?.string == "hdf5" && c["data"]?["path"]?.string == "data/train.h5")
        #expect(c["train_indices"]?.array?.count == 9 && c["val_indices"]?.array?.compactMap(\.int) == [9, 10, 11])
        #expect(try HDF5File(readingFrom: "\(out)/data/train.h5").root.dataset("images").shape().first == 12, "the whole generated set, hold-out included")
        #expect(c["placement"]?["rows"]?["32"] != nil && c["placement"]?["cols"]?["40"] != nil && c["placement"]?["rows"]?["48"] != nil)
        let frozen = (c["frozen_layers"]?.array ?? []).compactMap(\.string)
        #expect(!frozen.isEmpty && !frozen.contains { $0.hasPrefix("up") || $0.hasPrefix("skip") }, "\(frozen)")
        let loss = try #require(c["check"]?["loss"]?.double)
        #expect(loss.isFinite && loss > 0)
        #expect(c["command"]?.string?.contains("--augment flip,shift") == true)
    }

    @Test func aLayoutIsExportedAsItsOwnFilesWithTheValidationSet() throws {
        let seg = "\(folder)/unet.keras"
        _ = try CLI.run(["build", "--recipe", "unet-scratch", "--classes", "21", "--input-channels", "3", "--set", "depth=2,base_filters=4", "--out", seg])
        let data = CLI.root.appendingPathComponent("Tests/Fixtures/data").path
        let out = "\(folder)/voc-run"
        let r = try CLI.run(["export-training", seg, "--data", "voc:\(data)/voc", "--val-data", "voc:\(data)/voc:val", "--epochs", "1", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try settings("\(out)/train.py")
        #expect(c["data"]?["kind"]?.string == "voc" && c["val_data"]?["split"]?.string == "val" && c["ignore_label"]?.int == 255)
        let pairs = try #require(c["train_files"]?.array)
        #expect(!pairs.isEmpty && pairs.allSatisfy { $0.array?.count == 2 && $0.array?[1].string?.hasSuffix(".png") == true })
        #expect(c["frozen_layers"]?.array?.isEmpty == true, "a U-Net from scratch trains everything")
        #expect(!FileManager.default.fileExists(atPath: "\(out)/data"), "the user's own files are read where they are")
    }

    @Test func aFailedExportLeavesNoFolderAndAFullFolderIsRefused() throws {
        let seg = "\(folder)/unet.keras"
        _ = try CLI.run(["build", "--recipe", "unet-scratch", "--classes", "3", "--input-channels", "1", "--set", "depth=2,base_filters=4", "--out", seg])
        let missing = try CLI.run(["export-training", seg, "--data", "\(folder)/no-such-folder", "--out", "\(folder)/x"])
        #expect(missing.status != 0 && !FileManager.default.fileExists(atPath: "\(folder)/x"))
        let full = try CLI.run(["export-training", seg, "--data", "fashion-canvas:count=4,size=32", "--out", folder])
        #expect(full.status != 0 && full.stderr.contains("is not empty"), "\(full.stderr)")
    }

    @Test func aRunTrainedElsewhereIsScoredBesideTheContenders() throws {
        // What train.py writes has SegKit's train output's form: a .keras file and a history CSV.
        let seg = "\(folder)/seg.keras", trained = "\(folder)/keras-run.keras"
        _ = try CLI.run(["build", "--recipe", "transposed-skips", "--classifier", CLI.root.appendingPathComponent("Recipes/demo/classifier.keras").path,
                         "--out", seg])
        let t = try CLI.run(["train", seg, "--data", "fashion-canvas:count=10,size=32,seed=1", "--epochs", "2", "--batch", "4", "--out", trained])
        #expect(t.status == 0, "\(t.stderr)")
        let report = "\(folder)/report"
        let r = try CLI.run(["compare", "--classifier", CLI.root.appendingPathComponent("Recipes/demo/classifier.keras").path,
                             "--recipes", "heatmap-bilinear", "--baseline", "none", "--data", "fashion-canvas:count=12,size=32,seed=1",
                             "--test-data", "fashion-canvas:count=4,size=32,seed=2,split=test", "--labels", "8", "--val-count", "2",
                             "--epochs", "1", "--examples", "1", "--add-run", "\(trained):9", "--out", report])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: report + "/results.json")), source: "results.json")
        let added = try #require(json["results"]?.array?.first { $0["contender"]?.string == "keras-run" })
        #expect(added["labels"]?.int == 9 && added["history"]?.array?.count == 2 && added["best_epoch"]?.int != nil)
        #expect(FileManager.default.fileExists(atPath: report + "/images/test0_keras-run.png") == false, "examples show the largest N only (8)")
        let bad = try CLI.run(["compare", "--classifier", CLI.root.appendingPathComponent("Recipes/demo/classifier.keras").path,
                               "--recipes", "heatmap-bilinear", "--baseline", "none", "--data", "fashion-canvas:count=12,size=32,seed=1",
                               "--test-data", "fashion-canvas:count=4,size=32,seed=2,split=test", "--labels", "8", "--val-count", "2",
                               "--epochs", "1", "--add-run", "\(folder)/nothing-here", "--out", report])
        #expect(bad.status != 0 && bad.stderr.contains("nothing-here does not exist"), "\(bad.stderr)")
    }
}
