import Foundation

/// An SVG chart a person can read: the loss (log scale) and the number of exactly-zero weights per epoch, one
/// line per run, for each problem.
enum LossChart {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

    static func svg(_ problems: [(title: String, results: [TrainingRun.Result], weights: Int)]) -> String {
        let panelWidth = 460.0, panelHeight = 220.0, margin = 56.0
        let rowHeight = panelHeight + 2 * margin + 18 * Double(problems.map(\.results.count).max() ?? 1)
        let width = 2 * panelWidth + 3 * margin, height = Double(problems.count) * rowHeight + 20
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>

            """
        for (row, problem) in problems.enumerated() {
            let top = Double(row) * rowHeight + 20
            svg += "<text x=\"\(margin)\" y=\"\(top + 10)\" font-size=\"15\" font-weight=\"bold\">\(escape(problem.title))</text>\n"
            let losses = problem.results.flatMap { $0.curve.map(\.loss) }.filter { $0 > 0 }
            let low = log10(losses.min() ?? 1e-3), high = log10(losses.max() ?? 1)
            svg += panel(x: margin, y: top + 30, width: panelWidth, height: panelHeight, title: "loss (log scale)",
                         results: problem.results, range: (low, max(high, low + 1e-9)),
                         value: { log10(max($0.loss, 1e-300)) }, label: { String(format: "%.3g", pow(10, $0)) })
            svg += panel(x: 2 * margin + panelWidth, y: top + 30, width: panelWidth, height: panelHeight,
                         title: "exactly-zero weights (of \(problem.weights))", results: problem.results,
                         range: (0, Double(problem.weights)), value: { Double($0.zeros) }, label: { String(Int($0)) })
            for (index, result) in problem.results.enumerated() {
                let y = top + 30 + panelHeight + 30 + Double(index) * 18
                let dash = index % 2 == 1 ? " stroke-dasharray=\"6 4\"" : ""
                svg += "<line x1=\"\(margin)\" y1=\"\(y)\" x2=\"\(margin + 24)\" y2=\"\(y)\" stroke=\"\(colors[index % colors.count])\" stroke-width=\"3\"\(dash)/>"
                svg += "<text x=\"\(margin + 32)\" y=\"\(y + 4)\">\(escape(result.label)): \(escape(result.chain))</text>\n"
            }
        }
        return svg + "</svg>\n"
    }

    private static func panel(x: Double, y: Double, width: Double, height: Double, title: String,
                              results: [TrainingRun.Result], range: (Double, Double),
                              value: ((epoch: Int, loss: Double, zeros: Int)) -> Double, label: (Double) -> String) -> String {
        let epochs = Double(max(results.map { $0.curve.last?.epoch ?? 0 }.max() ?? 1, 1))
        func px(_ epoch: Int) -> Double { x + width * Double(epoch) / epochs }
        func py(_ v: Double) -> Double { y + height - height * (v - range.0) / max(range.1 - range.0, 1e-12) }
        var out = "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#888\"/>\n"
        out += "<text x=\"\(x)\" y=\"\(y - 6)\">\(escape(title))</text>\n"
        out += "<text x=\"\(x - 4)\" y=\"\(y + 4)\" text-anchor=\"end\">\(label(range.1))</text>"
        out += "<text x=\"\(x - 4)\" y=\"\(y + height)\" text-anchor=\"end\">\(label(range.0))</text>\n"
        out += "<text x=\"\(x + width)\" y=\"\(y + height + 16)\" text-anchor=\"end\">epoch \(Int(epochs))</text>\n"
        for (index, result) in results.enumerated() where !result.curve.isEmpty {
            let points = result.curve.map { String(format: "%.1f,%.1f", px($0.epoch), py(value($0))) }.joined(separator: " ")
            // Every other run dashed, so a run hidden under another still shows.
            let dash = index % 2 == 1 ? " stroke-dasharray=\"6 4\"" : ""
            out += "<polyline fill=\"none\" stroke=\"\(colors[index % colors.count])\" stroke-width=\"2\"\(dash) points=\"\(points)\"/>\n"
        }
        return out
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
