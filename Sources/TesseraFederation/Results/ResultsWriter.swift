public import Foundation
import TesseraSupport

/// Writes an experiment's results next to each other in one directory:
/// `rounds.csv` (one row per round), `results.json` (everything, machine-readable) and
/// `report.html` (a self-contained page with accuracy and loss curves as inline SVG that opens
/// offline).
///
/// The sites' held-out figures are `eval_*`; the coordinator's central test set
/// (`evaluation.dataset`) has its own `central_*` columns and curves, present when the run has
/// central figures, so the two are never mixed up.
///
/// Each file is replaced atomically and durably (`TesseraSupport`'s `DurableFile`), so a crash
/// or a failed write leaves the previous complete file in place rather than a truncated one.
public enum ResultsWriter {
    public struct Paths: Sendable, Hashable {
        public var csv: URL
        public var json: URL
        public var html: URL
    }

    public static func write(_ results: ExperimentResults, to directory: URL) throws -> Paths {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ResultsError("cannot create the results directory \(directory.path): \(error.localizedDescription)")
        }
        let paths = Paths(
            csv: directory.appendingPathComponent("rounds.csv"),
            json: directory.appendingPathComponent("results.json"),
            html: directory.appendingPathComponent("report.html"))
        // Everything is rendered before the first file is replaced, so a rendering failure
        // leaves the previous set of files whole.
        let documents = [
            (paths.csv, Data(csv(results).utf8)), (paths.json, try json(results)),
            (paths.html, Data(html(results).utf8)),
        ]
        for (url, data) in documents {
            do {
                try DurableFile.write(data, to: url)
            } catch {
                throw ResultsError(error.description)
            }
        }
        return paths
    }

    /// Stage names in the order they first appear, so CSV columns are stable for a run.
    static func stageNames(_ results: ExperimentResults) -> [String] {
        var seen: [String] = []
        for record in results.rounds {
            for name in record.stageSeconds.keys.sorted() where !seen.contains(name) { seen.append(name) }
        }
        return seen
    }

    public static func csv(_ results: ExperimentResults) -> String {
        let stages = stageNames(results)
        let central = results.rounds.contains { $0.hasCentralEvaluation }
        var header = [
            "round", "status", "model_version", "cohort_size", "contributors", "dropouts", "train_loss", "eval_loss",
            "eval_accuracy", "eval_auc",
        ]
        if central { header += ["central_loss", "central_accuracy", "central_auc"] }
        let privacy = results.rounds.contains { $0.privacy != nil }
        if privacy { header += ["epsilon", "clip_norm"] }
        header.append("seconds")
        header += stages.map { "stage_\($0)_seconds" }
        header.append("failure_reason")
        var lines = [header.joined(separator: ",")]
        for r in results.rounds {
            var row: [String] = [
                String(r.round), r.status.rawValue, r.modelVersion ?? "", String(r.cohortSize), String(r.contributors),
                String(r.dropouts), number(r.trainLoss), number(r.evalLoss), number(r.evalAccuracy), number(r.evalAUC),
            ]
            if central { row += [number(r.centralLoss), number(r.centralAccuracy), number(r.centralAUC)] }
            if privacy { row += [number(r.privacy?.epsilon), number(r.privacy?.clipNorm)] }
            row.append(number(r.seconds))
            row += stages.map { number(r.stageSeconds[$0]) }
            row.append(csvField(r.failureReason ?? ""))
            lines.append(row.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func json(_ results: ExperimentResults) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(results)
    }

    /// The report's curves of `records`: accuracy, loss, participants, and (private experiments)
    /// the privacy spent, per round. The dashboard draws the same.
    public static func charts(_ records: [RoundRecord]) -> [SVGLineChart] {
        let completed = records.filter { $0.status == .completed }
        func series(_ name: String, _ color: String, _ value: (RoundRecord) -> Double?) -> SVGLineChart.Series {
            SVGLineChart.Series(
                name: name, points: completed.compactMap { r in value(r).map { (Double(r.round), $0) } }, color: color)
        }
        let accuracy = SVGLineChart(
            title: "Accuracy per round", xLabel: "round", yLabel: "accuracy",
            series: [
                series("evaluation accuracy", SVGLineChart.palette[0]) { $0.evalAccuracy },
                series("evaluation AUC", SVGLineChart.palette[2]) { $0.evalAUC },
                series("central test set accuracy", SVGLineChart.palette[4]) { $0.centralAccuracy },
                series("central test set AUC", SVGLineChart.palette[5]) { $0.centralAUC },
            ].filter { !$0.points.isEmpty })
        let loss = SVGLineChart(
            title: "Loss per round", xLabel: "round", yLabel: "loss",
            series: [
                series("training loss", SVGLineChart.palette[1]) { $0.trainLoss },
                series("evaluation loss", SVGLineChart.palette[3]) { $0.evalLoss },
                series("central test set loss", SVGLineChart.palette[4]) { $0.centralLoss },
            ].filter { !$0.points.isEmpty })
        let cohort = SVGLineChart(
            title: "Participants per round", xLabel: "round", yLabel: "participants",
            series: [
                SVGLineChart.Series(
                    name: "contributors", points: records.map { (Double($0.round), Double($0.contributors)) },
                    color: SVGLineChart.palette[0]),
                SVGLineChart.Series(
                    name: "dropouts", points: records.map { (Double($0.round), Double($0.dropouts)) },
                    color: SVGLineChart.palette[1]),
            ])
        let epsilon = SVGLineChart(
            title: "Privacy spent per round", xLabel: "round", yLabel: "ε",
            series: [
                SVGLineChart.Series(
                    name: "ε (cumulative)",
                    points: records.compactMap { r in r.privacy.map { (Double(r.round), $0.epsilon) } },
                    color: SVGLineChart.palette[0])
            ].filter { !$0.points.isEmpty })
        return [accuracy, loss, cohort] + (epsilon.series.isEmpty ? [] : [epsilon])
    }

    public static func html(_ results: ExperimentResults) -> String {
        let completed = results.rounds.filter { $0.status == .completed }
        let last = completed.last
        var summaryRows = [
            ("experiment", results.experiment), ("started", results.startedAt), ("seed", String(results.seed)),
            ("config hash", results.configHash),
            ("rounds", "\(completed.count) completed, \(results.rounds.count - completed.count) failed"),
        ]
        if let final = results.finalAccuracy {
            summaryRows.append(("final accuracy", String(format: "%.4f (%@)", final.value, final.source)))
        }
        if let version = last?.modelVersion { summaryRows.append(("final model version", version)) }
        if let spent = results.rounds.last(where: { $0.privacy != nil })?.privacy {
            summaryRows.append(("privacy spent", String(format: "ε = %.4g at δ = %.3g", spent.epsilon, spent.delta)))
        }
        summaryRows += results.summary.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }

        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Tessera report — \(escapeHTML(results.experiment))</title>
            <style>
            body { font-family: sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
            th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
            th { background: #f3f3f3; } td.text { text-align: left; }
            tr.failed td { background: #fff0f0; }
            .charts svg { display: block; margin: 1em 0; border: 1px solid #eee; }
            </style></head><body>
            <h1>Tessera report: \(escapeHTML(results.experiment))</h1>
            <table>

            """
        for (key, value) in summaryRows {
            page += "<tr><th>\(escapeHTML(key))</th><td class=\"text\">\(escapeHTML(value))</td></tr>\n"
        }
        page += "</table>\n<div class=\"charts\">\n"
        for chart in charts(results.rounds) { page += "\(chart.render())\n" }
        page += "</div>\n"
        page += "<h2>Rounds</h2>\n<table>\n<tr><th>round</th><th>status</th><th>model</th><th>cohort</th>"
        page += "<th>contributors</th><th>dropouts</th><th>train loss</th><th>eval loss</th><th>accuracy</th>"
        page += "<th>AUC</th>"
        let central = results.rounds.contains { $0.hasCentralEvaluation }
        if central {
            page += "<th>central test set loss</th><th>central test set accuracy</th><th>central test set AUC</th>"
        }
        let privacy = results.rounds.contains { $0.privacy != nil }
        if privacy { page += "<th>ε</th><th>clip norm</th>" }
        page += "<th>seconds</th><th>note</th></tr>\n"
        for r in results.rounds {
            page += "<tr class=\"\(r.status.rawValue)\"><td>\(r.round)</td><td class=\"text\">\(r.status.rawValue)</td>"
            page += "<td class=\"text\">\(escapeHTML(r.modelVersion ?? ""))</td><td>\(r.cohortSize)</td>"
            page += "<td>\(r.contributors)</td><td>\(r.dropouts)</td><td>\(number(r.trainLoss))</td>"
            page += "<td>\(number(r.evalLoss))</td><td>\(number(r.evalAccuracy))</td><td>\(number(r.evalAUC))</td>"
            if central {
                page += "<td>\(number(r.centralLoss))</td><td>\(number(r.centralAccuracy))</td>"
                page += "<td>\(number(r.centralAUC))</td>"
            }
            if privacy { page += "<td>\(number(r.privacy?.epsilon))</td><td>\(number(r.privacy?.clipNorm))</td>" }
            page += "<td>\(number(r.seconds))</td><td class=\"text\">\(escapeHTML(r.failureReason ?? ""))</td></tr>\n"
        }
        page += "</table>\n<p>Files: rounds.csv, results.json (same directory).</p>\n</body></html>\n"
        return page
    }

    static func number(_ value: Double?) -> String {
        guard let value else { return "" }
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        return String(format: "%.6g", value)
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A results file could not be written; the message names the file.
public struct ResultsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
