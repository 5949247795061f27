import SegKitSupport
import Foundation
import SegKitEngine
import SegKitKeras

/// A Keras classifier as a segmentation encoder, measured in this process
/// (`segkit bench --encoders`): the figures of `../shared/bench/encoder_bench.py`
/// — the classifier's and the segmenter's forward rates and the seconds of a
/// fine-tuning epoch with and without the feature cache — plus where the
/// classifier's forward time goes, node by node.
public enum EncoderBenchmark {
    /// The sizes of one encoder's measurement (`segkit bench --encoders`' options).
    public struct Options: Sendable {
        /// Input height and width.
        public var size = 224
        /// Images per forward batch and per training step.
        public var batch = 8
        /// Random images per forward pass and per epoch.
        public var images = 64
        /// Epochs per training run; an epoch's figure is the median of those after the first. 0: no training runs.
        public var epochs = 3
        /// Timed passes over the images per forward rate (the median counts: this VM's speed drifts).
        public var passes = 3
        /// Nodes in the profile.
        public var profileNodes = 12
        /// `encoder_bench.py`'s defaults: 224x224, batch 8, 64 images, 3 epochs, 3 passes; 12 profiled nodes.
        public init() {}
    }

    /// Segmentation classes of the segmenters built (encoder_bench.py's default).
    public static let classes = 5

    /// `name` (a built-in recipe or a .yaml file) as `segkit build --recipe NAME
    /// --classes 5 --head new` applies it.
    ///
    /// - Throws: `RecipeError` for an unknown or invalid recipe.
    public static func recipe(_ name: String, recipeFolder: String) throws -> Recipe {
        try Recipe.load(name, overrides: ["classes=\(classes)", "head=new"], recipeFolder: recipeFolder)
    }

