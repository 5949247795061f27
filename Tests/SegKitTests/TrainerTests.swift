import SegKitSupport
import Foundation
import Testing
import HDF5
import SegKitEngine
import SegKitKeras
import TestFixtures
@testable import SegKit

/// A small generated problem: 32x32 canvases of Fashion-MNIST items, segmented
/// by a transposed-skips decoder on the stride-8 plain CNN fixture (24x24-trained,
/// any size works). Small enough for a unit test, real enough to learn.
struct TinyProblem {
    let train: SegmentationDataset
    let val: SegmentationDataset

    init(count: Int = 48) throws {
        var spec = FashionCanvas()
        spec.canvasSize = 32
        spec.count = count
        spec.minItems = 1
        spec.maxItems = 1
        spec.seed = 11
        train = try spec.generate()
        spec.split = .test
        spec.count = 16
        val = try spec.generate()
    }

    func segmenter(_ recipe: String = "transposed-skips") throws -> BuiltSegmenter {
        try build(recipe).0
    }

    func config(epochs: Int = 3) -> TrainingConfig {
        var c = TrainingConfig()
        c.epochs = epochs
        c.batchSize = 8
        c.learningRate = 0.02
        c.seed = 5
        return c
    }
}

@Suite(.serialized) struct TrainerTests {
    @Test func trainingTheDecoderRaisesValidationMeanIoU() throws {
        let p = try TinyProblem()
        let seg = try p.segmenter()
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: p.config(epochs: 4))
        let (before, _) = try trainer.evaluate(p.val)
        let history = try trainer.fit(train: p.train, val: p.val, observer: nil, checkpoint: { _ in }, improved: { _ in })
        let after = history.map { $0.valMeanIoU ?? 0 }.max() ?? 0
        #expect(after > before.meanIoU + 0.05, "val mIoU \(before.meanIoU) → \(after)")
        #expect(history.last!.loss < history.first!.loss)
        #expect(trainer.usedCache)
    }

    @Test func onlyTrainableParametersChange() throws {
        let p = try TinyProblem(count: 16)
        let seg = try p.segmenter()
        let frozen = seg.graph.parameters.filter { !$0.isTrainable }.map(\.value)
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: p.config(epochs: 1))
        _ = try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
        #expect(seg.graph.parameters.filter { !$0.isTrainable }.map(\.value) == frozen)
    }

    @Test func theFeatureCacheGivesTheSameWeights() throws {
        let p = try TinyProblem(count: 24)
        var weights: [[Tensor]] = []
        for useCache in [true, false] {
            let seg = try p.segmenter()
            var c = p.config(epochs: 2)
            c.useCache = useCache
            let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
            _ = try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
            #expect(trainer.usedCache == useCache)
            weights.append(seg.graph.trainableParameters.map(\.value))
        }
        for (a, b) in zip(weights[0], weights[1]) { #expect(maxAbsDifference(a, b) <= 1e-6) }
    }

    @Test func aCacheSpilledToDiskGivesTheSameWeightsAsOneInMemory() throws {
        let p = try TinyProblem(count: 16)
        var weights: [[Tensor]] = []
        for budget in [1024, 0] {
            let seg = try p.segmenter()
            var c = p.config(epochs: 2)
            c.cacheMB = budget   // 0: every feature goes to the HDF5 spill file
            let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
            _ = try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
            weights.append(seg.graph.trainableParameters.map(\.value))
        }
        #expect(weights[0] == weights[1])
    }

    @Test func earlyStoppingEndsTheRunAfterPatienceEpochsWithoutABetterValMIoU() throws {
        let p = try TinyProblem(count: 16)
        let seg = try p.segmenter()
        var c = p.config(epochs: 30)
        c.learningRate = 0   // nothing improves after the first epoch
        c.patience = 2
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
        var improvements = 0
        let history = try trainer.fit(train: p.train, val: p.val, observer: nil, checkpoint: { _ in }, improved: { _ in improvements += 1 })
        #expect(history.count == 3 && improvements == 1)
    }

    @Test func patienceStopsARunWhoseLossRisesAndRestoresItsBestEpoch() throws {
        // Gradient ascent (a negative learning rate, SGD): every epoch's training loss is
        // above the one before, so without validation the first epoch is the best.
        let p = try TinyProblem(count: 16)
        let seg = try p.segmenter()
        var c = p.config(epochs: 30)
        c.optimizer = .sgd
        c.learningRate = -0.05
        c.patience = 2
        c.restoreBest = true
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
        var best: [[Float]] = [], last: [[Float]] = []
        let history = try trainer.fit(train: p.train, val: nil, observer: nil,
                                      checkpoint: { t in last = t.graph.trainableParameters.map(\.value.scalars) },
                                      improved: { t in best = t.graph.trainableParameters.map(\.value.scalars) })
        #expect(history.map(\.loss) == history.map(\.loss).sorted() && history[0].loss < history[2].loss, "the loss rises")
        #expect(history.count == 3 && trainer.stopReason == .patience && trainer.bestEpoch == 1)
        let now = seg.graph.trainableParameters.map(\.value.scalars)
        #expect(now == best, "the first epoch's weights are back")
        #expect(now != last, "the last epoch's weights differed")
    }

    @Test func aTimeBudgetEndsTheEpochUnderWayAndSaysSo() throws {
        let p = try TinyProblem(count: 16)
        let seg = try p.segmenter()
        var c = p.config(epochs: 30)
        c.batchSize = 4
        c.budgetSeconds = 1e-6
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
        let history = try trainer.fit(train: p.train, val: p.val, observer: nil, checkpoint: { _ in }, improved: { _ in })
        #expect(history.count == 1 && trainer.stopReason == .budget)
        #expect(history[0].valMeanIoU != nil, "the cut-short epoch is validated")
        #expect(trainer.optimizer.iterations == 1, "one step of the epoch's four ran")
    }

    @Test func theBorderMapCarriesTheClassWeightsOnce() throws {
        // With w0 = 0 U-Net's map is w_c(x) alone: weighted cross-entropy with it must equal
        // weighted cross-entropy without it (class weights applied twice gave w_c²).
        let p = try TinyProblem(count: 8)
        let seg = try p.segmenter()
        var c = p.config(epochs: 1)
        c.loss = .weightedCE
        c.classWeights = (0..<11).map { Float($0 % 3 + 1) }
        let plain = try Trainer(graph: seg.graph, classes: seg.classes, config: c).inferenceLoss([0, 1, 2, 3], of: p.train)
        c.borderWeight = (w0: 0, sigma: 5)
        let mapped = try Trainer(graph: seg.graph, classes: seg.classes, config: c).inferenceLoss([0, 1, 2, 3], of: p.train)
        #expect(abs(plain - mapped) <= 1e-6 * plain, "\(plain) vs \(mapped)")
    }

    @Test func withoutValidationTheFirstEpochIsTheBestSoFarWhateverItsLoss() throws {
        // 11 classes from scratch: a cross-entropy near ln 11 ≈ 2.4, a score of −2.4.
        let p = try TinyProblem(count: 16)
        let seg = try p.segmenter()
        var c = p.config(epochs: 1)
        c.learningRate = 0
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
        var improvements = 0
        let history = try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in improvements += 1 })
        #expect(history[0].loss > 1 && improvements == 1 && trainer.bestScore == -Double(history[0].loss))
    }

    @Test func sameSeedGivesABitIdenticalHistory() throws {
        let p = try TinyProblem(count: 16)
        var histories: [[Float]] = []
        for _ in 0..<2 {
            let seg = try p.segmenter()
            var c = p.config(epochs: 2)
            c.augment = [.flip, .shift, .elastic]
            let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
            histories.append(try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in }).map(\.loss))
        }
        #expect(histories[0] == histories[1])
    }

    @Test func resumingEqualsAnUninterruptedRun() throws {
        let p = try TinyProblem(count: 24)
        // Uninterrupted: 3 epochs.
        let full = try p.segmenter()
        let fullTrainer = try Trainer(graph: full.graph, classes: full.classes, config: p.config(epochs: 3))
        let fullHistory = try fullTrainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
        // Interrupted after 1 epoch and 1 step, checkpointed, resumed from the file.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-resume-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try p.segmenter()
        let t1 = try Trainer(graph: first.graph, classes: first.classes, config: p.config(epochs: 3))
        var steps = 0
        t1.shouldStop = { steps += 1; return steps > 5 }   // 3 steps per epoch: stops at epoch 2, step 2
        let checkpoint = dir + "/ckpt.keras"
        #expect(throws: TrainingError.self) {
            try t1.fit(train: p.train, val: nil, observer: nil, checkpoint: { t in try writeCheckpoint(t, first, checkpoint) }, improved: { _ in })
        }
        let loaded = try KerasModel.load(checkpoint, sideFiles: .segkit)
        let t2 = try Trainer(graph: loaded.graph, classes: first.classes, config: p.config(epochs: 3))
        try t2.restore(from: try #require(try Checkpoint.state(of: loaded, file: checkpoint)))
        let resumedHistory = try t2.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
        #expect(resumedHistory.map(\.loss) == fullHistory.map(\.loss))
        for (a, b) in zip(loaded.graph.trainableParameters.map(\.value), full.graph.trainableParameters.map(\.value)) {
            #expect(a == b)
        }
    }

    @Test func aCheckpointWhoseOptimizerStateDoesNotFitTheSegmenterIsRefused() throws {
        let p = try TinyProblem(count: 24)
        let seg = try p.segmenter()
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: p.config(epochs: 1))
        _ = try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
        var state = trainer.optimizer.state
        state["m"]![0].removeLast()
        trainer.optimizer.state = state
        let file = try ScratchFile()
        try file.withPath { try trainer.saveState(to: $0) }
        let other = try Trainer(graph: try p.segmenter().graph, classes: seg.classes, config: p.config(epochs: 1))
        let error = file.withPath { path in
            #expect(throws: TrainingError.self) { try other.restore(from: HDF5File(readingFrom: path)) }
        }
        #expect("\(try #require(error))".contains("optimizer state 'm' has"))
    }

    /// Found by a read of the evaluator: a short last batch weighed as much as a full one.
    @Test func theEvaluatedLossIsTheSameWhateverTheBatchSize() throws {
        let p = try TinyProblem(count: 8)
        let seg = try p.segmenter()
        let data = p.val.first(5)   // batches of 2 leave a short last batch of 1
        func loss(_ batch: Int) throws -> Float {
            try Evaluator(runner: seg.runner, classes: seg.classes, inputScale: .unit, batchSize: batch, ignoreLabel: nil).evaluate(data).loss
        }
        let one = try loss(1)
        #expect(abs(try loss(2) - one) <= 1e-5 * max(1, abs(one)))
        #expect(abs(try loss(5) - one) <= 1e-5 * max(1, abs(one)))
    }

    @Test func aNonFiniteLossStopsWithTheEpochAndStep() throws {
        let p = try TinyProblem(count: 16)
        let seg = try p.segmenter()
        var c = p.config(epochs: 3)
        c.learningRate = 1e30
        c.optimizer = .sgd
        c.momentum = 0
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: c)
        var saved = 0
        var failedEpoch = 0
        #expect {
            try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in saved += 1 }, improved: { _ in })
        } throws: { error in
            guard case let .nonFiniteLoss(epoch, step, _) = error as? TrainingError else { return false }
            failedEpoch = epoch
            return step >= 1
        }
        #expect(failedEpoch >= 1)
        #expect(saved == failedEpoch - 1, "a checkpoint was written after the non-finite loss")
    }
}

