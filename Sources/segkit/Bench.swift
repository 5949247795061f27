import SegKitSupport
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
    @Option(help: "Comma list of Keras classifier files to measure as segmentation encoders, each in its own process, instead of the three workloads; --compare-with then takes ../shared/bench/encoder_bench.py's JSON lines.")
    var encoders: String?
    @Option(help: "--encoders: the backbone name of each file in encoder_bench.py's lines (comma list; default: each file's name up to its first dot).")
    var names: String?
    @Option(parsing: .unconditional, help: "--encoders: input height and width (default 224).") var size: Int?
    @Option(parsing: .unconditional, help: "--encoders: batch size (default 8).") var batch: Int?
    @Option(parsing: .unconditional, help: "--encoders: random images per forward pass and per epoch (default 64).") var images: Int?
    @Option(help: "--encoders: the recipe of the segmenter, as `segkit build --recipe R --classes 5 --head new` (default unet-pretrained).")
    var recipe: String?
    @Option(parsing: .unconditional, help: "--encoders: epochs per training run; the figure is the median after the first (default 3; 0: the forward figures and profile only).") var epochs: Int?
    @Option(name: .customLong("profile-nodes"), parsing: .unconditional, help: "--encoders: slowest nodes listed in the classifier's profile (default 12).") var profileNodes: Int?
    @Flag(help: .hidden) var child = false

    func validate() throws {
        if encoders != nil { try validateEncoders(); return }
        for (option, given) in [("--names", names != nil), ("--size", size != nil), ("--batch", batch != nil), ("--images", images != nil),
                                ("--recipe", recipe != nil), ("--epochs", epochs != nil),
                                ("--profile-nodes", profileNodes != nil)] where given {
            throw ValidationError("\(option) applies to --encoders only")
        }
        try require(steps, in: 10...100_000, "--steps")
        try require(warmup, in: 0...100_000, "--warmup")
        try require(epochSamples, in: 1...10_000_000, "--epoch-samples")
        let spec = OptionSpec("--only", only)
        try checkSpec {
            for w in try spec.items() where !["i", "ii", "iii"].contains(w) { throw spec.fail(w, "is not a workload: i, ii or iii") }
        }
    }

    func run() throws {
        if encoders != nil { try runEncoders(); return }
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

/// `segkit bench --encoders`: Keras classifiers as segmentation encoders, each
/// measured in a child process of its own (so its peak memory is its own).
extension Bench {
    var encoderFiles: [String] { (encoders ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    /// Each file's backbone name in encoder_bench.py's lines: `--names`, or the
    /// file's name up to its first dot (mobilenet_v2.keras → mobilenet_v2).
    var backboneNames: [String] {
        if let names { return names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        return encoderFiles.map { String(($0 as NSString).lastPathComponent.split(separator: ".", omittingEmptySubsequences: false)[0]) }
    }

    var encoderOptions: EncoderBenchmark.Options {
        var o = EncoderBenchmark.Options()
        o.size = size ?? o.size
        o.batch = batch ?? o.batch
        o.images = images ?? o.images
        o.epochs = epochs ?? o.epochs
        o.profileNodes = profileNodes ?? o.profileNodes
        return o
    }

    var recipeName: String { recipe ?? "unet-pretrained" }

    func validateEncoders() throws {
        if summarize != nil { throw ValidationError("--summarize takes the three workloads' results; it does not apply with --encoders") }
        let o = encoderOptions
        try require(o.size, in: 1...8192, "--size")
        try require(o.batch, in: 1...65_536, "--batch")
        try require(o.images, in: 1...1_000_000, "--images")
        try require(o.epochs, in: 0...10_000, "--epochs")
        try require(o.profileNodes, in: 1...100_000, "--profile-nodes")
        guard o.batch <= o.images else { throw ValidationError("--batch \(o.batch) is more than --images \(o.images)") }
        var files: [String] = []
        try checkSpec {
            files = try OptionSpec("--encoders", encoders!).items()
            if let names {
                let spec = OptionSpec("--names", names)
                let given = try spec.items()
                guard given.count == files.count else { throw spec.fail(names, "gives \(given.count) name(s) for \(files.count) --encoders file(s)") }
            }
        }
        for f in files where !FileManager.default.fileExists(atPath: f) { throw ValidationError("--encoders: no file \(f)") }
    }

    func runEncoders() throws {
        let recipe = try EncoderBenchmark.recipe(recipeName, recipeFolder: try recipeFolder())
        if child { try runEncoderChild(encoderFiles[0], recipe: recipe); return }
        // Read first: a bad file fails now, not after the measurements.
        let keras = try compareWith.map { try KerasEncoderResults(path: $0) }
        for name in backboneNames { _ = try keras?.line(for: name) }
        print(versionText())
        let sgemm = Benchmarks.sgemmGFLOPs(), bandwidth = Benchmarks.memoryBandwidthGBps()
        print(String(format: "sgemm 1024³: %.0f GFLOP/s; memory: %.1f GB/s (256 MiB read and written in place); %d engine workers",
                     sgemm, bandwidth, Parallel.workers))
        var results: [JSONValue] = []
        var summaries: [String] = [], ratioLines: [String] = []
        for (file, name) in zip(encoderFiles, backboneNames) {
            guard case var .object(r) = try measureInChild(file) else { continue }
            r["backbone"] = .string(name)
            EncoderReport.lines(.object(r), name: name, sgemm: sgemm, bandwidth: bandwidth).forEach { print($0) }
            summaries.append(EncoderReport.summary(.object(r), name: name))
            if let keras {
                let rows = try keras.ratios(.object(r), backbone: name)
                ratioLines += EncoderReport.ratioLines(rows, backbone: name)
                ratioLines += keras.differences(.object(r), backbone: name).map { "  " + name + ": settings differ, " + $0 }
                r["keras_ratios"] = .object(Dictionary(uniqueKeysWithValues: rows.map { ($0.name, JSONValue.number($0.ratio)) }))
            }
            results.append(.object(r))
        }
        print("")
        summaries.forEach { print($0) }
        if let keras { (EncoderReport.ratioHeader(file: keras.path) + ratioLines).forEach { print($0) } }
        let document: JSONValue = ["encoders": .array(results), "segkit": ["openblas_core": .string(BLAS.coreName),
                                   "sgemm_gflops": .number(sgemm), "memory_gbps": .number(bandwidth),
                                   "cpu_count": .number(Double(ProcessInfo.processInfo.activeProcessorCount))]]
        if let json { try writeAtomically(json) { try document.jsonText.write(toFile: $0, atomically: false, encoding: .utf8) } }
    }

    /// Runs `segkit bench --child --encoders FILE` and returns its figures; its
    /// error (or signal) becomes this process's, naming the file.
    ///
    /// - Throws: `ModelFileError` when the child fails.
    func measureInChild(_ file: String) throws -> JSONValue {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-bench-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let o = encoderOptions
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        p.arguments = ["bench", "--child", "--encoders", file, "--size", "\(o.size)", "--batch", "\(o.batch)", "--images", "\(o.images)",
                       "--epochs", "\(o.epochs)", "--profile-nodes", "\(o.profileNodes)", "--recipe", recipeName, "--json", out]
        let errors = Pipe()
        p.standardError = errors
        try p.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal {
            throw ModelFileError(message: "\(file): the benchmark's process ended by signal \(p.terminationStatus)")
        }
        guard p.terminationStatus == 0 else {
            let text = message.split(separator: "\n").first.map(String.init) ?? "failed (exit \(p.terminationStatus))"
            let reason = text.hasPrefix("Error: ") ? String(text.dropFirst(7)) : text
            throw ModelFileError(message: reason.contains(file) ? reason : "\(file): \(reason)")
        }
        FileHandle.standardError.write(Data(message.utf8))
        return try loadJSON(out)
    }

    func runEncoderChild(_ file: String, recipe: Recipe) throws {
        // The first read goes through a checking child (`loadModel`: libhdf5 on damaged
        // files); the training runs' fresh copies read the same, checked file.
        var first: KerasModel? = try loadModel(file)
        let load = { () throws -> KerasModel in
            defer { first = nil }
            return try first ?? KerasModel.load(file)
        }
        var r = try naming(file) { try EncoderBenchmark.run(file: file, load: load, recipe: recipe, options: encoderOptions) }
        if case var .object(o) = r { o["peak_rss_mb"] = .number(Benchmarks.peakRSSMiB); r = .object(o) }
        try r.jsonText.write(toFile: json!, atomically: true, encoding: .utf8)
    }
}
