import Foundation
import SegKit

/// Keras-`fit`-like progress: a live bar on a terminal, plain lines otherwise.
final class ProgressPrinter: TrainingObserver {
    let live = isatty(STDOUT_FILENO) != 0
    private var epochs = 0
    private var lastPlain = -1
    /// Images per step, for the images/s figure (the last step of an epoch may hold fewer).
    let batchSize: Int

    init(batchSize: Int) { self.batchSize = batchSize }

    private func rate(_ step: Int, _ elapsed: Double) -> Double { Double(step * batchSize) / max(elapsed, 1e-9) }

    func trainingWillStart(epochs: Int, stepsPerEpoch: Int, cached: String?) {
        self.epochs = epochs
        print("Training \(epochs) epoch(s) of \(stepsPerEpoch) step(s)" + (cached.map { "; frozen-encoder features \($0)" } ?? ""))
    }

    func stepFinished(epoch: Int, step: Int, steps: Int, loss: Float, elapsed: Double) {
        let perStep = elapsed / Double(step)
        let eta = perStep * Double(steps - step)
        if live {
            let width = 30, done = width * step / steps
            let bar = String(repeating: "=", count: max(done - 1, 0)) + (done > 0 ? (step == steps ? "=" : ">") : "") + String(repeating: ".", count: width - done)
            let line = String(format: "Epoch %d/%d %d/%d [%@] - %.0fs %.0fms/step %.0f img/s - loss: %.4f - ETA: %.0fs", epoch, epochs, step, steps, bar,
                              elapsed, perStep * 1000, rate(step, elapsed), loss, eta)
            FileHandle.standardOutput.write(Data(("\r" + line + "\u{1B}[K").utf8))
        } else {
            // A line at every tenth of the epoch.
            let decile = 10 * step / steps
            if decile != lastPlain && (decile % 2 == 0 || step == steps) {
                lastPlain = decile
                print(String(format: "epoch %d/%d step %d/%d - %.1fs %.0f img/s - loss: %.4f", epoch, epochs, step, steps, elapsed, rate(step, elapsed), loss))
            }
        }
    }

    func epochFinished(_ r: EpochRecord, improved: Bool) {
        if live { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        lastPlain = -1
        var line = String(format: "epoch %d/%d - %.1fs - loss: %.4f", r.epoch, epochs, r.seconds, r.loss)
        if let v = r.valLoss { line += String(format: " - val_loss: %.4f", v) }
        if let a = r.valPixelAccuracy { line += String(format: " - val_pixel_accuracy: %.4f", a) }
        if let m = r.valMeanIoU { line += String(format: " - val_mIoU: %.4f", m) }
        if improved { line += " (best)" }
        print(line)
    }
}

/// Progress of a pass over many images (`eval`): a live line on a terminal;
/// otherwise a line at every fifth of the way, for sets of 500 images or more.
final class ImageProgress {
    let live = isatty(STDOUT_FILENO) != 0
    let verb: String
    private let started = Date()
    private var lastPlain = -1

    init(_ verb: String) { self.verb = verb }

    func update(_ done: Int, _ total: Int) {
        let elapsed = Date().timeIntervalSince(started)
        let line = String(format: "%@ %d/%d images - %.0fs - %.0f img/s", verb, done, total, elapsed, Double(done) / max(elapsed, 1e-9))
        if live {
            FileHandle.standardOutput.write(Data(("\r" + line + "\u{1B}[K" + (done == total ? "\r\u{1B}[K" : "")).utf8))
        } else if total >= 500, 5 * done / total != lastPlain {
            lastPlain = 5 * done / total
            print(line)
        }
    }
}

/// Ctrl-C during training: the run finishes its step, saves a checkpoint and exits cleanly.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    private var source: DispatchSourceSignal?

    func install() {
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler { [weak self] in
            self?.lock.lock(); self?.raised = true; self?.lock.unlock()
            FileHandle.standardError.write(Data("\ninterrupted: saving a checkpoint after this step…\n".utf8))
        }
        s.resume()
        source = s
    }

    var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return raised }
}
