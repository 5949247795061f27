import Foundation

/// Small inline SVG charts for the comparison report (no scripts, no fonts to load).
enum SVGChart {
    static let width = 560.0, height = 300.0
    static let margin = (left: 52.0, right: 150.0, top: 20.0, bottom: 40.0)

    /// `s` as HTML/SVG text or a quoted attribute value: `&`, `<`, `>`, `"` and `'`
    /// become character references (HTML's escaping of text and attributes), so a
    /// contender, class or file name cannot end an `alt="…"` or `src="…"` early.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    /// Lines over x; `series` are (name, colour, points), y in [0, yMax];
    /// `bands` (colour, (x, low, high) points) are shaded under the lines.
    static func lines(title: String, xLabel: String, yLabel: String, xTicks: [(Double, String)], yMax: Double,
                      series: [(String, String, [(Double, Double)])], bands: [(String, [(Double, Double, Double)])] = []) -> String {
        let xs = xTicks.map(\.0) + series.flatMap { $0.2.map(\.0) }
        let (x0, x1) = (xs.min() ?? 0, max(xs.max() ?? 1, (xs.min() ?? 0) + 1e-9))
        let plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom
        func px(_ x: Double) -> Double { margin.left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { margin.top + plotH - min(max(y / yMax, 0), 1) * plotH }
        var svg = header(title)
        svg += axes(xLabel: xLabel, yLabel: yLabel, yMax: yMax, plotW: plotW, plotH: plotH)
        for (x, label) in xTicks {
            svg += "<text x=\"\(f(px(x)))\" y=\"\(f(height - margin.bottom + 16))\" text-anchor=\"middle\" font-size=\"11\">\(escape(label))</text>"
        }
        for (colour, points) in bands where points.contains(where: { $0.1 != $0.2 }) {
            let outline = points.map { "\(f(px($0.0))),\(f(py($0.2)))" } + points.reversed().map { "\(f(px($0.0))),\(f(py($0.1)))" }
            svg += "<polygon fill=\"\(colour)\" fill-opacity=\"0.18\" stroke=\"none\" points=\"\(outline.joined(separator: " "))\"/>"
        }
        for (i, (name, colour, points)) in series.enumerated() {
            let path = points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(path)\"/>"
            for p in points { svg += "<circle cx=\"\(f(px(p.0)))\" cy=\"\(f(py(p.1)))\" r=\"3\" fill=\"\(colour)\"/>" }
            svg += legendEntry(i, name, colour)
        }
        return svg + "</svg>"
    }

    /// Grouped bars: one group per category, one bar per series; nil values are gaps.
    static func bars(title: String, categories: [String], yLabel: String, series: [(String, String, [Double?])]) -> String {
        let plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom
        let group = plotW / Double(max(categories.count, 1))
        let bar = group * 0.8 / Double(max(series.count, 1))
        var svg = header(title) + axes(xLabel: "", yLabel: yLabel, yMax: 1, plotW: plotW, plotH: plotH)
        for (c, name) in categories.enumerated() {
            let cx = margin.left + (Double(c) + 0.5) * group
            svg += "<text x=\"\(f(cx))\" y=\"\(f(height - margin.bottom + 14))\" text-anchor=\"end\" font-size=\"9\" transform=\"rotate(-30 \(f(cx)) \(f(height - margin.bottom + 14)))\">\(escape(name))</text>"
            for (s, (_, colour, values)) in series.enumerated() {
                guard let v = values[c] else { continue }
                let x = margin.left + Double(c) * group + group * 0.1 + Double(s) * bar
                let h = min(max(v, 0), 1) * plotH
                svg += "<rect x=\"\(f(x))\" y=\"\(f(margin.top + plotH - h))\" width=\"\(f(bar * 0.9))\" height=\"\(f(h))\" fill=\"\(colour)\"/>"
            }
        }
        for (i, (name, colour, _)) in series.enumerated() { svg += legendEntry(i, name, colour) }
        return svg + "</svg>"
    }

    private static func header(_ title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\">"
            + "<text x=\"\(f(margin.left))\" y=\"14\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>"
    }

    private static func axes(xLabel: String, yLabel: String, yMax: Double, plotW: Double, plotH: Double) -> String {
        var s = "<rect x=\"\(f(margin.left))\" y=\"\(f(margin.top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"#fafafa\" stroke=\"#999\"/>"
        for k in 0...4 {
            let v = yMax * Double(k) / 4, y = margin.top + plotH - Double(k) / 4 * plotH
            s += "<line x1=\"\(f(margin.left))\" x2=\"\(f(margin.left + plotW))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(f(margin.left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.2f", v))</text>"
        }
        s += "<text x=\"14\" y=\"\(f(margin.top + plotH / 2))\" font-size=\"11\" transform=\"rotate(-90 14 \(f(margin.top + plotH / 2)))\" text-anchor=\"middle\">\(escape(yLabel))</text>"
        s += "<text x=\"\(f(margin.left + plotW / 2))\" y=\"\(f(height - 4))\" font-size=\"11\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        return s
    }

    private static func legendEntry(_ i: Int, _ name: String, _ colour: String) -> String {
        let x = width - margin.right + 12, y = margin.top + 14 + Double(i) * 18
        return "<rect x=\"\(f(x))\" y=\"\(f(y - 9))\" width=\"12\" height=\"10\" fill=\"\(colour)\"/>"
            + "<text x=\"\(f(x + 18))\" y=\"\(f(y))\" font-size=\"11\">\(escape(name))</text>"
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
