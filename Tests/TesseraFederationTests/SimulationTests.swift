import Foundation
import TesseraSimulation
import Testing

@testable import TesseraFederation

/// End-to-end runs of experiment files through the same code `tessera simulate` uses.
@Suite struct SimulationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tessera-sim-\(UUID().uuidString)")
    }

    @Test func quickstartExperimentRunsWithSecureAggregationAndWritesItsReport() throws {
        let config = try ExperimentConfig.load(
            from: Self.repository.appendingPathComponent("Experiments/quickstart.yaml"))
        #expect(config.secureAggregation.enabled)
        let output = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        var lines: [String] = []
        let report = try ExperimentRunner.run(config, outputRoot: output) { lines.append($0) }
        #expect(report.completedRounds == config.rounds)
        let final = try #require(report.records.last)
        #expect(final.status == .completed)
        #expect((final.evalAccuracy ?? 0) > 0.75, "quick-start accuracy \(final.evalAccuracy ?? 0)")
        #expect((final.evalAUC ?? 0) > 0.65)
        // Secure aggregation ran: the unmasking stage appears in every round's timings, and no
        // participant sent its update in the clear.
        #expect(report.records.allSatisfy { $0.stageSeconds["unmasking"] != nil })
        let clear = report.outcome!.transcript.contains { if case .update = $0.message { true } else { false } }
        #expect(!clear)
        for url in [report.paths.csv, report.paths.json, report.paths.html, report.modelPath] {
            #expect(FileManager.default.fileExists(atPath: url.path), "\(url.lastPathComponent) missing")
        }
        #expect(lines.contains { $0.hasPrefix("round 20: completed") })
    }

    @Test func fedAvgConvergesOnSyntheticIID() throws {
        let yaml = """
            name: iid-check
            seed: 3
            rounds: 20
            participants: 10
            model: {preset: logistic_regression}
            dataset: {kind: synthetic_iid, max_samples_per_participant: 200, test_fraction: 0.2, standardise: true}
            partitioning: {scheme: natural}
            cohort: {fraction: 0.5, minimum: 5}
            strategy: {name: fedavg}
            local_training: {epochs: 2, batch_size: 10, optimizer: sgd, learning_rate: 0.1}
            secure_aggregation: {enabled: true}
            evaluation: {every: 5}
            """
        let config = try ExperimentConfig.parse(yaml: yaml, source: "iid-check.yaml")
        let output = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let report = try ExperimentRunner.run(config, outputRoot: output) { _ in }
        let evaluated = report.records.compactMap(\.evalAccuracy)
        #expect(evaluated.count == 4)
        // Synthetic-IID labels come from one shared softmax model, so a linear model can fit
        // them; 20 rounds reach about 0.75 (the paper trains for 200).
        #expect(evaluated.last! > 0.7, "accuracy per evaluation: \(evaluated)")
        #expect(evaluated.last! > evaluated.first! + 0.05, "accuracy per evaluation: \(evaluated)")
        let losses = report.records.compactMap(\.trainLoss)
        #expect(losses.last! < losses.first!)
    }

    @Test func dataProblemsSurfaceAsClearErrors() throws {
        let yaml = """
            name: missing-file
            rounds: 1
            participants: 2
            dataset: {kind: csv, paths: [does-not-exist-1.csv, does-not-exist-2.csv], label_column: y}
            partitioning: {scheme: natural}
            cohort: {minimum: 2}
            secure_aggregation: {enabled: false}
            site_policy: {require_secure_aggregation: false}
            """
        let config = try ExperimentConfig.parse(yaml: yaml, source: "missing.yaml")
        #expect {
            try ExperimentRunner.run(config, outputRoot: temporaryDirectory()) { _ in }
        } throws: { error in
            "\(error)".contains("does-not-exist-1.csv")
        }
    }
}
