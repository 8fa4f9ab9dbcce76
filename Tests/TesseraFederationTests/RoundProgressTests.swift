import Foundation
import TesseraSimulation
import Testing

@testable import TesseraFederation

/// The live progress line follows the lines a real run writes.
@Suite struct RoundProgressTests {
    @Test func aSecureRunsLinesMoveTheLiveLineThroughEveryStage() throws {
        let config = try ExperimentConfig.parse(
            yaml: """
                name: progress
                seed: 2
                rounds: 3
                participants: 4
                model: {preset: logistic_regression}
                dataset: {kind: synthetic_iid, max_samples_per_participant: 60, test_fraction: 0.2}
                partitioning: {scheme: natural}
                cohort: {fraction: 1, minimum: 3}
                secure_aggregation: {enabled: true, active_adversary: false}
                site_policy: {require_active_adversary_protection: false}
                evaluation: {every: 3}
                """, source: "progress.yaml")
        var lines: [String] = []
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-progress-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        _ = try ExperimentRunner.run(config, outputRoot: output) { lines.append($0) }

        var progress = RoundProgress(totalRounds: 3)
        var stages: Set<String> = []
        var summaries: [String] = []
        for (index, line) in lines.enumerated() {
            if progress.observe(line, at: Double(index)) { summaries.append(line) }
            if let stage = progress.stage { stages.insert(stage) }
        }
        #expect(summaries.count == 3 && summaries.allSatisfy { $0.contains(": completed, cohort 4") })
        #expect(progress.finishedRounds == 3)
        #expect(stages.isSuperset(of: ["training", "share_keys", "masked_input", "unmasking"]), "\(stages)")
        #expect(progress.cohort == 4)
    }

    @Test func theLiveLineCountsDropoutsAndEstimatesTheRest() {
        var progress = RoundProgress(totalRounds: 10)
        #expect(progress.liveLine(at: 0) == "waiting for the first round")
        progress.observe("round 1: selected 5 of 6 eligible participants (target 5)", at: 0)
        progress.observe("round 1: completed, cohort 5, contributors 5, dropouts 0, model 1.0.1", at: 4)
        progress.observe("round 2: selected 5 of 6 eligible participants (target 5)", at: 4)
        progress.observe("round 2: share_keys with 5 participants", at: 5)
        progress.observe("round 2: dropped site-3: sent an update of 9 values; the model has 10", at: 6)
        progress.observe("round 2: site-4 disconnected during share_keys", at: 6)
        // Not a round line: ignored.
        progress.observe("roundabout: nothing", at: 6)
        #expect(progress.dropouts == 2 && progress.stage == "share_keys" && progress.cohort == 5)
        // One round of 4 s done, nine left, 3 s into the second: 9 × 4 − 3 = 33 s.
        #expect(progress.eta(at: 7) == 33)
        #expect(progress.liveLine(at: 7) == "round 2/10 · share_keys · cohort 5 · dropouts 2 · 3.0 s · ETA 33.0 s")
        // A new round starts from nothing.
        progress.observe("round 3: selected 4 of 6 eligible participants (target 4)", at: 9)
        #expect(progress.dropouts == 0 && progress.stage == "training" && progress.cohort == 4)
    }
}
