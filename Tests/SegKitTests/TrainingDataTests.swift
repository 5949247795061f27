import Foundation
import Testing
import SegKitEngine
import TestFixtures
@testable import SegKit

/// Training on data laid out as real datasets ship (Tests/Fixtures/data):
/// mixed sizes, sizes off the stride grid, lazily read folders.
@Suite(.serialized) struct TrainingDataTests {
    func open(_ folder: String, budget: Int = ImagePairSet.defaultMemoryBudget) throws -> any LabelledImages {
        var request = DataRequest(classes: 3, channels: 3)
        request.memoryBudget = budget
        return try DataSource.parse("\(dataFixtures)/\(folder)").open(request).samples
    }

    /// transposed-skips on the stride-8 plain CNN, adapted to RGB and 3 classes
    /// (its skip joins are where mismatched sizes used to fail).
    func skips() throws -> BuiltSegmenter { try build("transposed-skips", "plain_cnn.k3.keras", ["input_channels=3", "classes=3"]).0 }

    func config(epochs: Int = 2, batch: Int = 2) -> TrainingConfig {
        var c = TrainingConfig()
        c.epochs = epochs
        c.batchSize = batch
        c.learningRate = 0.01
        c.seed = 3
        return c
    }

    func train(_ seg: BuiltSegmenter, _ data: any LabelledImages, _ c: TrainingConfig) throws -> (Trainer, [EpochRecord]) {
        let trainer = try Trainer(graph: seg.graph, classes: 3, config: c, runner: seg.runner)
        let history = try trainer.fit(train: data, val: data, observer: nil, checkpoint: { _ in }, improved: { _ in })
        return (trainer, history)
    }

    @Test func imagesOffTheStrideGridTrainWithAndWithoutTheCache() throws {
        let data = try open("odd")     // 45x75: a multiple of neither 2, 4 nor 8
        for cached in [true, false] {
            var c = config()
            c.useCache = cached
            let (trainer, history) = try train(try skips(), data, c)
            #expect(trainer.usedCache == cached)
            #expect(history.count == 2 && history.allSatisfy { $0.loss.isFinite && $0.valMeanIoU != nil })
        }
    }

    @Test func aMixedSizeFolderTrainsInSizeBucketsOneSizePerBatch() throws {
        let data = try open("mixed")   // five sizes
        let pipeline = TrainingBatches(data: data, config: config(batch: 4), ignoreLabel: -1)
        let plan = pipeline.plan(epoch: 0)
        #expect(plan.count == 5 && plan.allSatisfy { $0.count == 1 })
        #expect(Set(plan.flatMap { $0 }) == Set(0..<5))
        let (_, history) = try train(try skips(), data, config(batch: 4))
        #expect(history.allSatisfy { $0.loss.isFinite })
    }

    @Test func cropsMixSizesInOneBatchAndPadSmallImagesWithIgnoredPixels() throws {
        let data = try open("mixed")
        var c = config(batch: 5)
        c.crop = (40, 40)
        c.scaleRange = 0.5...1.5
        c.augment = [.flip]
        let pipeline = TrainingBatches(data: data, config: c, ignoreLabel: -1)
        #expect(pipeline.plan(epoch: 0) .count == 1)
        let batch = try pipeline.assemble(Array(0..<5), epoch: 0, step: 0, augment: true)
        #expect(batch.count == 5 && batch.height == 40 && batch.width == 40)
        // The 36x20 image (index 3 in name order) cannot fill a 40x40 crop at scale ≤ 1.5 on its short side: padding is ignored.
        #expect(batch.masks.contains(-1))
        #expect(Set(batch.masks).isSubset(of: [-1, 0, 1, 2]))
        // The same (seed, epoch, step) gives the same batch, however the decoding was spread over threads.
        let again = try pipeline.assemble(Array(0..<5), epoch: 0, step: 0, augment: true)
        #expect(again.pixels == batch.pixels && again.masks == batch.masks)
        let (_, history) = try train(try skips(), data, c)
        #expect(history.allSatisfy { $0.loss.isFinite })
    }

