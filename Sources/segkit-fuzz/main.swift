import CHDF5
import Foundation
import SegKitEngine

/// The fuzzing harness: seeded mutations of the committed Keras fixtures, each
/// imported and run by `segkit forward` in a child process under a memory limit
/// (prlimit) and a time limit (timeout). Every case must end in success or a
/// clean error (non-zero exit, an "Error:" message, no HDF5 error stack) —
/// never a signal, a hang or an out-of-memory kill.
///
///   segkit-fuzz [--cases N] [--seed S] [--jobs J] [--segkit PATH] [--keep DIR] [--corpus DIR]
struct Arguments {
    var cases = 400
    var seed: UInt64 = 1
    var jobs = 2
    var timeoutSeconds = 30
    var memoryMB = 3072
    var segkit = ""
    var fixtures = ""
    var keep: String?
    /// Keep every mutated case here (for running them under a memory checker).
    var corpus: String?

    init() {
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let a = args.next() {
            let v = args.next() ?? ""
            switch a {
            case "--cases": cases = Int(v) ?? cases
            case "--seed": seed = UInt64(v) ?? seed
            case "--jobs": jobs = Int(v) ?? jobs
            case "--timeout": timeoutSeconds = Int(v) ?? timeoutSeconds
            case "--memory-mb": memoryMB = Int(v) ?? memoryMB
            case "--segkit": segkit = v
            case "--fixtures": fixtures = v
            case "--keep": keep = v
            case "--corpus": corpus = v
            default: FileHandle.standardError.write(Data("unknown option \(a)\n".utf8)); exit(2)
            }
        }
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        if segkit.isEmpty { segkit = here.appendingPathComponent("segkit").path }
        if fixtures.isEmpty {
            fixtures = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Tests/Fixtures/keras").path
        }
    }
}

enum Outcome: String { case success, cleanError = "clean error", crash, hang, unclearError = "unclear error" }

let args = Arguments()
segkit_h5_silence_errors()   // the mutator itself pokes at broken files
let work = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-fuzz-\(getpid())").path
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

func run(_ c: FuzzCase, index: Int) -> (Outcome, String) {
    let net = c.fixture.components(separatedBy: ".k")[0]
    let version = c.fixture.contains(".k2.") ? "k2" : "k3"
    let input = "\(args.fixtures)/\(net).\(version).expected.h5"
    let output = "\(work)/out\(index).h5"
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    var command = ["-k", "5", "\(args.timeoutSeconds)", "/usr/bin/prlimit", "--as=\(args.memoryMB << 20)", "--",
                   args.segkit, "forward", c.model, "--input", input, "--output", output]
    if let config = c.config { command += ["--config", config] }
    p.arguments = command
    var environment = ProcessInfo.processInfo.environment
    environment["SEGKIT_IMPORT_TIMEOUT"] = "10"   // libhdf5's own loops end as clean errors well inside the harness's limit
    environment["SEGKIT_CHECK_CHILD"] = nil
    p.environment = environment
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    do { try p.run() } catch { return (.crash, "cannot start: \(error)") }
    let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    try? FileManager.default.removeItem(atPath: output)
    let status = p.terminationStatus
    if status == 0 { return (.success, "") }
    if status == 124 || status == 137 && message.isEmpty { return (.hang, message) }
    if status >= 128 || p.terminationReason == .uncaughtSignal { return (.crash, message) }
    if message.hasPrefix("Error: ") && !message.contains("HDF5-DIAG") { return (.cleanError, message) }
    return (.unclearError, message)
}

// Cases are made in order from the seed (so a run is reproducible), then run two at a time.
var mutator = Mutator(fixtures: args.fixtures, work: work, rng: SeededGenerator(seed: args.seed))
var cases: [FuzzCase] = []
for i in 0..<args.cases {
    do {
        let c = try mutator.make(i)
        cases.append(c)
        if let corpus = args.corpus {
            try? FileManager.default.createDirectory(atPath: corpus, withIntermediateDirectories: true)
            try? FileManager.default.copyItem(atPath: c.model, toPath: "\(corpus)/case\(i)-\((c.model as NSString).lastPathComponent)")
            if let config = c.config { try? FileManager.default.copyItem(atPath: config, toPath: "\(corpus)/case\(i)-config.json") }
        }
    } catch { FileHandle.standardError.write(Data("could not mutate case \(i): \(error)\n".utf8)) }
}
/// Outcomes, gathered from both jobs under a lock.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    var counts: [Outcome: Int] = [:]
    var byKind: [String: [Outcome: Int]] = [:]
    var failures: [String] = []

    func add(_ c: FuzzCase, _ i: Int, _ outcome: Outcome, _ message: String, keep: String?) {
        lock.lock()
        defer { lock.unlock() }
        counts[outcome, default: 0] += 1
        byKind[c.kind, default: [:]][outcome, default: 0] += 1
        guard outcome != .success && outcome != .cleanError else { return }
        failures.append("case \(i) (\(c.kind) of \(c.fixture)): \(outcome.rawValue): \(message.prefix(300))")
        if let keep {
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            try? FileManager.default.copyItem(atPath: c.model, toPath: "\(keep)/case\(i)-\((c.model as NSString).lastPathComponent)")
            if let config = c.config { try? FileManager.default.copyItem(atPath: config, toPath: "\(keep)/case\(i)-config.json") }
        }
    }
}

let tally = Tally()
let started = Date()
let shared = UncheckedSendable(cases)
let jobs = max(1, args.jobs), keep = args.keep
DispatchQueue.concurrentPerform(iterations: jobs) { job in
    for i in stride(from: job, to: shared.value.count, by: jobs) {
        let c = shared.value[i]
        let (outcome, message) = run(c, index: i)
        tally.add(c, i, outcome, message, keep: keep)
    }
}
let (counts, byKind, failures) = (tally.counts, tally.byKind, tally.failures)
for f in failures.sorted() { print(f) }
for (kind, o) in byKind.sorted(by: { $0.key < $1.key }) {
    print("  \(kind): " + o.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", "))
}
let bad = (counts[.crash] ?? 0) + (counts[.hang] ?? 0) + (counts[.unclearError] ?? 0)
print(String(format: "fuzz: %d cases in %.0fs, seed %llu — %d succeeded, %d clean errors, %d crashes, %d hangs, %d unclear errors",
             cases.count, Date().timeIntervalSince(started), args.seed, counts[.success] ?? 0, counts[.cleanError] ?? 0,
             counts[.crash] ?? 0, counts[.hang] ?? 0, counts[.unclearError] ?? 0))
print("fuzz: \(cases.count - bad) passed, \(bad) failed")
// Removed here, not in a top-level `defer`: `exit` ends the process without running defers.
try? FileManager.default.removeItem(atPath: work)
exit(bad == 0 ? 0 : 1)
