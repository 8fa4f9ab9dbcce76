import Foundation
import TesseraFederation
import TesseraSimulation
import TesseraTesting
import Testing

/// A simulation's final model is a function of its experiment file and seed alone: the same
/// bytes (so the same SHA-256, which the model registry addresses it by) over every transport,
/// whatever order the sites connect in and however the threads are scheduled.
@Suite struct ReproducibilityTests {
    /// The quick start's features at a smaller size: clinical-risk sites generated from the
    /// seed, secure aggregation, a cohort minimum below the number of sites (a coordinator that
    /// started before every site connected would run its first round without the late ones),
    /// and evaluation every round.
    static let yaml = """
        name: reproducible
        seed: 7
        rounds: 3
        participants: 5
        model: {preset: logistic_regression}
        dataset: {kind: clinical_risk, test_fraction: 0.2, standardise: true}
        partitioning: {scheme: natural}
        cohort: {fraction: 1.0, minimum: 4}
        strategy: {name: fedavg}
        local_training: {epochs: 2, batch_size: 32, optimizer: sgd, learning_rate: 0.05}
        secure_aggregation: {enabled: true, neighbourhood: complete, dropout_rate: 0.2, corruption_rate: 0.2}
        evaluation: {every: 1}
        on_round_failure: continue
        """

    @Test func theFinalModelHasOneDigestOverEveryTransportAndRun() async throws {
        let config = try ExperimentConfig.parse(yaml: Self.yaml, source: "reproducible.yaml")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-reproducible-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var digests: [String: [String]] = [:]
        var contributors: [String: [[Int]]] = [:]
        for transport in SimulationTransport.allCases {
            for run in 1...3 {
                let report = try await ExperimentRunner.run(
                    config, transport: transport, outputRoot: root.appendingPathComponent("\(transport)-\(run)"),
                    progress: { _ in }, logger: testLogger())
                digests[transport.rawValue, default: []].append(report.modelSHA256)
                contributors[transport.rawValue, default: []].append(report.records.map(\.contributors))
            }
        }
        let distinct = Set(digests.values.joined())
        #expect(distinct.count == 1, "model digests by transport: \(digests)")
        // Every site took part in every round, over every transport: none started before all
        // five sites had connected.
        let everySiteEveryRound = contributors.values.joined().allSatisfy { $0 == [5, 5, 5] }
        #expect(everySiteEveryRound, "contributors per round: \(contributors)")
    }
}
