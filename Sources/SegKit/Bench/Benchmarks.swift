import SegKitSupport
import Foundation
import SegKitEngine
import SegKitKeras

/// The three workloads of `../shared/bench/keras_bench.py`, measured the same
/// way: warm-up steps, then the median of timed steps.
public enum Benchmarks {
    /// The workloads' names in `keras_bench.py`'s JSON, by roman numeral.
    public static let names = ["i": "i_fcn_forward_b32", "ii": "ii_skip_segmenter_train_b32", "iii": "iii_unet_train_b16"]

    /// How each workload is timed.
    public struct Options: Sendable {
        /// Timed steps (or forward passes) per workload; the median counts. At least 1.
        public var steps = 15
        /// Untimed steps before them (first-touch allocations, weight packing).
        public var warmup = 3
        /// Random 128x128 samples in each of (ii)'s epochs.
        public var epochSamples = 512
        /// `keras_bench.py`'s settings: 15 timed steps after 3 warm-up steps, epochs of 512 samples.
        public init() {}
    }

    /// The median, min and max seconds of `options.steps` runs of `body` after
    /// `options.warmup` runs; `profiler` keeps the timed runs only (the first
    /// run's page faults and packing otherwise inflated every layer's share).
    static func time(_ options: Options, profiler: LayerProfiler, _ body: () throws -> Void) rethrows -> (median: Double, min: Double, max: Double) {
        for _ in 0..<options.warmup { try body() }
        profiler.reset()
        var times: [Double] = []
        // At least one timed step: a median of none is no figure.
        for _ in 0..<max(options.steps, 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        return (times[times.count / 2], times.first!, times.last!)
    }

    /// sgemm 1024³ GFLOP/s split across the engine's workers, as the engine calls
    /// it: the best of 16 calls (this VM's second core is at times busy with a
    /// neighbour, which halves a median; the convolutions are compared with what
    /// the machine can do, not with its slow moments).
    public static func sgemmGFLOPs(n: Int = 1024) -> Double {
        var seconds: [Double] = []
        for _ in 0..<16 { seconds.append(BLAS.timeSquareSgemm(n: n)) }
        return 2 * Double(n * n * n) / seconds.min()! / 1e9
    }

    /// The figures of one workload, as the Keras script reports them plus SegKit's extras.
    static func report(_ t: (median: Double, min: Double, max: Double), batch: Int, options: Options, graph: Graph,
                       profiler: LayerProfiler, extra: [String: JSONValue] = [:]) throws -> JSONValue {
        var out: [String: JSONValue] = [
            "batch": .number(Double(batch)), "median_s_per_step": .number(t.median), "min_s": .number(t.min), "max_s": .number(t.max),
            "images_per_s": .number(Double(batch) / t.median), "steps": .number(Double(options.steps)), "warmup": .number(Double(options.warmup)),
            "params": .number(Double(graph.parameters.reduce(0) { $0 + $1.value.count })),
            "trainable_params": .number(Double(graph.trainableParameters.reduce(0) { $0 + $1.value.count })),
        ]
        // Share of the profiled time per layer type, forward and backward together.
        var byKind: [String: Double] = [:]
        for (node, runs) in profiler.forwardRuns { byKind[graph.nodes[node].layer.kind, default: 0] += runs.reduce(0, +) }
        for (node, runs) in profiler.backwardRuns { byKind[graph.nodes[node].layer.kind + " (backward)", default: 0] += runs.reduce(0, +) }
        let total = byKind.values.reduce(0, +)
        out["time_share"] = .object(byKind.mapValues { .number(total > 0 ? $0 / total : 0) })
        // Milliseconds per step of every node, forward and backward apart (the
        // median over the timed steps, as the step time): where the time goes.
        var perNode: [String: JSONValue] = [:]
        for (node, runs) in profiler.forwardRuns { perNode[graph.nodes[node].name] = .number(1000 * LayerProfiler.median(runs)) }
        for (node, runs) in profiler.backwardRuns { perNode[graph.nodes[node].name + " (backward)"] = .number(1000 * LayerProfiler.median(runs)) }
        for (name, runs) in profiler.otherRuns { perNode[name] = .number(1000 * LayerProfiler.median(runs)) }
        out["layer_ms_per_step"] = .object(perNode)
        // Forward GFLOP/s of every convolution, from its FLOPs at this batch and its median time.
        let shapes = try graph.staticShapesFor(batch: batch)
        var rates: [String: JSONValue] = [:]
        for (i, node) in graph.nodes.enumerated() {
            guard let runs = profiler.forwardRuns[i], case let seconds = LayerProfiler.median(runs), seconds > 0,
                  let flops = convolutionFLOPs(node, shapes, i) else { continue }
            rates[node.name] = ["gflops": .number(flops / seconds / 1e9), "filters": .number(Double(shapes[i].last ?? 0))]
        }
        out["conv_forward_gflops"] = .object(rates)
        for (k, v) in extra { out[k] = v }
        return .object(out)
    }

    static func convolutionFLOPs(_ node: Graph.Node, _ shapes: [[Int]], _ i: Int) -> Double? {
        let out = shapes[i]
        switch node.layer {
        case let c as Conv2D:
            let k = c.kernel.value.shape
            return 2 * Double(out[0] * out[1] * out[2]) * Double(k[0] * k[1] * k[2] * k[3])
        case let t as Conv2DTranspose:
            let k = t.kernel.value.shape, input = shapes[node.inputs[0]]
            return 2 * Double(input[0] * input[1] * input[2]) * Double(k[0] * k[1] * k[2] * k[3])
        default: return nil
        }
    }

    static func randomBatch(_ batch: Int, classes: Int, seed: UInt64) -> (Tensor, [Int32]) {
        var rng = SeededGenerator(seed: seed)
        let x = Tensor.randomUniform(shape: [batch, 128, 128, 1], low: 0, high: 1, using: &rng)
        let y = (0..<(batch * 128 * 128)).map { _ in Int32(rng.next() % UInt64(classes)) }
        return (x, y)
    }

    /// One training step as Keras's `make_train_step`: forward, sparse CE from logits, backward, Adam.
    static func trainStep(_ graph: Graph, _ optimizer: Adam, _ x: Tensor, _ y: [Int32]) throws {
        let pass = try graph.forward([x], mode: .training)
        try TrainingStep(graph: graph, optimizer: optimizer, parameters: graph.trainableParameters, lossName: "loss (softmax cross-entropy)")(
            pass, loss: { try SoftmaxCrossEntropy()(logits: $0, labels: y) })
    }

    /// (i) forward of the convolutionalized classifier + bilinear x8 to 128x128, batch 32,
    /// on random images [32, 128, 128, 1] uniform in [0, 1). The object has the step's
    /// seconds (`median_s_per_step`, `min_s`, `max_s`), `images_per_s`, the parameter
    /// counts, each layer kind's `time_share`, each node's `layer_ms_per_step` and each
    /// convolution's `conv_forward_gflops`.
    ///
    /// - Throws: `RecipeError` when `heatmap-bilinear` cannot be read or applied,
    ///   `SurgeryError` for a classifier it cannot convert, `EngineError` from the graph.
    public static func fcnForward(classifier: KerasModel, recipeFolder: String, options: Options) throws -> JSONValue {
        let seg = try SegmenterBuilder(recipe: try Recipe.load("heatmap-bilinear", recipeFolder: recipeFolder)).build(classifier: classifier.graph)
        let profiler = LayerProfiler()
        seg.graph.profiler = profiler
        let (x, _) = randomBatch(32, classes: 11, seed: 0)
        let t = try time(options, profiler: profiler) { _ = try seg.graph.forward([x]) }
        return try report(t, batch: 32, options: options, graph: seg.graph, profiler: profiler)
    }

    /// (ii) one training step of transposed-skips on the frozen classifier, batch 32, and
    /// one epoch over `epochSamples` samples with and without the feature cache: the
    /// figures of `fcnForward`, and `epochN_cached_s` / `epochN_uncached_s` (the second
    /// epoch's seconds) with `…_first_epoch_s` (the rest of the run: the first epoch and
    /// the cache's building).
    ///
    /// - Throws: what `classifier` throws (`KerasImportError`, `HDF5Error`), `RecipeError`
    ///   or `SurgeryError` when `transposed-skips` does not apply, `TrainingError` and
    ///   `EngineError` from the runs.
    public static func skipTrain(classifier: () throws -> KerasModel, recipeFolder: String, options: Options) throws -> JSONValue {
        let recipe = try Recipe.load("transposed-skips", recipeFolder: recipeFolder)
        let imported = try classifier().graph
        let seg = try SegmenterBuilder(recipe: recipe).build(classifier: imported)
        let profiler = LayerProfiler()
        seg.graph.profiler = profiler
        let optimizer = Adam(learningRate: 1e-3)
        let (x, y) = randomBatch(32, classes: 11, seed: 0)
        let t = try time(options, profiler: profiler) { try trainStep(seg.graph, optimizer, x, y) }
        seg.graph.profiler = nil
        // Epochs: the same random data, cache on and off; the second epoch is the steady state.
        var epochs: [String: JSONValue] = [:]
        var rng = SeededGenerator(seed: 3)
        let n = options.epochSamples
        let data = SegmentationDataset(count: n, height: 128, width: 128, channels: 1,
                                       pixels: (0..<(n * 128 * 128)).map { _ in Float(rng.next() % 256) },
                                       masks: (0..<(n * 128 * 128)).map { _ in Int32(rng.next() % 11) }, isByteValued: true)
        for cached in [true, false] {
            let fresh = try SegmenterBuilder(recipe: recipe).build(classifier: imported)
            var config = TrainingConfig()
            config.epochs = 2
            config.batchSize = 32
            config.useCache = cached
            let trainer = try Trainer(graph: fresh.graph, classes: 11, config: config)
            let started = Date()
            let history = try trainer.fit(train: data, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
            let total = Date().timeIntervalSince(started)
            let key = cached ? "epoch\(n)_cached" : "epoch\(n)_uncached"
            epochs[key + "_s"] = .number(history[1].seconds)
            epochs[key + "_first_epoch_s"] = .number(total - history[1].seconds)
        }
        return try report(t, batch: 32, options: options, graph: seg.graph, profiler: profiler, extra: epochs)
    }

    /// (iii) one training step of the from-scratch U-Net (16-32-64-128, bottleneck 256), batch 16,
    /// on random images [16, 128, 128, 1] and random masks of 11 classes; the object as `fcnForward`'s.
    ///
    /// - Throws: `RecipeError` when `unet-scratch` cannot be read or built, `EngineError` from the graph.
    public static func unetTrain(recipeFolder: String, options: Options) throws -> JSONValue {
        // The Keras reference U-Net has no dropout: match it.
        let recipe = try Recipe.load("unet-scratch", overrides: ["classes=11", "input_channels=1", "dropout=0"], recipeFolder: recipeFolder)
        let seg = try SegmenterBuilder(recipe: recipe).build(classifier: nil)
        let profiler = LayerProfiler()
        seg.graph.profiler = profiler
        let optimizer = Adam(learningRate: 1e-3)
        let (x, y) = randomBatch(16, classes: 11, seed: 0)
        let t = try time(options, profiler: profiler) { try trainStep(seg.graph, optimizer, x, y) }
        return try report(t, batch: 16, options: options, graph: seg.graph, profiler: profiler)
    }

    /// Peak resident memory of this process so far, in MiB.
    public static var peakRSSMiB: Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}

extension Graph {
    /// Static shapes with the batch set and spatial sizes resolved by running
    /// shape inference at `size` x `size` (the inputs' undeclared sizes).
    func staticShapesFor(batch: Int, size: Int = 128) throws -> [[Int]] {
        var shapes: [[Int]] = []
        for node in nodes {
            if let input = node.layer as? InputLayer {
                shapes.append(input.shape.enumerated().map { i, d in i == 0 ? batch : (d ?? size) })
            } else {
                let s = try node.layer.outputShape(for: node.inputs.map { shapes[$0].map { Optional($0) } })
                shapes.append(s.map { $0 ?? 0 })
            }
        }
        return shapes
    }
}
