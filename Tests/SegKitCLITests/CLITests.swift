import Foundation
import HDF5
import Testing

/// Runs the `segkit` binary that `swift build` put beside the test bundle.
struct CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/Fixtures/keras")

    static var binary: URL {
        // The test bundle lives in the build products folder, next to the executable.
        let products = Bundle.main.bundleURL.deletingLastPathComponent()
        let candidates = [products.appendingPathComponent("segkit"), Bundle.main.bundleURL.appendingPathComponent("segkit"),
                          root.appendingPathComponent(".build/debug/segkit")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates.last!
    }

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `segkit args…`; `environment` adds to (or overrides) this process's.
    static func run(_ args: [String], environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite struct CLITests {
    @Test func inspectPrintsKerasCountsAndFrozenLayers() throws {
        let r = try CLI.run(["inspect", CLI.fixture("vgg.k2.h5")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Total params: 10594"))
        #expect(r.stdout.contains("Trainable params: 10338"))
        #expect(r.stdout.contains("Non-trainable params: 256"))
        #expect(r.stdout.contains("block1_conv1 (Conv2D)") && r.stdout.contains("frozen"))
    }

    @Test func forwardWritesTheOutputAndNamedLayers() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-\(UUID().uuidString).h5").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["forward", CLI.fixture("residual.k3.weights.h5"), "--config", CLI.fixture("residual.k3.json"),
                             "--input", CLI.fixture("residual.k3.expected.h5"), "--output", out, "--layers", "mix,gap"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: out))
    }

    /// Two images one at a time: each batch's outputs land in their own rows,
    /// equal to Keras's for the whole batch.
    @Test func forwardInBatchesWritesEveryBatchWhereItBelongs() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-\(UUID().uuidString).h5").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let expected = try HDF5File(readingFrom: CLI.fixture("residual.k3.expected.h5")).root
        let r = try CLI.run(["forward", CLI.fixture("residual.k3.weights.h5"), "--config", CLI.fixture("residual.k3.json"),
                             "--input", CLI.fixture("residual.k3.expected.h5"), "--output", out, "--layers", "mix", "--batch", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let written = try HDF5File(readingFrom: out).root
        for name in ["output", "mix"] {
            let (ours, keras) = (try written.dataset(name), try expected.dataset(name))
            #expect(try ours.shape() == keras.shape())
            let difference = zip(try ours.readFloats(), try keras.readFloats()).map { abs($0 - $1) }.max() ?? 1
            #expect(difference < 1e-4, "\(name)")
        }
        let zero = try CLI.run(["forward", CLI.fixture("residual.k3.weights.h5"), "--config", CLI.fixture("residual.k3.json"),
                                "--input", CLI.fixture("residual.k3.expected.h5"), "--output", out, "--batch", "0"])
        #expect(zero.status != 0 && zero.stderr.contains("--batch"))
    }

    @Test(arguments: [
        (["inspect", "with_lambda.k2.h5"], "Lambda"),
        (["inspect", "plain_cnn.k3.weights.h5"], "--config"),
        (["inspect", "plain_cnn.k3.json"], "not an HDF5 file"),
        (["forward", "plain_cnn.k3.keras", "--input", "plain_cnn.k3.expected.h5", "--output", "/nonexistent-dir/out.h5"], "out.h5"),
        (["forward", "plain_cnn.k3.keras", "--input", "plain_cnn.k3.expected.h5", "--output", "/tmp/x.h5", "--layers", "nope"], "no layer 'nope'"),
    ])
    func badInputExitsNonZeroWithAClearMessage(_ args: [String], _ message: String) throws {
        let resolved = args.map { $0.hasSuffix(".h5") || $0.hasSuffix(".keras") || $0.hasSuffix(".json") ? ($0.hasPrefix("/") ? $0 : CLI.fixture($0)) : $0 }
        let r = try CLI.run(resolved)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "stderr: \(r.stderr)")
        #expect(!r.stderr.contains("HDF5-DIAG"), "HDF5's own error stack leaked")
    }
}
