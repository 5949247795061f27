import SegKitSupport
import Foundation
import SegKitKeras

/// The results of `../shared/bench/encoder_bench.py`: one JSON object per
/// backbone, each on a line of its own (the script's table after them is skipped).
public struct KerasEncoderResults {
    /// The file read (`--compare-with`), for messages.
    public let path: String
    /// The script's line for each backbone, by its "backbone" name.
    public let lines: [String: JSONValue]

    /// Reads `path`: every line that starts with `{` is one backbone's object.
    ///
    /// - Throws: `EncoderBenchmarkError` naming the file (and the line) when it cannot
    ///   be read, a `{` line is not a JSON object with a "backbone" name, or it has no such line.
    public init(path: String) throws {
        self.path = path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw EncoderBenchmarkError(message: "--compare-with \(path): cannot read the file (expected encoder_bench.py's JSON lines)")
        }
        var lines: [String: JSONValue] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.hasPrefix("{") {
            let value = try? JSONValue.parse(Data(line.utf8), source: path)
            guard let name = value?["backbone"]?.string else {
                throw EncoderBenchmarkError(message: "\(path) line \(number + 1): expected a JSON object with a \"backbone\" name (a line of encoder_bench.py), found \(line.prefix(80))")
            }
            lines[name] = value
        }
        guard !lines.isEmpty else {
            throw EncoderBenchmarkError(message: "--compare-with \(path): expected encoder_bench.py's JSON lines (one {\"backbone\": …} object per line), found none")
        }
        self.lines = lines
    }

    /// One figure of SegKit's beside the script's Keras figure.
    public struct Ratio: Sendable {
        /// The figure and its unit, e.g. "epoch, cached (s)".
        public let name: String
        /// SegKit's in-process value (images/s or seconds).
        public let segkit: Double
        /// The script's Keras value, in the same unit.
        public let keras: Double
        /// Speed of SegKit over Keras's: images/s over images/s, or Keras's seconds over SegKit's (above 1: SegKit faster).
        public let ratio: Double
        /// The script's own measurement of the SegKit CLI (whole processes), when it has one: a check on the in-process figure.
        public let segkitCLI: Double?
    }

    /// SegKit's figures of one encoder (`EncoderBenchmark.run`'s object) against
    /// the script's line for `backbone`: classifier forward, segmenter forward,
    /// uncached and cached epoch. Figures the line lacks (a run with
    /// `--skip-train`) are left out.
    ///
    /// - Throws: `EncoderBenchmarkError` when the file has no line for `backbone`, or the script's run of it failed.
    public func ratios(_ ours: JSONValue, backbone: String) throws -> [Ratio] {
        let keras = try line(for: backbone)
        var rows: [Ratio] = []
        func add(_ name: String, _ key: String, _ theirs: String, cli: String, seconds: Bool) {
            guard let a = ours[key]?.double, let b = keras[theirs]?.double, a > 0, b > 0 else { return }
            rows.append(Ratio(name: name, segkit: a, keras: b, ratio: seconds ? b / a : a / b, segkitCLI: keras[cli]?.double))
        }
        add("classifier forward (images/s)", "classifier_img_s", "keras_classifier_img_s", cli: "segkit_classifier_img_s", seconds: false)
        add("segmenter forward (images/s)", "segmenter_img_s", "keras_predict_img_s", cli: "segkit_forward_img_s", seconds: false)
        add("epoch, uncached (s)", "epoch_s_uncached", "keras_epoch_s", cli: "segkit_epoch_s_uncached", seconds: true)
        add("epoch, cached (s)", "epoch_s_cached", "keras_epoch_s", cli: "segkit_epoch_s_cached", seconds: true)
        return rows
    }

    /// The script's line for `backbone` (`segkit bench` checks every file's before measuring).
    ///
    /// - Throws: `EncoderBenchmarkError` when the file has no line for `backbone`, or the script's run of it failed.
    public func line(for backbone: String) throws -> JSONValue {
        guard let keras = lines[backbone] else {
            throw EncoderBenchmarkError(message: "--compare-with \(path): no line for backbone '\(backbone)' (it has \(lines.keys.sorted().joined(separator: ", "))); name the files with --names")
        }
        if let error = keras["error"]?.string {
            throw EncoderBenchmarkError(message: "--compare-with \(path): the script's run of '\(backbone)' failed: \(error.prefix(300))")
        }
        return keras
    }

    /// Settings in which the script's run of `backbone` differs from SegKit's (size, batch, images, recipe), in words; empty when they agree.
    public func differences(_ ours: JSONValue, backbone: String) -> [String] {
        guard let keras = lines[backbone] else { return [] }
        return [("size", "size"), ("batch", "batch"), ("images", "n"), ("recipe", "recipe")].compactMap { ourKey, theirKey in
            let a = ours[ourKey], b = keras[theirKey]
            return a == b || b == nil ? nil : "\(ourKey): SegKit \(a.map(Self.text) ?? "?"), Keras \(b.map(Self.text) ?? "?")"
        }
    }

    static func text(_ v: JSONValue) -> String { v.int.map(String.init) ?? v.string ?? v.jsonText }
}
