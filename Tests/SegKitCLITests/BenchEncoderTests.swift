import SegKitSupport
import Foundation
import Testing
import SegKitKeras

/// `segkit bench --encoders` (issue 19) on the small MobileNetV2 fixture
/// (alpha 0.35, 32x32): every figure reported, the ratios against
/// encoder_bench.py's JSON lines, and a clear refusal of a file that is no classifier.
@Suite struct BenchEncoderTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-bench-encoders-\(UUID().uuidString)").path

    init() throws { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }

    static let quick = ["--size", "32", "--images", "4", "--batch", "2", "--epochs", "1"]

    @Test func theJSONHoldsEveryFigureAndTheRatiosUseTheScriptsLine() throws {
        // A line as encoder_bench.py prints it, then its table, which must be skipped.
        let keras = "\(folder)/keras.jsonl"
        try """
        {"backbone": "mobilenet_v2", "size": 32, "n": 4, "batch": 2, "recipe": "unet-pretrained", "keras_classifier_img_s": 10.0, "keras_predict_img_s": 5.0, "keras_epoch_s": 100.0, "segkit_classifier_img_s": 9.0}

        backbone         classifier fwd SegKit/Keras (ratio)
        mobilenet_v2       9.0 / 10.0 (0.90x)
        """.write(toFile: keras, atomically: true, encoding: .utf8)
        let json = "\(folder)/segkit.json"
        let r = try CLI.run(["bench", "--encoders", CLI.fixture("mobilenet_v2.k3.keras"), "--json", json, "--compare-with", keras] + Self.quick)
        #expect(r.status == 0, "\(r.stderr)")
        let document = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: json)), source: json)
        #expect((document["segkit"]?["sgemm_gflops"]?.double ?? 0) > 0)
        #expect((document["segkit"]?["memory_gbps"]?.double ?? 0) > 0)
        let encoders = try #require(document["encoders"]?.array)
        #expect(encoders.count == 1)
        let e = try #require(encoders.first)
        #expect(e["backbone"]?.string == "mobilenet_v2")
        for key in ["classifier_img_s", "segmenter_img_s", "epoch_s_cached", "epoch_s_uncached", "cache_build_s",
                    "cached_run_s", "peak_rss_mb", "profile_ms_per_batch"] {
            let v = e[key]?.double ?? .nan
            #expect(v.isFinite && v > 0, "\(key): \(v)")
        }
        #expect(e["cache_used"]?.bool == true)
        #expect(e["five_epochs_with_cache_build_s"] == nil, "one epoch run, no 5-epoch figure")
        let profile = try #require(e["profile"]?.array)
        #expect((1...12).contains(profile.count))
        let shares = profile.compactMap { $0["share"]?.double }
        #expect(shares.count == profile.count && shares.reduce(0, +) <= 1.000001 && shares == shares.sorted(by: >), "\(shares)")
        for row in profile {
            let kind = row["kind"]?.string ?? ""
            #expect(row["output"]?.array?.count == 4 || row["output"]?.array?.count == 2, "\(row)")
            if ["Conv2D", "DepthwiseConv2D", "Dense"].contains(kind) { #expect((row["gflops"]?.double ?? 0) > 0, "\(row)") }
            #expect((row["gbps"] != nil) == (kind == "DepthwiseConv2D"), "\(row)")
        }
        #expect(profile.contains { $0["gflops"] != nil }, "no convolution among the slowest nodes: \(profile)")
        // Every kind's total, the depthwise convolutions with their GB/s whether or not one is among the slowest nodes.
        let kinds = try #require(e["profile_by_kind"]?.array)
        let depthwise = try #require(kinds.first { $0["kind"]?.string == "DepthwiseConv2D" })
        #expect((depthwise["gbps"]?.double ?? 0) > 0 && (depthwise["nodes"]?.int ?? 0) == 17, "\(depthwise)")
        #expect(abs(kinds.compactMap { $0["share"]?.double }.reduce(0, +) - 1) < 1e-6)
        // SegKit's images/s over Keras's, Keras's seconds over SegKit's.
        let ratios = try #require(e["keras_ratios"]?.object)
        let classifier = try #require(ratios["classifier forward (images/s)"]?.double)
        #expect(abs(classifier - e["classifier_img_s"]!.double! / 10) < 1e-9)
        let cached = try #require(ratios["epoch, cached (s)"]?.double)
        #expect(abs(cached - 100 / e["epoch_s_cached"]!.double!) < 1e-9)
        #expect(r.stdout.contains("summary mobilenet_v2: classifier"), "\(r.stdout)")
        #expect(r.stdout.contains("GFLOP/s (sgemm %)") && r.stdout.contains("  by kind: "), "\(r.stdout)")
        #expect(r.stdout.contains("SegKit / Keras") && r.stdout.contains("segmenter forward (images/s)"), "\(r.stdout)")
    }

    /// A file that is not a Keras model, and a Keras model that is a segmenter, not a classifier.
    @Test func aFileThatIsNoClassifierIsRefusedNamingItAndWhatWasExpected() throws {
        let segmenter = "\(folder)/segmenter.keras"
        let b = try CLI.run(["build", "--recipe", "transposed", "--classifier", CLI.fixture("plain_cnn.k3.keras"), "--out", segmenter])
        #expect(b.status == 0, "\(b.stderr)")
        for (file, message) in [(CLI.fixture("plain_cnn.k3.expected.h5"), "not a Keras model"), (segmenter, "expected a classifier")] {
            let r = try CLI.run(["bench", "--encoders", file] + Self.quick)
            #expect(r.status == 1, "\(file): \(r.stdout)")
            #expect(r.stderr.contains(file) && r.stderr.contains(message), "\(r.stderr)")
            #expect(!r.stdout.contains("summary"))
        }
    }

    @Test func optionsOfTheEncoderBenchAreRefusedWithoutEncoders() throws {
        let r = try CLI.run(["bench", "--images", "4"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--images applies to --encoders only"), "\(r.stderr)")
    }
}
