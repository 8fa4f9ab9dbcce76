import Foundation
import Testing

@testable import TesseraFederation

@Suite struct ResultsWriterTests {
    func sample() -> ExperimentResults {
        ExperimentResults(
            experiment: "demo <&>", configHash: "abc123", seed: 7, startedAt: "2026-11-29T05:00:00Z",
            rounds: [
                RoundRecord(
                    round: 1, modelVersion: "1.0.1", cohortSize: 5, contributors: 5, dropouts: 0, trainLoss: 0.69,
                    evalLoss: 0.6, evalAccuracy: 0.7, stageSeconds: ["train": 0.5, "unmasking": 0.1], seconds: 0.8),
                RoundRecord(
                    round: 2, status: .failed, failureReason: "only 2 of 5 participants, threshold 3, at ShareKeys",
                    cohortSize: 5, contributors: 0, dropouts: 3, seconds: 1.2),
                RoundRecord(
                    round: 3, modelVersion: "1.0.2", cohortSize: 5, contributors: 4, dropouts: 1, trainLoss: 0.5,
                    evalLoss: 0.45, evalAccuracy: 0.8, stageSeconds: ["train": 0.4], seconds: 0.7),
            ],
            summary: ["strategy": "fedavg"])
    }

    @Test func csvHasOneRowPerRoundAndEmptyCellsForMissingMetrics() {
        let lines = ResultsWriter.csv(sample()).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5)  // header + 3 rounds + trailing newline
        #expect(lines[0].hasPrefix("round,status,model_version,cohort_size"))
        #expect(lines[0].contains("stage_train_seconds"))
        #expect(lines[2].hasPrefix("2,failed,,5,0,3,,,"))
        #expect(lines[2].hasSuffix("\"only 2 of 5 participants, threshold 3, at ShareKeys\""))
    }

    @Test func jsonRoundTripsThroughDecoder() throws {
        let data = try ResultsWriter.json(sample())
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let back = try decoder.decode(ExperimentResults.self, from: data)
        #expect(back == sample())
    }

    /// A later run of the same experiment: different values, one more round.
    func laterSample() -> ExperimentResults {
        var results = sample()
        results.startedAt = "2026-11-30T06:00:00Z"
        results.rounds.append(
            RoundRecord(
                round: 4, modelVersion: "1.0.3", cohortSize: 5, contributors: 5, dropouts: 0, trainLoss: 0.3,
                evalLoss: 0.35, evalAccuracy: 0.9, stageSeconds: ["train": 0.4], seconds: 0.6))
        return results
    }

    @Test func htmlIsSelfContainedWithEscapedText() {
        let page = ResultsWriter.html(sample())
        #expect(page.contains("demo &lt;&amp;&gt;"))
        #expect(!page.contains("demo <&>"))
        #expect(page.components(separatedBy: "<svg").count - 1 == 3)
        // Nothing is fetched when the page opens: the SVG namespace is the only URL in it.
        let withoutNamespace = page.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        #expect(!withoutNamespace.contains("http:") && !withoutNamespace.contains("https:"))
        #expect(!page.contains("<script") && !page.contains("src=") && !page.contains("<link"))
        #expect(page.contains("final accuracy"))
    }

    /// Each `<polyline>`'s points, in order, of an SVG fragment.
    static func polylines(in svg: some StringProtocol) -> [[(x: Double, y: Double)]] {
        svg.components(separatedBy: "<polyline").dropFirst().map { element in
            let attribute = element.components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }
            return attribute.split(separator: " ").map { pair in
                let xy = pair.split(separator: ",").map { Double($0)! }
                return (xy[0], xy[1])
            }
        }
    }

    /// The `<svg>` element of a report whose title is `title`.
    static func chart(_ title: String, in page: String) throws -> Substring {
        let start = try #require(page.range(of: "aria-label=\"\(title)\""))
        let end = try #require(page.range(of: "</svg>", range: start.upperBound..<page.endIndex))
        return page[start.lowerBound..<end.upperBound]
    }

    /// The plotted line passes through the input values: x grows evenly with the round, and
    /// the screen y is one decreasing affine function of the value for every point.
    @Test func chartDrawsItsPointsFromTheValuesWithItsAxisLabels() throws {
        let values: [(x: Double, y: Double)] = [(1, 2.0), (2, 6.0), (3, 4.0), (4, 5.0)]
        let svg = SVGLineChart(
            title: "Loss per round", xLabel: "round", yLabel: "loss",
            series: [SVGLineChart.Series(name: "training loss", points: values, color: SVGLineChart.palette[0])]
        ).render()
        let lines = Self.polylines(in: svg)
        try #require(lines.count == 1 && lines[0].count == values.count)
        let drawn = lines[0]
        let step = drawn[1].x - drawn[0].x
        #expect(step > 0)
        for i in 1..<drawn.count { #expect(abs(drawn[i].x - drawn[i - 1].x - step) < 0.11) }
        let slope = (drawn[1].y - drawn[0].y) / (values[1].y - values[0].y)
        #expect(slope < 0)  // larger values are drawn higher up
        for i in drawn.indices {
            #expect(abs(drawn[i].y - (drawn[0].y + slope * (values[i].y - values[0].y))) < 0.11, "point \(i)")
        }
        #expect(svg.components(separatedBy: "<circle").count - 1 == values.count)
        for text in [">Loss per round</text>", ">round</text>", ">loss</text>", ">training loss</text>"] {
            #expect(svg.contains(text), "\(text)")
        }
        // The value axis is labelled across the data's range.
        for tick in ["2", "4", "6"] {
            #expect(svg.contains("text-anchor=\"end\">\(tick)</text>"), "y tick \(tick)")
        }
    }

    /// The report plots completed rounds only, with the better accuracy drawn higher.
    @Test func reportChartsPlotTheRoundsValues() throws {
        let page = ResultsWriter.html(sample())
        let accuracy = Self.polylines(in: try Self.chart("Accuracy per round", in: page))
        try #require(accuracy.count == 1 && accuracy[0].count == 2)  // rounds 1 and 3; round 2 failed
        #expect(accuracy[0][1].x > accuracy[0][0].x)
        #expect(accuracy[0][1].y < accuracy[0][0].y)  // 0.8 above 0.7
        let loss = Self.polylines(in: try Self.chart("Loss per round", in: page))
        #expect(loss.map(\.count) == [2, 2])  // training and evaluation loss
        #expect(loss.allSatisfy { $0[1].y > $0[0].y })  // both losses fell
        let cohort = Self.polylines(in: try Self.chart("Participants per round", in: page))
        #expect(cohort.map(\.count) == [3, 3])  // every round, the failed one included
        #expect(cohort[1][1].y < cohort[1][0].y && cohort[1][2].y > cohort[1][1].y)  // dropouts 0, 3, 1
    }

    static func visibleEntries(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    /// Replacing a run's files goes through new files renamed into place: a reader that opened
    /// the previous files keeps reading them whole, the paths give the new files whole, and no
    /// temporary file remains. Rewriting a file in place would show that reader the new bytes.
    @Test func aRewriteReplacesEachFileWholeAndLeavesNoTemporaryFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-results-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (first, second) = (sample(), laterSample())
        let paths = try ResultsWriter.write(first, to: dir)
        let readers = try [paths.csv, paths.json, paths.html].map { try FileHandle(forReadingFrom: $0) }
        defer { for reader in readers { try? reader.close() } }

        _ = try ResultsWriter.write(second, to: dir)
        #expect(try Self.text(paths.csv) == ResultsWriter.csv(second))
        #expect(try Data(contentsOf: paths.json) == ResultsWriter.json(second))
        #expect(try Self.text(paths.html) == ResultsWriter.html(second))
        let previous = [
            Data(ResultsWriter.csv(first).utf8), try ResultsWriter.json(first), Data(ResultsWriter.html(first).utf8),
        ]
        for (reader, expected) in zip(readers, previous) {
            #expect(try reader.readToEnd() == expected)
        }
        #expect(try Self.visibleEntries(dir) == ["report.html", "results.json", "rounds.csv"])
    }

    /// A write that fails part-way (here `results.json` cannot be replaced, because a directory
    /// now stands there) throws naming the file, leaves every file complete — the new run's
    /// before the failure, the previous run's after it — and leaves no temporary file.
    @Test func aFailedWriteLeavesCompleteFilesAndNoTemporaryFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-results-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (first, second) = (sample(), laterSample())
        let paths = try ResultsWriter.write(first, to: dir)
        try FileManager.default.removeItem(at: paths.json)
        try FileManager.default.createDirectory(at: paths.json, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: paths.json.appendingPathComponent("inside"))

        let error = try #require(throws: ResultsError.self) { _ = try ResultsWriter.write(second, to: dir) }
        #expect(error.message.contains(paths.json.path))
        #expect(try Self.text(paths.csv) == ResultsWriter.csv(second))
        #expect(try Self.text(paths.html) == ResultsWriter.html(first))
        #expect(try Self.visibleEntries(dir) == ["report.html", "results.json", "rounds.csv"])
        #expect(try Self.visibleEntries(paths.json) == ["inside"])
    }

    @Test func chartTicksAreRoundAndCoverTheRange() {
        let ticks = SVGLineChart.ticks(0.03, 0.97)
        #expect(ticks.first! >= 0.03 && ticks.last! <= 0.97)
        #expect(ticks.count >= 4 && ticks.count <= 11)
        let empty = SVGLineChart(title: "t", xLabel: "x", yLabel: "y", series: []).render()
        #expect(empty.contains("no data"))
    }
}
