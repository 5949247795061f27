import ArgumentParser
import Foundation
import SegKit
import SegKitEngine
import SegKitKeras

/// `segkit bench`: the Keras reference's three workloads, measured the same way.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark SegKit on the three workloads of ../shared/bench/keras_bench.py (use a release build).")

    @Option(help: "Comma list of workloads: i, ii, iii.") var only: String = "i,ii,iii"
    @Option(parsing: .unconditional, help: "Timed steps per workload (≥ 10).") var steps: Int = 15
    @Option(parsing: .unconditional) var warmup: Int = 3
    @Option(parsing: .unconditional, help: "Samples per epoch for the cached / uncached epoch figures.") var epochSamples: Int = 512
    @Option(help: "Write the results as JSON (the Keras script's shape plus SegKit's figures).") var json: String?
    @Option(help: "keras_bench.py --json results (comma list) to print SegKit/Keras ratios against.") var compareWith: String?
    @Option(help: "Earlier `segkit bench --json` results (comma list, one per --compare-with file, each run back to back with its Keras run): print the median of each ratio over the pairs instead of measuring.")
    var summarize: String?
    @Flag(help: .hidden) var child = false

    func validate() throws {
        try require(steps, in: 10...100_000, "--steps")
        try require(warmup, in: 0...100_000, "--warmup")
        try require(epochSamples, in: 1...10_000_000, "--epoch-samples")
        let spec = OptionSpec("--only", only)
        try checkSpec {
            for w in try spec.items() where !["i", "ii", "iii"].contains(w) { throw spec.fail(w, "is not a workload: i, ii or iii") }
        }
    }

    func run() throws {
        let workloads = only.split(separator: ",").map(String.init)
        for w in workloads where Benchmarks.names[w] == nil { throw ValidationError("unknown workload '\(w)' (i, ii, iii)") }
        if child { try runChild(workloads[0]); return }
        if let summarize { try printSummary(ours: summarize, keras: compareWith); return }
        print(versionText())
        let sgemm = Benchmarks.sgemmGFLOPs()
        print(String(format: "sgemm 1024³: %.0f GFLOP/s (OpenBLAS %@ kernels, %d thread per call, %d engine workers)", sgemm, BLAS.coreName, BLAS.threadCount, Parallel.workers))
        var results: [String: JSONValue] = [:]
        for w in workloads {
            // Each workload in its own process, so its peak memory is its own.
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-bench-\(UUID().uuidString).json").path
            defer { try? FileManager.default.removeItem(atPath: out) }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            p.arguments = ["bench", "--child", "--only", w, "--steps", "\(steps)", "--warmup", "\(warmup)", "--epoch-samples", "\(epochSamples)", "--json", out]
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw ValidationError("workload \(w) failed (exit \(p.terminationStatus))") }
            let r = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: out)), source: out)
            results[Benchmarks.names[w]!] = r
            printWorkload(Benchmarks.names[w]!, r, sgemm: sgemm)
        }
        let document: JSONValue = ["workloads": .object(results), "segkit": ["openblas_core": .string(BLAS.coreName),
                                   "openblas_threads": .number(Double(BLAS.threadCount)), "sgemm_gflops": .number(sgemm),
                                   "cpu_count": .number(Double(ProcessInfo.processInfo.activeProcessorCount))]]
        if let json { try writeAtomically(json) { try document.jsonText.write(toFile: $0, atomically: false, encoding: .utf8) } }
        if let compareWith { try printRatios(results, keras: compareWith) }
    }

    func runChild(_ w: String) throws {
        var options = Benchmarks.Options()
        options.steps = steps
        options.warmup = warmup
        options.epochSamples = epochSamples
        let folder = try recipeFolder()
        let classifier = { try KerasModel.load(folder + "/demo/classifier.keras") }
        var r: JSONValue
        switch w {
        case "i": r = try Benchmarks.fcnForward(classifier: try classifier(), recipeFolder: folder, options: options)
        case "ii": r = try Benchmarks.skipTrain(classifier: classifier, recipeFolder: folder, options: options)
        default: r = try Benchmarks.unetTrain(recipeFolder: folder, options: options)
        }
        if case var .object(o) = r { o["peak_rss_mb"] = .number(Benchmarks.peakRSSMiB); r = .object(o) }
        try r.jsonText.write(toFile: json!, atomically: true, encoding: .utf8)
    }

    func printWorkload(_ name: String, _ r: JSONValue, sgemm: Double) {
        let ips = r["images_per_s"]?.double ?? 0
        print(String(format: "\n%@: %.1f images/s (median %.4f s/step, min %.4f, max %.4f, batch %d), peak RSS %.0f MiB", name, ips,
                     r["median_s_per_step"]?.double ?? 0, r["min_s"]?.double ?? 0, r["max_s"]?.double ?? 0, r["batch"]?.int ?? 0,
                     r["peak_rss_mb"]?.double ?? 0))
        for key in ["epoch\(epochSamples)_cached_s", "epoch\(epochSamples)_uncached_s"] {
            if let s = r[key]?.double { print(String(format: "  %@: %.2f s (first epoch incl. cache build: %.2f s)", key, s, r[key.replacingOccurrences(of: "_s", with: "_first_epoch_s")]?.double ?? 0)) }
        }
        if let share = r["time_share"]?.object {
            let top = share.sorted { ($0.value.double ?? 0) > ($1.value.double ?? 0) }.prefix(6)
            print("  time by layer type: " + top.map { String(format: "%@ %.0f%%", $0.key, 100 * ($0.value.double ?? 0)) }.joined(separator: ", "))
        }
        if let layers = r["layer_ms_per_step"]?.object {
            let top = layers.sorted { ($0.value.double ?? 0) > ($1.value.double ?? 0) }.prefix(8)
            print("  slowest layers, ms per step: " + top.map { String(format: "%@ %.1f", $0.key, $0.value.double ?? 0) }.joined(separator: ", "))
        }
        if let convs = r["conv_forward_gflops"]?.object {
            let wide = convs.filter { ($0.value["filters"]?.double ?? 0) >= 32 }.sorted { $0.key < $1.key }
            if !wide.isEmpty {
                print("  conv forward GFLOP/s (≥ 32 filters; sgemm \(Int(sgemm))): " + wide.map {
                    String(format: "%@ %.0f (%.0f%%)", $0.key, $0.value["gflops"]?.double ?? 0, 100 * ($0.value["gflops"]?.double ?? 0) / sgemm)
                }.joined(separator: ", "))
            }
        }
    }

    /// SegKit/Keras ratios of one back-to-back pair of runs: images/s per
    /// workload, and the cached and uncached epochs against Keras's epoch time
    /// (epoch samples at Keras's training-step rate; Keras has no feature cache).
    func ratios(_ ours: [String: JSONValue], keras: JSONValue) -> [(name: String, segkit: Double, keras: Double, ratio: Double)] {
        var rows: [(String, Double, Double, Double)] = []
        for name in Benchmarks.names.values.sorted() {
            guard let a = ours[name]?["images_per_s"]?.double, let b = keras["workloads"]?[name]?["images_per_s"]?.double else { continue }
            rows.append((name + " (images/s)", a, b, a / b))
            if name.hasPrefix("ii_") {
                for kind in ["cached", "uncached"] {
                    guard let seconds = ours[name]?["epoch\(epochSamples)_\(kind)_s"]?.double else { continue }
                    let kerasSeconds = Double(epochSamples) / b
                    rows.append(("ii epoch of \(epochSamples), \(kind) (s)", seconds, kerasSeconds, kerasSeconds / seconds))
                }
            }
        }
        return rows
    }

    func loadJSON(_ path: String) throws -> JSONValue {
        try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: path)), source: path)
    }

    func printRatios(_ ours: [String: JSONValue], keras path: String) throws {
        let keras = try loadJSON(path)
        print("\nSegKit / Keras (TensorFlow \(keras["tf"]?.string ?? "?"), \(keras["intra_op_threads"]?.int ?? 0) threads):")
        for r in ratios(ours, keras: keras) {
            print(String(format: "  %-42@ SegKit %8.2f   Keras %8.2f   ratio %.2f", r.name, r.segkit, r.keras, r.ratio))
        }
    }

    /// The median over rounds of each ratio (this machine's speed drifts between
    /// runs minutes apart; pairs run back to back share the drift).
    func printSummary(ours: String, keras: String?) throws {
        let oursPaths = ours.split(separator: ",").map(String.init)
        let kerasPaths = (keras ?? "").split(separator: ",").map(String.init)
        guard oursPaths.count == kerasPaths.count, !oursPaths.isEmpty else {
            throw ValidationError("--summarize needs one --compare-with Keras result per SegKit result (\(oursPaths.count) and \(kerasPaths.count) given)")
        }
        var table: [String: [Double]] = [:]
        var order: [String] = []
        for (o, k) in zip(oursPaths, kerasPaths) {
            guard let workloads = try loadJSON(o)["workloads"]?.object else { throw ValidationError("\(o): no \"workloads\" object") }
            for r in ratios(workloads, keras: try loadJSON(k)) {
                if table[r.name] == nil { order.append(r.name) }
                table[r.name, default: []].append(r.ratio)
            }
        }
        print("SegKit / Keras, the median over the back-to-back pairs given (each pair's ratio in brackets):")
        for name in order {
            let values = table[name]!
            let median = values.sorted()[values.count / 2]
            print(String(format: "  %-42@ %.2f   (%@)", name, median, values.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
        }
    }
}
