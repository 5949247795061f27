import SegKitSupport
import Foundation
import SegKitKeras

/// The text `segkit bench --encoders` prints: each encoder's figures and
/// profile, a summary line, and the ratios against encoder_bench.py.
public enum EncoderReport {
    /// The figures of one encoder: `r` is `EncoderBenchmark.run`'s object (with
    /// the child's `peak_rss_mb`); each profiled convolution's GFLOP/s is shown
    /// beside `sgemm` (GFLOP/s) and each depthwise layer's GB/s beside
    /// `bandwidth` (GB/s, `Benchmarks.memoryBandwidthGBps`), both measured in the same run.
    public static func lines(_ r: JSONValue, name: String, sgemm: Double, bandwidth: Double) -> [String] {
        let n = r["images"]?.int ?? 0, batch = r["batch"]?.int ?? 0, size = r["size"]?.int ?? 0
        var out = ["", "== \(name) (\(r["file"]?.string ?? "?")): \(size)x\(size), batch \(batch), \(n) images, "
                   + "\(r["recipe"]?.string ?? "?") with \(r["classes"]?.int ?? 0) classes"]
        out.append(format("  classifier forward       %8.1f images/s", r["classifier_img_s"]))
        out.append(format("  segmenter forward        %8.1f images/s", r["segmenter_img_s"]))
        let epochs = r["epochs"]?.int ?? 0
        if epochs > 0 {
            let which = epochs > 1 ? "median of epochs 2-\(epochs)" : "one epoch"
            out.append(format("  epoch of \(n), uncached   %8.2f s (\(which))", r["epoch_s_uncached"]))
            out.append(format("  epoch of \(n), cached     %8.2f s", r["epoch_s_cached"])
                       + (r["cache_used"]?.bool == false ? " (the feature cache did not apply: an uncached run)"
                          : format(" (cache built in %.2f s; the \(epochs)-epoch run with the build %.2f s", r["cache_build_s"], r["cached_run_s"])
                            + (r["five_epochs_with_cache_build_s"].map { format(", its first 5 epochs %.2f s", $0) } ?? "") + ")"))
        }
        out.append(format("  peak RSS %.0f MiB; classifier %.2f M parameters, segmenter %.3f M trainable", r["peak_rss_mb"],
                          (r["params"]?.double).map { .number($0 / 1e6) }, (r["segmenter_trainable_params"]?.double).map { .number($0 / 1e6) }))
        out.append(format("  classifier forward by node, median per batch of \(batch) (layer time %.1f ms of %.1f ms a batch):",
                          r["profile_ms_per_batch"], (r["classifier_img_s"]?.double).map { .number(1000 * Double(batch) / $0) }))
        out.append("    " + pad("node", 30) + pad("kind", 20) + pad("output", 18) + lpad("share", 7) + lpad("ms", 9)
                   + lpad("GFLOP/s (sgemm %)", 20) + lpad("GB/s (stream %)", 18))
        for row in r["profile"]?.array ?? [] {
            let shape = (row["output"]?.array ?? []).compactMap(\.int).map(String.init).joined(separator: "x")
            let gflops = row["gflops"]?.double.map { String(format: "%.1f (%.0f%%)", $0, 100 * $0 / sgemm) } ?? ""
            let gbps = row["gbps"]?.double.map { String(format: "%.1f (%.0f%%)", $0, 100 * $0 / bandwidth) } ?? ""
            let line = "    " + pad(row["name"]?.string ?? "?", 30) + pad(row["kind"]?.string ?? "?", 20) + pad(shape, 18)
                + lpad(String(format: "%.1f%%", 100 * (row["share"]?.double ?? 0)), 7) + lpad(String(format: "%.2f", row["ms"]?.double ?? 0), 9)
                + lpad(gflops, 20) + lpad(gbps, 18)
            // Columns a layer has no figure for are blank: no trailing spaces.
            out.append(String(line.reversed().drop(while: { $0 == " " }).reversed()))
        }
        let kinds = (r["profile_by_kind"]?.array ?? []).prefix(8).map { k in
            let figures = [k["gflops"]?.double.map { String(format: "%.1f GFLOP/s", $0) }, k["gbps"]?.double.map { String(format: "%.1f GB/s", $0) }]
                .compactMap { $0 }
            return String(format: "%@ %.0f%%", k["kind"]?.string ?? "?", 100 * (k["share"]?.double ?? 0))
                + (figures.isEmpty ? "" : " (" + figures.joined(separator: ", ") + ")")
        }
        out.append("  by kind: " + kinds.joined(separator: ", "))
        return out
    }

    /// One line of an encoder's main figures.
    public static func summary(_ r: JSONValue, name: String) -> String {
        format("summary \(name): classifier %.1f images/s, segmenter %.1f images/s", r["classifier_img_s"], r["segmenter_img_s"])
            + (r["epoch_s_uncached"] == nil ? "" : format(", epoch %.2f s uncached / %.2f s cached", r["epoch_s_uncached"], r["epoch_s_cached"]))
            + format(", peak RSS %.0f MiB", r["peak_rss_mb"])
    }

    /// The ratio table's header, for results from `file`.
    public static func ratioHeader(file: String) -> [String] {
        ["", "SegKit / Keras (encoder_bench.py's lines in \(file); ratio above 1: SegKit faster):",
         "  " + pad("backbone", 18) + pad("figure", 32) + lpad("SegKit", 9) + lpad("Keras", 9) + lpad("ratio", 8) + lpad("SegKit CLI (script)", 21)]
    }

    /// One backbone's rows of the ratio table.
    public static func ratioLines(_ rows: [KerasEncoderResults.Ratio], backbone: String) -> [String] {
        rows.map {
            "  " + pad(backbone, 18) + pad($0.name, 32) + lpad(String(format: "%.2f", $0.segkit), 9) + lpad(String(format: "%.2f", $0.keras), 9)
                + lpad(String(format: "%.2f", $0.ratio), 8) + lpad($0.segkitCLI.map { String(format: "%.2f", $0) } ?? "-", 21)
        }
    }

    /// `template` with each `%` figure from `values`; a missing figure shows as 0 (the child reports every figure, so it never is).
    static func format(_ template: String, _ values: JSONValue?...) -> String {
        String(format: template, arguments: values.map { $0?.double ?? 0 })
    }

    static func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
    static func lpad(_ s: String, _ width: Int) -> String { s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s }
}
