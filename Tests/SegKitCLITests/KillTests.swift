import Foundation
import Testing
import SegKitEngine
import SegKit

@Suite(.serialized) struct KillTests {
    /// Starts `segkit args…` and returns the process (output discarded).
    func start(_ args: [String], environment: [String: String]) throws -> Process {
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    @Test func killingTrainingAtRandomMomentsNeverCorruptsTheLastCheckpointNorLeavesFilesBehind() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-kill-\(UUID().uuidString)").path
        // The runs' own temporary folder, to see what killed runs leave there.
        let tmp = dir + "/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let environment = ["TMPDIR": tmp]
        let build = try CLI.run(["build", "--recipe", "transposed-skips", "--classifier", CLI.fixture("plain_cnn.k3.keras"), "--out", dir + "/seg.keras"])
        #expect(build.status == 0, "\(build.stderr)")
        let data = "fashion-canvas:count=24,size=32,items=1-1"
        let train = ["train", dir + "/seg.keras", "--data", data, "--epochs", "400", "--batch", "8", "--val-fraction", "0", "--out", dir + "/t.keras"]
        var rng = SeededGenerator(seed: 42)
        var checkpointsSeen = 0
        for trial in 0..<6 {
            let p = try start(train + (FileManager.default.fileExists(atPath: dir + "/t.last.keras") ? ["--resume", dir + "/t.last.keras"] : []),
                              environment: environment)
            // Kill at a random moment: during start-up, training, or a checkpoint write.
            usleep(UInt32(200_000 + Int(rng.next() % 1_800_000)))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            guard FileManager.default.fileExists(atPath: dir + "/t.last.keras") else { continue }
            checkpointsSeen += 1
            let inspect = try CLI.run(["inspect", dir + "/t.last.keras"], environment: environment)
            #expect(inspect.status == 0, "trial \(trial): the last checkpoint does not load: \(inspect.stderr)")
        }
        #expect(checkpointsSeen >= 3, "the kills came before any checkpoint: the test proves nothing")
        // And the run continues from it.
        let resumed = try CLI.run(["train", dir + "/seg.keras", "--data", data, "--epochs", "1000", "--batch", "8", "--val-fraction", "0",
                                   "--patience", "1", "--resume", dir + "/t.last.keras", "--out", dir + "/t.keras"], environment: environment)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("Resuming at epoch"))
        // Scratch files have no names, and a finished run clears the killed runs' half-written outputs.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp) == [])
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        #expect(left == ["tmp", "seg.keras", "t.keras", "t.last.keras", "t.history.csv"], "left: \(left.sorted()); resumed run: \(resumed.stdout) \(resumed.stderr)")
    }

    /// Every file in `folder` under its final name is whole: PNGs decode, JSON parses.
    func expectWhole(_ folder: String, _ context: String) throws {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return }
        for case let f as String in walker where !(f as NSString).lastPathComponent.hasPrefix(".") {
            let path = folder + "/" + f
            if f.hasSuffix(".png") {
                #expect((try? PNGImage(path: path)) != nil, "\(context): \(f) is damaged")
            } else if f.hasSuffix(".json") {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect((try? JSONSerialization.jsonObject(with: data)) != nil, "\(context): \(f) is damaged")
            } else if f.hasSuffix(".html") || f.hasSuffix(".csv") || f.hasSuffix(".txt") {
                #expect(!(try Data(contentsOf: URL(fileURLWithPath: path))).isEmpty, "\(context): \(f) is empty")
            }
        }
    }

    @Test func killingCompareOrPredictNeverLeavesAHalfWrittenReportOrMaskAndARerunCompletes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let build = try CLI.run(["build", "--recipe", "transposed-skips", "--classifier", CLI.fixture("plain_cnn.k3.keras"), "--out", dir + "/seg.keras"])
        #expect(build.status == 0, "\(build.stderr)")
        for i in 0..<60 {
            try PNGImage.write("\(dir)/images/im\(i).png", width: 96, height: 80, channels: 1, pixels: (0..<(96 * 80)).map { UInt8(($0 * 7 + i) % 251) })
        }
        let compare = ["compare", "--classifier", CLI.fixture("plain_cnn.k3.keras"), "--recipes", "heatmap-bilinear,transposed-skips", "--baseline", "none",
                       "--data", "fashion-canvas:count=40,size=32", "--test-data", "fashion-canvas:count=16,size=32,split=test",
                       "--labels", "4,8", "--epochs", "2", "--batch", "4", "--examples", "16", "--out", dir + "/report"]
        let predict = ["predict", dir + "/seg.keras", dir + "/images", "--out", dir + "/masks"]
        var rng = SeededGenerator(seed: 7)
        for (command, folder) in [(compare, dir + "/report"), (predict, dir + "/masks")] {
            for trial in 0..<4 {
                let p = try start(command, environment: [:])
                usleep(UInt32(300_000 + Int(rng.next() % 2_500_000)))
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                try expectWhole(folder, "\(command[0]) killed in trial \(trial)")
            }
            let rerun = try CLI.run(command)
            #expect(rerun.status == 0, "\(rerun.stderr)")
            try expectWhole(folder, "\(command[0]) rerun")
            // The rerun cleared what the killed runs left half-written.
            let temporaries = FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String }.filter { $0.contains(".segkit-") } ?? []
            #expect(temporaries.isEmpty, "left: \(temporaries)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/report/index.html") && FileManager.default.fileExists(atPath: dir + "/masks/im59_mask.png"))
    }

    @Test func anUnwritableOutputFolderIsReportedBeforeTraining() throws {
        let r = try CLI.run(["train", CLI.fixture("plain_cnn.k3.keras"), "--data", "fashion-canvas:count=8,size=32", "--epochs", "1",
                             "--out", "/nonexistent-folder/t.keras"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot write to /nonexistent-folder"))
        #expect(!r.stdout.contains("epoch 1/1"))
    }

    @Test func anEmptyDataFolderIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-empty-\(UUID().uuidString)").path
        for sub in ["images", "masks"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLI.run(["eval", CLI.fixture("plain_cnn.k3.keras"), "--data", dir])
        #expect(r.status != 0 && r.stderr.contains("no PNG or JPEG images"))
    }
}
