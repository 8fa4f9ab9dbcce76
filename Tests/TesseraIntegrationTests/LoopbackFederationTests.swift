import Foundation
import TesseraCoordinator
import TesseraFederation
import TesseraTesting
import Testing

/// `tessera simulate --transport loopback`: real HTTP/2 + mTLS on 127.0.0.1 with a throwaway PKI.
@Suite struct LoopbackFederationTests {
    @Test func aSecureExperimentCompletesOverLoopbackMutualTLSAndMatchesInProcess() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "loopback", participants: 4, rounds: 3, secure: true, evaluateEvery: 3))
        let loopback = try await LoopbackFederation.run(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            participants: (try experiment.agents()), logger: testLogger())
        #expect(loopback.completedRounds == 3)
        #expect(loopback.records.allSatisfy { $0.status == .completed && $0.contributors == 4 }, "\(loopback.records)")
        #expect(loopback.rejections.isEmpty)
        // The same experiment over the in-process transport reaches the same model: the
        // transport changes nothing but how bytes travel (secure aggregation's sum is exact and
        // the stochastic rounding is seeded per participant and round).
        let inProcess = try await InProcessFederation.run(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            participants: (try experiment.agents()), logger: testLogger())
        #expect(inProcess.finalModel == loopback.finalModel)
    }
}