    /// Measures the classifier in `file` on `options.images` random images of
    /// `options.size` x `options.size` (uniform in [0, 1), as encoder_bench.py):
    ///
    /// - `classifier_img_s`: the classifier as imported, forward at batch
    ///   `options.batch`, images per second (median of `options.passes` passes
    ///   after a warm-up batch), with its per-node `profile` (`NodeProfile.top`),
    ///   `profile_by_kind` (`NodeProfile.byKind`) and `profile_ms_per_batch`;
    /// - `segmenter_img_s`: the segmenter `recipe` builds on it, run as
    ///   `segkit forward` runs it (`Segmenter.scores`), the same way;
    /// - `epoch_s_cached` / `epoch_s_uncached`: seconds per fine-tuning epoch
    ///   (Adam, learning rate 1e-3, random masks of `classes` classes, no
    ///   validation: `Trainer.fit` as `segkit train` runs it), the median of
    ///   epochs 2…`options.epochs`; of the cached run also `cache_build_s`,
    ///   `cached_run_s` (the whole run, the cache's building included) and,
    ///   with 5 or more epochs, `five_epochs_with_cache_build_s` (what a
    ///   user's 5-epoch run costs); `cache_used` says whether the feature cache applied.
    ///
    /// - Parameter load: reads the classifier; called once per segmenter built
    ///   (each training run starts from the file's weights and a new optimizer).
    /// - Throws: `EncoderBenchmarkError` when `file` is not a one-input image
    ///   classifier that runs at `options.size`; `RecipeError` or `SurgeryError`
    ///   when the recipe does not apply; `EngineError` or `TrainingError` from the runs;
    ///   what `load` throws (`KerasImportError`, `HDF5Error`).
    public static func run(file: String, load: () throws -> KerasModel, recipe: Recipe, options: Options) throws -> JSONValue {
        var out: [String: JSONValue] = ["file": .string(file), "size": .number(Double(options.size)), "batch": .number(Double(options.batch)),
                                        "images": .number(Double(options.images)), "epochs": .number(Double(options.epochs)),
                                        "recipe": .string(recipe.name), "classes": .number(Double(classes))]
        var rng = SeededGenerator(seed: 0)
        // The forward figures' graphs are released before training, so the peak memory is that of one run at a time.
        let data = try forwardFigures(file: file, classifier: try load().graph, recipe: recipe, options: options, rng: &rng, into: &out)
        for cached in options.epochs > 0 ? [true, false] : [] {
            let segmenter = try SegmenterBuilder(recipe: recipe).build(classifier: try load().graph)
            var config = TrainingConfig()
            config.epochs = options.epochs
            config.batchSize = options.batch
            config.optimizer = .adam
            config.learningRate = 1e-3
            config.useCache = cached
            let trainer = try Trainer(graph: segmenter.graph, classes: segmenter.classes, config: config, runner: segmenter.runner)
            let started = DispatchTime.now().uptimeNanoseconds
            let history = try trainer.fit(train: data, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
            let wall = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            // As encoder_bench.py: the first epoch pays for first-touch allocations, so it is left out when there are others.
            let timed = history.map(\.seconds)
            out[cached ? "epoch_s_cached" : "epoch_s_uncached"] = .number(LayerProfiler.median(Array(timed.count > 1 ? timed.dropFirst() : timed[...])))
            if cached {
                // fit's time outside its epochs is building the cache.
                let build = wall - timed.reduce(0, +)
                out["cache_used"] = .bool(trainer.usedCache)
                out["cache_build_s"] = .number(build)
                out["cached_run_s"] = .number(wall)
                if timed.count >= 5 { out["five_epochs_with_cache_build_s"] = .number(build + timed.prefix(5).reduce(0, +)) }
            }
        }
        return .object(out)
    }

    /// Adds the classifier's and the segmenter's forward figures and the
    /// classifier's profile to `out`; returns the random images with random
    /// masks as a training set.
    static func forwardFigures(file: String, classifier: Graph, recipe: Recipe, options: Options, rng: inout SeededGenerator,
                               into out: inout [String: JSONValue]) throws -> SegmentationDataset {
        let channels = try inputChannels(classifier, file: file, size: options.size)
        let batches = stride(from: 0, to: options.images, by: options.batch).map { start in
            Tensor.randomUniform(shape: [min(options.batch, options.images - start), options.size, options.size, channels],
                                 low: 0, high: 1, using: &rng)
        }
        out["params"] = .number(Double(classifier.parameters.reduce(0) { $0 + $1.value.count }))
        let profiler = LayerProfiler()
        classifier.profiler = profiler
        out["classifier_img_s"] = .number(try rate(batches, options, reset: profiler.reset) { _ = try classifier.forward([$0]) })
        classifier.profiler = nil
        let shapes = try classifier.staticShapesFor(batch: options.batch, size: options.size)
        let (rows, total) = NodeProfile.top(options.profileNodes, graph: classifier, profiler: profiler, shapes: shapes)
        out["profile"] = .array(rows)
        out["profile_ms_per_batch"] = .number(total)
        out["profile_by_kind"] = .array(NodeProfile.byKind(graph: classifier, profiler: profiler, shapes: shapes))

        let segmenter = try SegmenterBuilder(recipe: recipe).build(classifier: classifier)
        out["segmenter_trainable_params"] = .number(Double(segmenter.graph.trainableParameters.reduce(0) { $0 + $1.value.count }))
        out["segmenter_img_s"] = .number(try rate(batches, options, reset: {}) { _ = try segmenter.runner.scores($0) })

        let masks = (0..<(options.images * options.size * options.size)).map { _ in Int32(rng.next() % UInt64(classes)) }
        return SegmentationDataset(count: options.images, height: options.size, width: options.size, channels: channels,
                                   pixels: batches.flatMap(\.scalars), masks: masks, isByteValued: false)
    }

    /// Images per second of `body` over `batches`: one warm-up batch, then the
    /// median of `options.passes` timed passes over all of them (`reset` is
    /// called after the warm-up, so a profiler keeps the timed passes only).
    static func rate(_ batches: [Tensor], _ options: Options, reset: () -> Void, _ body: (Tensor) throws -> Void) throws -> Double {
        try body(batches[0])
        reset()
        var seconds: [Double] = []
        for _ in 0..<options.passes {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for b in batches { try body(b) }
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return Double(options.images) / LayerProfiler.median(seconds)
    }

    /// The channels of `graph`'s image input, after checking that `graph` is a
    /// one-input image classifier (a head SegKit recognises: global pooling or
    /// Flatten, then class scores) that runs at `size` x `size`.
    ///
    /// - Throws: `EncoderBenchmarkError` naming `file`, what was expected and what was found.
    static func inputChannels(_ graph: Graph, file: String, size: Int) throws -> Int {
        let inputs = graph.inputIndices.compactMap { graph.nodes[$0].layer as? InputLayer }
        guard inputs.count == 1, inputs[0].shape.count == 4, let channels = inputs[0].shape[3] else {
            throw EncoderBenchmarkError(message: "\(file): expected a classifier with one image input (batch, height, width, channels), "
                                        + "found input(s) \(inputs.map { describe($0.shape) }.joined(separator: ", "))")
        }
        let declared = inputs[0].shape
        if let h = declared[1], let w = declared[2], h != size || w != size {
            throw EncoderBenchmarkError(message: "\(file): the classifier takes \(h)x\(w) images (its input layer), not --size \(size) (\(size)x\(size))"
                                        + (h == w ? ": give --size \(h)" : "; the bench measures square images only"))
        }
        do {
            let source = try withoutInputResizing(graph)
            _ = try ClassifierHead.find(in: source, shapes: try source.staticShapes())
        } catch let SurgeryError.severalOutputs(names) {
            throw EncoderBenchmarkError(message: "\(file): expected a classifier with one output, found \(names.count) (\(names.joined(separator: ", ")))")
        } catch let e as SurgeryError {
            throw EncoderBenchmarkError(message: "\(file): expected a classifier (class scores after a global pooling or a Flatten), found none: \(e)")
        }
        return channels
    }
}

/// A file `segkit bench --encoders` cannot measure, and why.
public struct EncoderBenchmarkError: SegKitError {
    /// The file, what was expected and what was found.
    public let message: String
    /// `message`, as it is.
    public var errorDescription: String? { message }
}
