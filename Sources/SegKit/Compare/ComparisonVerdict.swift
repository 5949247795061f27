import Foundation

/// The report's first lines: the comparison's answer in words, derived from its
/// numbers only. Which contender wins at each N (a segmenter on the classifier
/// or the U-Net from scratch), by how much, whether that is beyond the spread
/// over seeds (the winner's worst seed above the other's best), at what
/// training cost, and which runs had not stopped improving when their budget
/// ended (their figures are lower bounds).
public struct ComparisonVerdict: Sendable {
    /// Sentences, most important first.
    public let lines: [String]

    /// - Parameters:
    ///   - summaries: every (contender, N) over its seeds (`ContenderSummary.group`).
    ///   - baseline: the from-scratch contender's name, nil when there is none.
    ///   - training: the stopping rule the runs had (patience, `epochs` as maximum, budget).
    ///   - onClassifier: the contenders built on the classifier (nil: every one but the
    ///     baseline); others (runs added from elsewhere) are in the table, not in the verdict.
    public init(summaries: [ContenderSummary], baseline: String?, training: TrainingConfig, onClassifier: Set<String>? = nil) {
        var lines: [String] = []
        let counts = Array(Set(summaries.map(\.labels))).sorted()
        let outcomes = counts.compactMap { n -> Outcome? in
            let rows = summaries.filter { $0.labels == n }.sorted { $0.meanIoU.mean > $1.meanIoU.mean }
            if let baseline, let b = rows.first(where: { $0.contender == baseline }),
               let t = rows.first(where: { $0.contender != baseline && onClassifier?.contains($0.contender) != false }) {
                return Outcome(labels: n, winner: t.meanIoU.mean >= b.meanIoU.mean ? t : b, loser: t.meanIoU.mean >= b.meanIoU.mean ? b : t)
            }
            return rows.count >= 2 ? Outcome(labels: n, winner: rows[0], loser: rows[1]) : nil
        }
        if let baseline, !outcomes.isEmpty {
            lines.append(Self.headline(outcomes, baseline: baseline))
        }
        for o in outcomes {
            let spread = o.separated ? "beyond the seed spread"
                : o.spreadKnown ? "within the seed spread: inconclusive at this N" : "one seed each, so the seed-to-seed spread is unknown"
            lines.append("N = \(o.labels): \(o.winner.contender) \(o.winner.meanIoU.text("%.3f")) against \(o.loser.contender) "
                         + "\(o.loser.meanIoU.text("%.3f")) test mIoU, ahead by \(String(format: "%.3f", o.margin)) (\(spread)).")
        }
        if baseline == nil, !outcomes.isEmpty, outcomes.allSatisfy({ $0.spreadKnown && !$0.separated }) {
            lines.append("The comparison is inconclusive: at every N the two overlap across seeds; more seeds or more test images would tell them apart.")
        } else if outcomes.contains(where: { !$0.spreadKnown }) {
            lines.append("With one seed per run small differences may be noise: rerun with --seeds 2 or more to see the spread.")
        }
        if let largest = counts.last {
            let trained = summaries.filter { $0.labels == largest && $0.trained }.sorted { $0.trainingSeconds.mean < $1.trainingSeconds.mean }
            if trained.count >= 2 {
                let parts = trained.map { s in
                    "\(s.contender) \(Self.count(s.runs[0].trainableParameters)) parameters in \(Self.seconds(s.trainingSeconds.mean)) "
                        + "(\(String(format: "%.0f", s.epochs.mean)) epochs)"
                }
                let ratio = trained.last!.trainingSeconds.mean / max(trained[0].trainingSeconds.mean, 1e-9)
                lines.append("Training cost at N = \(largest) (mean wall-clock time per run): " + parts.joined(separator: "; ")
                             + String(format: "; the dearest took %.1fx the time of the cheapest.", ratio))
            }
        }
        // Grouped by what stopped them: the time budget, or the epoch limit (--max-epochs, or --epochs when fixed).
        let limit = training.patience == nil && training.budgetSeconds == nil ? "--epochs \(training.epochs)" : "--max-epochs \(training.epochs)"
        for (reason, why) in [(Trainer.StopReason.budget, training.budgetSeconds.map { String(format: "the %.0f s budget (--budget-seconds)", $0) } ?? ""),
                              (.epochs, limit)] {
            let unfinished = summaries.filter { s in s.runs.contains { $0.stopReason == reason && Self.stillImproving($0, training: training) } }
            guard !unfinished.isEmpty else { continue }
            lines.append("Still improving when stopped by \(why): "
                         + unfinished.map { "\($0.contender) at N = \($0.labels)" }.joined(separator: ", ")
                         + "; those figures are lower bounds (give more epochs or time).")
        }
        self.lines = lines
    }

