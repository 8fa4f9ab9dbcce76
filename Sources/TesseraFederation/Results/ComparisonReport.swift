public import Foundation
import TesseraSupport

/// The arms of a file with `variants:` side by side: `comparison.csv` (one row per arm) and
/// `comparison.html` (accuracy against rounds for every arm, and the table of final accuracy
/// and ε), written next to the arms' own results once they have all run.
public enum ComparisonReport {
    /// One arm's outcome.
    public struct Arm: Sendable {
        public var name: String
        public var config: ExperimentConfig
        public var records: [RoundRecord]

        public init(name: String, config: ExperimentConfig, records: [RoundRecord]) {
            self.name = name
            self.config = config
            self.records = records
        }

        /// The accuracy of the last round that measured one, and where (see
        /// ``RoundRecord/finalAccuracy(of:)``).
        public var finalAccuracy: (value: Double, source: String)? { RoundRecord.finalAccuracy(of: records) }

        /// The ε spent by the end, at the experiment's δ; `nil` without privacy.
        public var spent: RoundPrivacyRecord? { records.last(where: { $0.privacy != nil })?.privacy }

        /// `none`, `central` or `distributed`.
        public var privacyMode: String { config.privacy?.mode.rawValue ?? "none" }

        public var completedRounds: Int { records.filter { $0.status == .completed }.count }

        /// The accuracy curve: the central test set's when the run has one, else the sites'.
        var curve: [(x: Double, y: Double)] {
            let central = records.contains { $0.centralAccuracy != nil }
            return records.compactMap { r in
                (central ? r.centralAccuracy : r.evalAccuracy).map { (Double(r.round), $0) }
            }
        }
    }

    public struct Paths: Sendable, Hashable {
        public var csv: URL
        public var html: URL
    }

    public static func write(title: String, arms: [Arm], to directory: URL) throws -> Paths {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ResultsError("cannot create the results directory \(directory.path): \(error.localizedDescription)")
        }
        let paths = Paths(
            csv: directory.appendingPathComponent("comparison.csv"),
            html: directory.appendingPathComponent("comparison.html"))
        for (url, text) in [(paths.csv, csv(arms)), (paths.html, html(title: title, arms: arms))] {
            do {
                try DurableFile.write(Data(text.utf8), to: url)
            } catch {
                throw ResultsError(error.description)
            }
        }
        return paths
    }

    public static func csv(_ arms: [Arm]) -> String {
        var lines = ["arm,privacy,target_epsilon,epsilon,delta,completed_rounds,final_accuracy,accuracy_source"]
        for arm in arms {
            let row = [
                ResultsWriter.csvField(arm.name), arm.privacyMode,
                ResultsWriter.number(arm.config.privacy?.targetEpsilon),
                ResultsWriter.number(arm.spent?.epsilon), ResultsWriter.number(arm.spent?.delta),
                String(arm.completedRounds), ResultsWriter.number(arm.finalAccuracy?.value),
                ResultsWriter.csvField(arm.finalAccuracy?.source ?? ""),
            ]
            lines.append(row.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line per arm for a terminal.
    public static func table(_ arms: [Arm]) -> [String] {
        let width = max(4, arms.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ n: Int) -> String { text + String(repeating: " ", count: max(0, n - text.count)) }
        var lines = [pad("arm", width) + "  privacy      ε spent    final accuracy"]
        for arm in arms {
            let epsilon = arm.spent.map { String(format: "%.3g", $0.epsilon) } ?? "—"
            let accuracy = arm.finalAccuracy.map { String(format: "%.4f (%@)", $0.value, $0.source) } ?? "not measured"
            lines.append(
                pad(arm.name, width) + "  " + pad(arm.privacyMode, 11) + "  " + pad(epsilon, 9) + "  " + accuracy)
        }
        return lines
    }

    public static func html(title: String, arms: [Arm]) -> String {
        let palette = SVGLineChart.palette + ["#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
        let chart = SVGLineChart(
            title: "Accuracy per round, by arm", xLabel: "round", yLabel: "accuracy",
            series: arms.enumerated().map { index, arm in
                SVGLineChart.Series(name: arm.name, points: arm.curve, color: palette[index % palette.count])
            })
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Tessera comparison — \(escapeHTML(title))</title>
            <style>
            body { font-family: sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
            th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
            th { background: #f3f3f3; } td.text { text-align: left; }
            </style></head><body>
            <h1>Tessera comparison: \(escapeHTML(title))</h1>
            \(chart.render())
            <table>
            <tr><th>arm</th><th>privacy</th><th>target ε</th><th>ε spent</th><th>δ</th><th>rounds completed</th><th>final accuracy</th><th>measured on</th></tr>

            """
        for arm in arms {
            page += "<tr><td class=\"text\">\(escapeHTML(arm.name))</td><td class=\"text\">\(arm.privacyMode)</td>"
            page += "<td>\(ResultsWriter.number(arm.config.privacy?.targetEpsilon))</td>"
            page +=
                "<td>\(ResultsWriter.number(arm.spent?.epsilon))</td><td>\(ResultsWriter.number(arm.spent?.delta))</td>"
            page += "<td>\(arm.completedRounds)</td><td>\(ResultsWriter.number(arm.finalAccuracy?.value))</td>"
            page += "<td class=\"text\">\(escapeHTML(arm.finalAccuracy?.source ?? ""))</td></tr>\n"
        }
        page += "</table>\n<p>Each arm's own report is in its results directory.</p>\n</body></html>\n"
        return page
    }
}
