import SegKitSupport
import CHDF5
import Foundation
import SegKitEngine

/// The fuzzing harness: seeded cases in four corpora, each run by the `segkit`
/// binary in a child process under a memory limit (prlimit) and a time limit
/// (timeout):
/// - models: mutated Keras files through `segkit forward`;
/// - cli: random command lines of every subcommand (options, values, spec strings);
/// - data: damaged images, masks, split lists, folders and HDF5 data sets through `eval`/`train`;
/// - segmenters: segmenters and checkpoints with damaged `segkit.json` and training
///   state through `eval`, `predict`, `inspect` and `train --resume`.
/// Every case must end in success or a clean error — exit status 1 or the
/// argument parser's 64, one `Error:` line, no HDF5 error stack, no temporary
/// file left behind (a half-written output) — never a signal, a hang or an
/// out-of-memory kill.
///
///   segkit-fuzz [--cases N per corpus] [--corpora models,cli,data,segmenters] [--seed S] [--jobs J] [--segkit PATH] [--keep DIR]
struct Arguments {
    var cases = 400
    var corpora = ["models", "cli", "data", "segmenters"]
    var seed: UInt64 = 1
    var jobs = 2
    var timeoutSeconds = 60
    var memoryMB = 3072
    var segkit = ""
    var fixtures = ""
    var keep: String?

    init() {
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let a = args.next() {
            let v = args.next() ?? ""
            switch a {
            case "--cases": cases = Int(v) ?? cases
            case "--corpora": corpora = v.split(separator: ",").map(String.init)
            case "--seed": seed = UInt64(v) ?? seed
            case "--jobs": jobs = Int(v) ?? jobs
            case "--timeout": timeoutSeconds = Int(v) ?? timeoutSeconds
            case "--memory-mb": memoryMB = Int(v) ?? memoryMB
            case "--segkit": segkit = v
            case "--fixtures": fixtures = v
            case "--keep": keep = v
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

enum Outcome: String { case success, cleanError = "clean error", crash, hang, unclearError = "unclear error", halfWritten = "half-written output" }

let args = Arguments()
segkit_h5_silence_errors()   // the mutator itself pokes at broken files
let work = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-fuzz-\(getpid())").path
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

/// Files a writer left behind: `writeAtomically`'s temporaries (".NAME.segkit-PID-UUID").
func temporaries(in folder: String) -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
    return walker.compactMap { $0 as? String }.filter { ($0 as NSString).lastPathComponent.contains(".segkit-") }
}

func run(_ c: FuzzCase) -> (Outcome, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    p.arguments = ["-k", "5", "\(args.timeoutSeconds)", "/usr/bin/prlimit", "--as=\(args.memoryMB << 20)", "--", args.segkit] + c.arguments
    p.currentDirectoryURL = URL(fileURLWithPath: c.directory)
    var environment = ProcessInfo.processInfo.environment
    environment["SEGKIT_IMPORT_TIMEOUT"] = "20"   // libhdf5's own loops end as clean errors well inside the harness's limit
    environment["SEGKIT_CHECK_CHILD"] = nil
    environment["SEGKIT_RECIPES"] = recipes
    p.environment = environment
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    do { try p.run() } catch { return (.crash, "cannot start: \(error)") }
    let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let status = p.terminationStatus
    if status == 124 || status == 137 && message.isEmpty { return (.hang, message) }
    if status >= 128 || p.terminationReason == .uncaughtSignal { return (.crash, message) }
    let left = temporaries(in: c.directory)
    if !left.isEmpty { return (.halfWritten, "left \(left.joined(separator: ", ")); " + message) }
    if status == 0 { return (.success, "") }
    let errorLines = message.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
    if (status == 1 || status == 64) && message.hasPrefix("Error: ") && errorLines.count == 1 && !message.contains("HDF5-DIAG") {
        return (.cleanError, message)
    }
    return (.unclearError, "exit \(status): " + message)
}

/// The repository's Recipes folder (the fixtures are in its Tests/Fixtures/keras).
let recipes = URL(fileURLWithPath: args.fixtures).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Recipes").path

// Cases are made in order from the seed (so a run is reproducible), then run two at a time.
var mutator = Mutator(fixtures: args.fixtures, work: work, rng: SeededGenerator(seed: args.seed))
let needsAssets = args.corpora.contains { $0 != "models" }
let assets: Assets?
do { assets = needsAssets ? try Assets.make(segkit: args.segkit, fixtures: args.fixtures, recipes: recipes, work: work) : nil } catch {
    FileHandle.standardError.write(Data("fuzz: cannot make the assets: \(error)\n".utf8))
    exit(2)
}
var cases: [FuzzCase] = []
for corpus in args.corpora {
    for i in 0..<args.cases {
        let directory = "\(work)/\(corpus)-\(i)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            switch corpus {
            case "models": cases.append(try mutator.make(i, directory: directory))
            case "cli": cases.append(mutator.commandLine(i, directory: directory, assets: assets!))
            case "data": cases.append(try mutator.dataCase(i, directory: directory, assets: assets!))
            case "segmenters": cases.append(try mutator.segmenterCase(i, directory: directory, assets: assets!))
            default: FileHandle.standardError.write(Data("unknown corpus \(corpus) (models, cli, data, segmenters)\n".utf8)); exit(2)
            }
        } catch { FileHandle.standardError.write(Data("could not make \(corpus) case \(i): \(error)\n".utf8)) }
    }
}

/// Outcomes, gathered from both jobs under a lock.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    var counts: [String: [Outcome: Int]] = [:]
    var byKind: [String: [Outcome: Int]] = [:]
    var failures: [String] = []

