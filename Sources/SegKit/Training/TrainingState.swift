import Foundation
import HDF5

/// What a checkpoint holds beside the weights, in its `segkit_state.h5` entry:
/// the trainable parameters' names, the optimizer and its per-parameter state,
/// progress (epoch, step, optimizer iterations, epochs without improvement), the
/// running loss, the best score and the history at full precision — so that a
/// resumed run equals an uninterrupted one.
public struct TrainingState: Sendable {
    /// The trainable parameters' names, in the optimizer's order (checked on resume).
    public var parameterNames: [String]
    /// "sgd" or "adam" (`TrainingConfig.OptimizerKind`'s raw value).
    public var optimizer: String
    /// epoch, step, optimizer iterations, epochs without improvement: each 0 ≤ v < 2³¹.
    public var progress: [Int64]
    /// The current epoch's loss sum so far (a run stopped mid-epoch resumes it).
    public var runningLoss: Float
    /// The best epoch's score (validation mIoU, or minus the training loss).
    public var bestScore: Float
    /// Every finished epoch's record.
    public var history: [EpochRecord]
    /// Per key (Adam's "m", "v"; SGD's "velocity"), one array per parameter.
    public var optimizerState: [String: [[Float]]]

    /// Optimizer arrays are bounded by this many values each (a parameter of 256M floats).
    static let arrayLimit = 1 << 28

    /// Writes the state to a new HDF5 file at `path`: attributes "parameters",
    /// "history" (one `exactLine` per epoch) and "optimizer"; datasets "progress"
    /// (4 int64) and "scalars" (running loss, best score); group "optimizer/KEY/i".
    /// - Throws: `HDF5Error` when the file cannot be written.
    public func write(to path: String) throws {
        let root = try HDF5File(creating: path).root
        try root.writeStringsAttribute("parameters", parameterNames)
        try root.writeDataset("progress", shape: [4], int64s: progress)
        try root.writeDataset("scalars", shape: [2], floats: [runningLoss, bestScore])
        // Exact values (Swift's round-trip formatting), so a resumed history equals an uninterrupted one.
        try root.writeStringAttribute("history", history.map(\.exactLine).joined(separator: "\n"))
        try root.writeStringAttribute("optimizer", optimizer)
        let g = try root.createGroup("optimizer")
        for (key, arrays) in optimizerState {
            let k = try g.createGroup(key)
            for (i, a) in arrays.enumerated() { try k.writeDataset(String(i), shape: [a.count], floats: a) }
        }
    }

    /// Reads and checks every part (the check-model child reads a checkpoint's state
    /// this way before the run does, so a damaged one cannot crash the run).
    ///
    /// - Throws: `TrainingError.badState` naming the damaged part, `HDF5Error` from libhdf5.
    public static func read(from file: HDF5File) throws -> TrainingState {
        let root = try file.root
        let names = try root.stringsAttribute("parameters")
        let optimizer = try root.stringAttribute("optimizer")
        let progress = try root.dataset("progress").readInt64s(limit: 4)
        let scalars = try root.dataset("scalars").readFloats(limit: 2)
        guard progress.count == 4, scalars.count == 2 else {
            throw TrainingError.badState("the checkpoint's progress holds \(progress.count) values and its scalars \(scalars.count), expected 4 and 2")
        }
        guard progress.allSatisfy({ $0 >= 0 && $0 < Int64(Int32.max) }) else {
            throw TrainingError.badState("the checkpoint's progress \(progress) is not four counts from 0 to \(Int32.max)")
        }
        var state: [String: [[Float]]] = [:]
        let g = try root.group("optimizer")
        for key in try g.childNames() {
            let k = try g.group(key)
            let count = try k.childNames().count
            guard count <= names.count else {
                throw TrainingError.badState("the checkpoint's optimizer state '\(key)' has \(count) arrays for \(names.count) parameters")
            }
            state[key] = try (0..<count).map { try k.dataset(String($0)).readFloats(limit: arrayLimit) }
        }
        let history = try root.stringAttribute("history").split(separator: "\n").enumerated().map { n, line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 7, let e = Int(f[0]), let loss = Float(f[1]), let lr = Float(f[5]), let seconds = Double(f[6]) else {
                throw TrainingError.badState("the checkpoint's training history, line \(n + 1) ('\(line.prefix(80))'), is not "
                                             + "epoch,loss,val_loss,val_pixel_accuracy,val_mean_iou,learning_rate,seconds")
            }
            return EpochRecord(epoch: e, loss: loss, valLoss: Float(f[2]), valPixelAccuracy: Double(f[3]),
                               valMeanIoU: Double(f[4]), learningRate: lr, seconds: seconds)
        }
        return TrainingState(parameterNames: names, optimizer: optimizer, progress: progress, runningLoss: scalars[0], bestScore: scalars[1],
                             history: history, optimizerState: state)
    }
}