    /// A trained contender against the other at one N.
    struct Outcome {
        let labels: Int
        let winner: ContenderSummary
        let loser: ContenderSummary
        var margin: Double { winner.meanIoU.mean - loser.meanIoU.mean }
        /// Both spreads are known: several seeds, or nothing trained (the same for every seed).
        var spreadKnown: Bool { [winner, loser].allSatisfy { $0.runs.count > 1 || !$0.trained } }
        var separated: Bool { spreadKnown && winner.meanIoU.min > loser.meanIoU.max }
    }

    /// Which side wins at which N, and where the crossover lies; an N where the
    /// two overlap across seeds counts for neither side.
    static func headline(_ outcomes: [Outcome], baseline: String) -> String {
        let decided = outcomes.filter { !$0.spreadKnown || $0.separated }
        let close = outcomes.filter { $0.spreadKnown && !$0.separated }.map(\.labels)
        let transfer = decided.filter { $0.winner.contender != baseline }
        let scratch = decided.filter { $0.winner.contender == baseline }
        func list(_ ns: [Int]) -> String { ns.map(String.init).joined(separator: ", ") }
        func margins(_ os: [Outcome]) -> String {
            os.map { "\(String(format: "%.3f", $0.margin)) at N = \($0.labels)" + ($0.winner.contender != baseline ? " (\($0.winner.contender))" : "") }
                .joined(separator: ", ")
        }
        let tooClose = close.isEmpty ? "" : " Too close to call at N = \(list(close)): the two overlap across seeds."
        if decided.isEmpty {
            return "Inconclusive: at every N tried (\(list(close))) the best segmenter on the classifier and the U-Net from scratch (\(baseline)) overlap across seeds."
        }
        if scratch.isEmpty {
            return "A segmenter on the classifier beats the U-Net from scratch (\(baseline)) at N = \(list(transfer.map(\.labels))), by "
                + margins(transfer) + " mIoU." + tooClose
        }
        if transfer.isEmpty {
            return "The U-Net from scratch (\(baseline)) beats every segmenter on the classifier at N = \(list(scratch.map(\.labels))), by "
                + margins(scratch) + " mIoU." + tooClose
        }
        if let lastTransfer = transfer.last?.labels, let firstScratch = scratch.first?.labels, lastTransfer < firstScratch {
            return "A segmenter on the classifier wins up to N = \(lastTransfer) and the U-Net from scratch from N = \(firstScratch) on: "
                + "the crossover lies between \(lastTransfer) and \(firstScratch) labelled images." + tooClose
        }
        return "A segmenter on the classifier wins at N = \(list(transfer.map(\.labels))), the U-Net from scratch at N = \(list(scratch.map(\.labels))): "
            + "no single crossover." + tooClose
    }

    /// Whether a run's best epoch was so recent that its stopping rule, not convergence, ended it:
    /// with patience, any run the limit stopped before patience did; without, a run of at
    /// least two epochs whose last epoch was its best.
    static func stillImproving(_ run: ContenderResult, training: TrainingConfig) -> Bool {
        guard let reason = run.stopReason, reason != .patience, let best = run.bestEpoch else { return false }
        return training.patience == nil ? run.epochsRun >= 2 && best == run.epochsRun : true
    }

    /// "0.4 s", "12 s", "123 s".
    static func seconds(_ s: Double) -> String { s < 10 ? String(format: "%.1f s", s) : String(format: "%.0f s", s) }

    /// 1234567 → "1,234,567".
    static func count(_ n: Int) -> String {
        let digits = Array(String(n))
        return String(digits.enumerated().flatMap { i, d in (i > 0 && (digits.count - i) % 3 == 0 ? [","] : []) + [d] })
    }
}