    func add(_ c: FuzzCase, _ outcome: Outcome, _ message: String, keep: String?) {
        lock.lock()
        defer { lock.unlock() }
        counts[c.corpus, default: [:]][outcome, default: 0] += 1
        byKind["\(c.corpus) \(c.kind)", default: [:]][outcome, default: 0] += 1
        guard outcome != .success && outcome != .cleanError else { return }
        failures.append("\((c.directory as NSString).lastPathComponent) (\(c.kind): \(c.label.prefix(300))): \(outcome.rawValue): \(message.prefix(400))"
                        + "\n    segkit \(c.arguments.joined(separator: " "))")
        if let keep {
            let to = "\(keep)/\((c.directory as NSString).lastPathComponent)"
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: to)
            try? FileManager.default.copyItem(atPath: c.directory, toPath: to)
            try? ("segkit " + c.arguments.map { "'\($0)'" }.joined(separator: " ") + "\n").write(toFile: to + "/command.txt", atomically: true, encoding: .utf8)
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
        let (outcome, message) = run(c)
        tally.add(c, outcome, message, keep: keep)
        try? FileManager.default.removeItem(atPath: c.directory)
    }
}
let (counts, byKind, failures) = (tally.counts, tally.byKind, tally.failures)
for f in failures.sorted() { print(f) }
for (kind, o) in byKind.sorted(by: { $0.key < $1.key }) {
    print("  \(kind): " + o.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", "))
}
var bad = 0
for corpus in args.corpora {
    let o = counts[corpus] ?? [:]
    let failed = o.filter { $0.key != .success && $0.key != .cleanError }.values.reduce(0, +)
    bad += failed
    print("fuzz \(corpus): \(o.values.reduce(0, +)) cases — \(o[.success] ?? 0) succeeded, \(o[.cleanError] ?? 0) clean errors, \(o[.crash] ?? 0) crashes, "
          + "\(o[.hang] ?? 0) hangs, \(o[.unclearError] ?? 0) unclear errors, \(o[.halfWritten] ?? 0) half-written outputs")
}
print(String(format: "fuzz: %d cases in %.0fs, seed %llu — %d passed, %d failed", cases.count, Date().timeIntervalSince(started), args.seed,
             cases.count - bad, bad))
// Removed here, not in a top-level `defer`: `exit` ends the process without running defers.
try? FileManager.default.removeItem(atPath: work)
exit(bad == 0 ? 0 : 1)
