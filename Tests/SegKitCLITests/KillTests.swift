import Foundation
import Testing
import SegKitEngine

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
