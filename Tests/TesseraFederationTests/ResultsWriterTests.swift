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

    @Test func htmlIsSelfContainedWithEscapedTextAndCharts() {
        let page = ResultsWriter.html(sample())
        #expect(page.contains("demo &lt;&amp;&gt;"))
        #expect(!page.contains("demo <&>"))
        #expect(page.components(separatedBy: "<svg").count - 1 == 3)
        #expect(!page.contains("http://") || page.contains("http://www.w3.org/2000/svg"))
        #expect(!page.contains("<script"))
        // The accuracy curve has one point per completed round that evaluated.
        #expect(page.contains("evaluation accuracy"))
        #expect(page.contains("final accuracy"))
    }

    @Test func writesAllThreeFilesAtomically() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-results-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = try ResultsWriter.write(sample(), to: dir)
        for url in [paths.csv, paths.json, paths.html] {
            #expect(FileManager.default.fileExists(atPath: url.path))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
    }

    @Test func chartTicksAreRoundAndCoverTheRange() {
        let ticks = SVGLineChart.ticks(0.03, 0.97)
        #expect(ticks.first! >= 0.03 && ticks.last! <= 0.97)
        #expect(ticks.count >= 4 && ticks.count <= 11)
        let empty = SVGLineChart(title: "t", xLabel: "x", yLabel: "y", series: []).render()
        #expect(empty.contains("no data"))
    }
}