/// What the CLI writes every epoch: the segmenter with the training state inside.
func writeCheckpoint(_ trainer: Trainer, _ seg: BuiltSegmenter, _ path: String) throws {
    let state = try ScratchFile()
    try state.withPath { try trainer.saveState(to: $0) }
    var writer = KerasWriter(graph: trainer.graph, name: "seg", metadata: seg.metadata)
    writer.extraFiles = ["segkit_state.h5": state]
    try writer.write(to: path)
}

@Suite struct TrainingStateTests {
    /// Was: a damaged history line crashed `--resume` (a fixed index into a split line).
    @Test func aDamagedHistoryOrProgressInACheckpointIsAnErrorNotACrash() throws {
        let p = try TinyProblem(count: 8)
        let seg = try p.segmenter()
        let trainer = try Trainer(graph: seg.graph, classes: seg.classes, config: p.config(epochs: 1))
        _ = try trainer.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in })
        let dir = try scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try trainer.saveState(to: dir + "/good.h5")
        var state = try TrainingState.read(from: try HDF5File(readingFrom: dir + "/good.h5"))
        #expect(state.history.count == 1 && state.progress[0] == 1)
        state.progress = [1, -4, 0, 0]
        try state.write(to: dir + "/negative.h5")
        #expect { try TrainingState.read(from: try HDF5File(readingFrom: dir + "/negative.h5")) } throws: { "\($0)".contains("progress") }
        // A history line cut short.
        let cut = try HDF5File(creating: dir + "/cut.h5").root
        try cut.writeStringsAttribute("parameters", state.parameterNames)
        try cut.writeDataset("progress", shape: [4], int64s: [1, 0, 0, 0])
        try cut.writeDataset("scalars", shape: [2], floats: [0, 0])
        try cut.writeStringAttribute("history", "1,0.5")
        try cut.writeStringAttribute("optimizer", "adam")
        _ = try cut.createGroup("optimizer")
        #expect { try TrainingState.read(from: try HDF5File(readingFrom: dir + "/cut.h5")) } throws: { "\($0)".contains("history, line 1 ('1,0.5')") }
        // A step past the end of this data's epoch.
        state.progress = [0, 50, 0, 0]
        try state.write(to: dir + "/far.h5")
        let fresh = try Trainer(graph: seg.graph, classes: seg.classes, config: p.config(epochs: 2))
        try fresh.restore(from: try HDF5File(readingFrom: dir + "/far.h5"))
        #expect { try fresh.fit(train: p.train, val: nil, observer: nil, checkpoint: { _ in }, improved: { _ in }) } throws: { "\($0)".contains("step 50") }
    }
}