    @Test func theCacheOverSizeBucketsGivesTheSameWeightsAsRunningTheEncoder() throws {
        let data = try open("mixed")
        var weights: [[Tensor]] = []
        for cached in [true, false] {
            var c = config()
            c.useCache = cached
            let seg = try skips()
            _ = try train(seg, data, c)
            weights.append(seg.graph.trainableParameters.map(\.value))
        }
        for (a, b) in zip(weights[0], weights[1]) { #expect(maxAbsDifference(a, b) <= 1e-5) }
    }

    @Test func aLazilyReadFolderTrainsExactlyAsTheSameFolderInMemory() throws {
        var histories: [[EpochRecord]] = []
        for budget in [ImagePairSet.defaultMemoryBudget, 1000] {
            var c = config()
            c.useCache = false
            let (_, h) = try train(try skips(), try open("jpeg_folder", budget: budget), c)
            histories.append(h.map { var r = $0; r.seconds = 0; return r })
        }
        #expect(histories[0] == histories[1])
    }

    @Test func rescalingResizesTheImageBilinearlyAndTheMaskByNearestNeighbour() throws {
        let pipeline = TrainingBatches(data: try open("odd"), config: config(), ignoreLabel: -1)
        var s = LabelledImage(name: "s", height: 2, width: 2, channels: 1, pixels: [0, 10, 20, 30], mask: [0, 1, 2, 0])
        pipeline.rescale(&s, factor: 2)
        #expect((s.height, s.width) == (4, 4))
        #expect(s.mask == [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 0, 0, 2, 2, 0, 0])
        // Half-pixel centres (tf.image.resize's bilinear): the first row is 0, 2.5, 7.5, 10.
        #expect(Array(s.pixels[0..<4]) == [0, 2.5, 7.5, 10])
    }
}

@Suite struct CachedCropTests {
    /// A crop served from the cache is the window of the whole image's maps that
    /// lies over it: away from the crop's border (by the receptive-field radius)
    /// it equals running the encoder on the crop itself.
    @Test func aCachedCropEqualsTheEncoderOnTheCropAwayFromItsBorder() throws {
        let seg = try build("transposed-skips", "plain_cnn.k3.keras", ["input_channels=3", "classes=3"]).0
        var rng = SeededGenerator(seed: 4)
        let (h, w) = (120, 136)
        let data = SegmentationDataset(count: 1, height: h, width: w, channels: 3,
                                       pixels: (0..<(h * w * 3)).map { _ in Float(rng.next() % 256) }, masks: [Int32](repeating: 0, count: h * w),
                                       isByteValued: true)
        let nodes = try #require(FeatureCache.boundary(of: seg.graph))
        let runner = seg.runner
        let crop = (height: 88, width: 96)
        let crops = try CachedCrops(graph: seg.graph, runner: runner, nodes: nodes, data: data, crop: crop)
        let pipeline = TrainingBatches(data: data, config: TrainingConfig(), ignoreLabel: -1)
        let whole = try pipeline.assemble([0], epoch: 0, step: 0, augment: false)
        let placement = try runner.sizeRule.placement(height: h, width: w)
        let cache = try FeatureCache(graph: seg.graph, nodes: nodes, batches: [[0]], totalInputPixels: h * w, input: { _ in
            placement.padded(try Tensor(shape: [1, h, w, 3], scalars: whole.pixels))
        }, limitBytes: 1 << 30)
        var g = SeededGenerator(seed: 9)
        for _ in 0..<6 {
            let (row, col, at) = crops.choose(size: (h, w), rng: &g)
            let windows = try cache.windows(for: [0], at: [at], size: crops.windowSize)
            // The encoder on the crop alone (an origin outside the image takes the mirror padding the cache saw).
            var pixels: [Float] = []
            for r in row..<(row + crop.height) {
                for c in col..<(col + crop.width) { pixels += whole.pixels[((mirrorIndex(r, h) * w + mirrorIndex(c, w)) * 3)..<((mirrorIndex(r, h) * w + mirrorIndex(c, w)) * 3 + 3)] }
            }
            let pc = try runner.sizeRule.placement(height: crop.height, width: crop.width)
            let x = pc.padded(try Tensor(shape: [1, crop.height, crop.width, 3], scalars: pixels))
            let pass = try seg.graph.forward([x], mode: .inference, keep: Set(nodes))
            let geometry = try seg.graph.geometry(height: x.shape[1], width: x.shape[2])
            for n in nodes {
                let direct = pass.values[n]!, window = windows[n]!
                #expect(direct.shape == window.shape)
                let g = geometry[n]!
                let margin = Int((Double(g.rows.receptiveField) / 2 + Double(max(pc.padTop, pc.padLeft, pc.padBottom, pc.padRight))) / g.rows.stride) + 1
                let (_, rows, cols, c) = direct.nhwc
                var compared = 0
                for r in margin..<max(margin, rows - margin) {
                    for col in margin..<max(margin, cols - margin) {
                        for k in 0..<c {
                            let i = (r * cols + col) * c + k
                            #expect(abs(direct.scalars[i] - window.scalars[i]) <= 1e-3 * max(1, abs(direct.scalars[i])))
                            compared += 1
                        }
                    }
                }
                #expect(compared > 0, "crop too small to have an interior at node \(seg.graph.nodes[n].name)")
            }
        }
    }
}
