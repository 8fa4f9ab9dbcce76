import Foundation

/// A dependency-free line chart rendered as inline SVG, so reports open offline in any
/// browser and can be pasted into papers and issues as they are.
public struct SVGLineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var color: String

        public init(name: String, points: [(x: Double, y: Double)], color: String) {
            self.name = name
            self.points = points
            self.color = color
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 640.0
    public var height = 320.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    /// A palette that stays distinguishable for the usual handful of series.
    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]

    public func render() -> String {
        let margin = (left: 64.0, right: 16.0, top: 36.0, bottom: 44.0)
        let plotW = width - margin.left - margin.right
        let plotH = height - margin.top - margin.bottom
        let all = series.flatMap(\.points).filter { $0.y.isFinite && $0.x.isFinite }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(fmt(width))" height="\(fmt(height))" \
            viewBox="0 0 \(fmt(width)) \(fmt(height))" font-family="sans-serif" font-size="12" role="img" \
            aria-label="\(escapeHTML(title))">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(fmt(width / 2))" y="20" text-anchor="middle" font-size="14" font-weight="bold">\(escapeHTML(title))</text>

            """
        guard let minX0 = all.map(\.x).min(), let maxX0 = all.map(\.x).max(),
            let minY0 = all.map(\.y).min(), let maxY0 = all.map(\.y).max()
        else {
            svg +=
                "<text x=\"\(fmt(width / 2))\" y=\"\(fmt(height / 2))\" text-anchor=\"middle\" fill=\"#666\">no data</text>\n</svg>"
            return svg
        }
        let (minX, maxX) = minX0 == maxX0 ? (minX0 - 1, maxX0 + 1) : (minX0, maxX0)
        let padY = (maxY0 - minY0) * 0.05
        let (minY, maxY) = minY0 == maxY0 ? (minY0 - 1, maxY0 + 1) : (minY0 - padY, maxY0 + padY)
        func px(_ x: Double) -> Double { margin.left + (x - minX) / (maxX - minX) * plotW }
        func py(_ y: Double) -> Double { margin.top + (1 - (y - minY) / (maxY - minY)) * plotH }

        // Axes and grid.
        for tick in Self.ticks(minY, maxY) {
            let y = py(tick)
            svg +=
                "<line x1=\"\(fmt(margin.left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(margin.left + plotW))\" y2=\"\(fmt(y))\" stroke=\"#e5e5e5\"/>\n"
            svg +=
                "<text x=\"\(fmt(margin.left - 6))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(Self.label(tick))</text>\n"
        }
        for tick in Self.ticks(minX, maxX) {
            let x = px(tick)
            svg +=
                "<line x1=\"\(fmt(x))\" y1=\"\(fmt(margin.top + plotH))\" x2=\"\(fmt(x))\" y2=\"\(fmt(margin.top + plotH + 4))\" stroke=\"#333\"/>\n"
            svg +=
                "<text x=\"\(fmt(x))\" y=\"\(fmt(margin.top + plotH + 18))\" text-anchor=\"middle\">\(Self.label(tick))</text>\n"
        }
        svg +=
            "<rect x=\"\(fmt(margin.left))\" y=\"\(fmt(margin.top))\" width=\"\(fmt(plotW))\" height=\"\(fmt(plotH))\" fill=\"none\" stroke=\"#333\"/>\n"
        svg +=
            "<text x=\"\(fmt(margin.left + plotW / 2))\" y=\"\(fmt(height - 6))\" text-anchor=\"middle\">\(escapeHTML(xLabel))</text>\n"
        svg +=
            "<text transform=\"translate(14 \(fmt(margin.top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escapeHTML(yLabel))</text>\n"

        // Series and legend.
        for (index, s) in series.enumerated() {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            if points.count > 1 {
                let path = points.map { "\(fmt(px($0.x))),\(fmt(py($0.y)))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            }
            for p in points where points.count <= 60 {
                svg += "<circle cx=\"\(fmt(px(p.x)))\" cy=\"\(fmt(py(p.y)))\" r=\"2.5\" fill=\"\(s.color)\"/>\n"
            }
            let ly = margin.top + 14 + Double(index) * 16
            svg +=
                "<rect x=\"\(fmt(margin.left + plotW - 150))\" y=\"\(fmt(ly - 9))\" width=\"12\" height=\"4\" fill=\"\(s.color)\"/>\n"
            svg += "<text x=\"\(fmt(margin.left + plotW - 132))\" y=\"\(fmt(ly - 3))\">\(escapeHTML(s.name))</text>\n"
        }
        svg += "</svg>"
        return svg
    }

    /// About five round-numbered ticks spanning `[lo, hi]`.
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let span = hi - lo
        guard span > 0, span.isFinite else { return [lo] }
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var ticks: [Double] = []
        var t = ceil(lo / step) * step
        while t <= hi + step * 1e-9 {
            ticks.append(t)
            t += step
        }
        return ticks
    }

    static func label(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
        return String(format: "%.3g", value)
    }

    private func fmt(_ v: Double) -> String { String(format: "%.1f", v) }
}

/// Escapes text for HTML/SVG element content and attribute values.
public func escapeHTML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for ch in text {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(ch)
        }
    }
    return out
}
