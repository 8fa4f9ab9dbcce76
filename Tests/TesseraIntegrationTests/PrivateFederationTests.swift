import Foundation
import TesseraCoordinator
import TesseraFederation
import TesseraPrivacy
import TesseraState
import TesseraTesting
import Testing

/// Differential privacy over the real services (gRPC's in-process transport): the privacy
/// parameters cross the wire, sites add their noise inside the secure sum, and a site's own
/// budget holds whatever the coordinator asks.
@Suite struct PrivateFederationTests {
    static func yaml(rounds: Int, sitePolicy: String) -> String {
        """
        name: private-inproc
        seed: 4
        rounds: \(rounds)
        participants: 6
        model: {preset: logistic_regression}
        dataset: {kind: synthetic_iid, max_samples_per_participant: 100, test_fraction: 0.2, standardise: true}
        partitioning: {scheme: natural}
        cohort: {fraction: 1.0, minimum: 6}
        strategy: {name: fedavg}
        local_training: {epochs: 1, batch_size: 10, optimizer: sgd, learning_rate: 0.1}
        secure_aggregation: {enabled: true, active_adversary: false, threshold_fraction: 0.9}
        evaluation: {every: 100}
        privacy: {mode: distributed, noise_multiplier: 2.0, clip: {norm: 1}}
        site_policy: \(sitePolicy)
        """
    }

    @Test func distributedNoiseRunsOverTheServicesAndEveryRoundIsCharged() async throws {
        let prepared = try PreparedExperiment(
            yaml: Self.yaml(
                rounds: 3,
                sitePolicy: "{require_active_adversary_protection: false, require_differential_privacy: true}"))
        let agents = try prepared.agents()
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: agents, logger: testLogger())
        #expect(outcome.completedRounds == 3, "\(outcome.records.map { $0.failureReason ?? "ok" })")
        #expect(outcome.records.allSatisfy { $0.privacy != nil && $0.stageSeconds["unmasking"] != nil })
        // Every site charged each round to its own ledger, at rate 1.
        for agent in agents {
            #expect(agent.privacyLedger.accountant(for: "private-inproc").steps == 3)
        }
    }

    @Test func everyPublishedVersionCarriesTheEpsilonSpentInTheRegistry() async throws {
        let prepared = try PreparedExperiment(
            yaml: Self.yaml(rounds: 2, sitePolicy: "{require_active_adversary_protection: false}"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dp-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (state, record, recorder) = try prepared.durableState(in: folder)
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: try prepared.agents(), persistence: recorder, logger: testLogger())
        #expect(outcome.completedRounds == 2)
        let versions = try state.models(matching: ModelQuery(experiment: record.id))
        let spent = versions.sorted { $0.version.patch < $1.version.patch }.compactMap { $0.metrics["epsilon"] }
        #expect(spent.count == 2 && spent[0] < spent[1], "\(versions.map(\.metrics))")
        #expect(spent == outcome.records.compactMap { $0.privacy?.epsilon })
        // `tessera models list --where "epsilon<=…"` finds only the first.
        let within = try state.models(
            matching: ModelQuery(
                experiment: record.id, conditions: [MetricCondition(parsing: "epsilon<=\(spent[0] * 1.0001)")]))
        #expect(within.map(\.version.patch) == [1])
    }

    @Test func aSiteRefusesTheRoundThatWouldExceedItsOwnBudget() async throws {
        // One round of z = 2 costs a site about 2.2 at δ = 1e-5 by its own ledger (no amplification), two about 3.2.
        let prepared = try PreparedExperiment(
            yaml: Self.yaml(rounds: 3, sitePolicy: "{require_active_adversary_protection: false, max_epsilon: 3}"))
        let agents = try prepared.agents()
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: agents, logger: testLogger())
        #expect(outcome.records.first?.status == .completed)
        #expect(outcome.records.dropFirst().allSatisfy { $0.status == .failed })
        for agent in agents {
            let account = agent.privacyLedger.accountant(for: "private-inproc")
            #expect(account.steps == 1)
            #expect(account.epsilon(delta: 1e-5) <= 3)
        }
    }
}
