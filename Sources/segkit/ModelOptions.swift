import SegKitSupport
import ArgumentParser
import Foundation
import SegKitKeras

/// The model file and, for weights-only files, its architecture.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A Keras model: .h5, .keras, or .weights.h5 (with --config).")
    var model: String

    @Option(help: "The architecture for a weights-only file: a model.to_json() file, a config.json or a .keras archive.")
    var config: String?

    func load() throws -> KerasModel { try loadModel(model, config: config) }
}

/// Reads a model file, first in a child process. libhdf5 1.10 has memory-safety
/// bugs on damaged files (found by the fuzzing harness: a corrupted global heap
/// makes `H5HG_read` read through a bad pointer, or loop forever, while reading
/// a variable-length string). No check on SegKit's side can prevent that, so the
/// CLI lets a child (`segkit check-model`) read the whole file first: a child that
/// crashes or runs past $SEGKIT_IMPORT_TIMEOUT seconds (default 120; a classifier
/// takes well under one) becomes a clean error here, and only a file the child
/// read to the end is read in this process.
func loadModel(_ path: String, config: String? = nil) throws -> KerasModel {
    if ProcessInfo.processInfo.environment["SEGKIT_CHECK_CHILD"] == nil {
        try checkInChildProcess(["check-model", path] + (config.map { ["--config", $0] } ?? []), file: path)
    }
    return try KerasModel.load(path, configPath: config, sideFiles: .segkit)
}

/// A model file a child process could not read: its own error, signal or time-out.
struct ModelFileError: SegKitError {
    let message: String
    var errorDescription: String? { message }
}

/// Runs `segkit ARGUMENTS` (a hidden check command reading `file` completely)
/// in a child process: its crash or hang becomes a clean error here.
///
/// - Throws: `ModelFileError` naming `file`: the child's own error, its signal, or its time-out.
func checkInChildProcess(_ arguments: [String], file path: String) throws {
    let seconds = Double(ProcessInfo.processInfo.environment["SEGKIT_IMPORT_TIMEOUT"] ?? "") ?? 120
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    child.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["SEGKIT_CHECK_CHILD"] = "1"
    environment["SWIFT_BACKTRACE"] = "enable=no"   // a crashing child only needs to end, quickly
    child.environment = environment
    let errors = Pipe()
    child.standardError = errors
    child.standardOutput = FileHandle.nullDevice
    try child.run()
    let deadline = DispatchTime.now() + seconds
    let finished = DispatchSemaphore(value: 0)
    DispatchQueue.global().async { child.waitUntilExit(); finished.signal() }
    if finished.wait(timeout: deadline) == .timedOut {
        child.terminate()
        kill(child.processIdentifier, SIGKILL)
        throw ModelFileError(message: "\(path): reading it did not finish within \(Int(seconds)) s (a damaged HDF5 structure can make libhdf5 loop); refused")
    }
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    if child.terminationReason == .uncaughtSignal {
        throw ModelFileError(message: "\(path): libhdf5 crashed reading it (signal \(child.terminationStatus): a damaged HDF5 structure); refused")
    }
    guard child.terminationStatus == 0 else {
        let text = message.split(separator: "\n").first.map(String.init) ?? "cannot be read"
        throw ModelFileError(message: text.hasPrefix("Error: ") ? String(text.dropFirst(7)) : text)
    }
}
