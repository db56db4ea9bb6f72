import Foundation
import TorchportCore

extension LayerReport {
    /// A picture of the report: the relative error of every compared layer along the network on
    /// a log scale, the tolerance line (`tolerance / scale` per layer), and the first divergence
    /// marked. A self-contained SVG document (our own few lines: no dependency), for
    /// `torchport verify --plot FILE.svg`.
    ///
    /// Elements carry classes a reader (or a test) can find: `error` (the polyline of errors),
    /// `layer` circles with a `data-layer` name, `tolerance` (the dashed line), `divergence` (the
    /// marker and its label).
    public func svg(title: String) -> String {
        let width = 960.0, height = 520.0
        let left = 80.0, right = 30.0, top = 50.0, bottom = 190.0
        let plotW = width - left - right, plotH = height - top - bottom
        let floor = 1e-12
        func logValue(_ x: Double) -> Double { log10(x.isFinite ? max(x, floor) : 1e3) }
        let tolerances = layers.map { $0.scale > 0 ? $0.tolerance / $0.scale : rtol }
        let values = layers.map(\.relError).map(logValue) + tolerances.map(logValue)
        var yMin = (values.min() ?? -8).rounded(.down) - 1, yMax = (values.max() ?? -4).rounded(.up) + 1
        yMin = max(yMin, log10(floor))
        if yMax - yMin < 2 { yMax = yMin + 2 }
        func x(_ i: Int) -> Double { left + (layers.count > 1 ? plotW * Double(i) / Double(layers.count - 1) : plotW / 2) }
        func y(_ v: Double) -> Double { top + plotH * (yMax - min(max(v, yMin), yMax)) / (yMax - yMin) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }

        var out: [String] = []
        out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
                   + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\">")
        out.append("<title>\(escape(title))</title>")
        out.append("<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>")
        out.append("<text x=\"\(f(left))\" y=\"28\" font-size=\"16\" fill=\"#222\">\(escape(title))</text>")
        // Decades: grid lines and labels.
        var decade = yMin
        while decade <= yMax {
            out.append("<line class=\"grid\" x1=\"\(f(left))\" y1=\"\(f(y(decade)))\" x2=\"\(f(left + plotW))\" "
                       + "y2=\"\(f(y(decade)))\" stroke=\"#ddd\" stroke-width=\"1\"/>")
            out.append("<text x=\"\(f(left - 8))\" y=\"\(f(y(decade) + 4))\" font-size=\"11\" text-anchor=\"end\" "
                       + "fill=\"#555\">1e\(Int(decade))</text>")
            decade += 1
        }
        out.append("<text x=\"18\" y=\"\(f(top + plotH / 2))\" font-size=\"12\" fill=\"#333\" text-anchor=\"middle\" "
                   + "transform=\"rotate(-90 18 \(f(top + plotH / 2)))\">relative error max|d| / max|ref|</text>")
        out.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#888\"/>")
        if !layers.isEmpty {
            let tol = tolerances.enumerated().map { "\(f(x($0.offset))),\(f(y(logValue($0.element))))" }.joined(separator: " ")
            out.append("<polyline class=\"tolerance\" points=\"\(tol)\" fill=\"none\" stroke=\"#d08000\" "
                       + "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>")
            let line = layers.enumerated().map { "\(f(x($0.offset))),\(f(y(logValue($0.element.relError))))" }.joined(separator: " ")
            out.append("<polyline class=\"error\" points=\"\(line)\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>")
            for (i, l) in layers.enumerated() {
                let color = l.passed ? "#1f5fbf" : "#c02020"
                out.append("<circle class=\"layer\" data-layer=\"\(escape(l.name))\" cx=\"\(f(x(i)))\" "
                           + "cy=\"\(f(y(logValue(l.relError))))\" r=\"3.5\" fill=\"\(color)\"><title>\(escape(l.comparedAs)): "
                           + "\(String(format: "%.3e", l.relError))</title></circle>")
                let lx = x(i), ly = top + plotH + 10
                out.append("<text x=\"\(f(lx))\" y=\"\(f(ly))\" font-size=\"9\" fill=\"#333\" text-anchor=\"end\" "
                           + "transform=\"rotate(-60 \(f(lx)) \(f(ly)))\">\(escape(l.comparedAs))</text>")
            }
            if let d = firstDivergence {
                let cx = x(d.index), cy = y(logValue(d.relError))
                out.append("<g class=\"divergence\" data-layer=\"\(escape(d.layer))\">")
                out.append("<circle cx=\"\(f(cx))\" cy=\"\(f(cy))\" r=\"9\" fill=\"none\" stroke=\"#c02020\" stroke-width=\"2.5\"/>")
                let anchor = cx > left + plotW * 0.7 ? "end" : "start"
                let tx = anchor == "end" ? cx - 12 : cx + 12
                out.append("<text x=\"\(f(tx))\" y=\"\(f(max(top + 14, cy - 12)))\" font-size=\"13\" fill=\"#c02020\" "
                           + "text-anchor=\"\(anchor)\">first divergence: \(escape(d.layer))</text>")
                out.append("</g>")
            }
        }
        // Legend.
        let legendY = height - 18
        out.append("<line x1=\"\(f(left))\" y1=\"\(f(legendY - 4))\" x2=\"\(f(left + 30))\" y2=\"\(f(legendY - 4))\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>")
        out.append("<text x=\"\(f(left + 36))\" y=\"\(f(legendY))\" font-size=\"11\" fill=\"#333\">relative error per layer</text>")
        out.append("<line x1=\"\(f(left + 220))\" y1=\"\(f(legendY - 4))\" x2=\"\(f(left + 250))\" y2=\"\(f(legendY - 4))\" "
                   + "stroke=\"#d08000\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>")
        out.append("<text x=\"\(f(left + 256))\" y=\"\(f(legendY))\" font-size=\"11\" fill=\"#333\">tolerance "
                   + "(atol \(Criterion.number(atol)) + rtol \(Criterion.number(rtol)) of the scale)</text>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}
