import Foundation
import TesseraCoordinator
import TesseraFederation
import TesseraSimulation
import TesseraTesting
import Testing

@Suite struct InProcessFederationTests {
    /// Ten sites over the gRPC in-process transport under secure aggregation reach the accuracy
    /// of the same experiment run in the clear (in memory): only quantization differs.
    @Test func tenParticipantsWithSecureAggregationMatchThePlaintextRun() async throws {
        let secure = try PreparedExperiment(
            yaml: syntheticYAML(name: "inproc-secure", participants: 10, rounds: 8, secure: true, evaluateEvery: 4))
        let outcome = try await InProcessFederation.run(
            plan: secure.plan, initialModel: secure.initialModel, strategy: try secure.config.makeStrategy(),
            participants: try secure.agents(), logger: testLogger())
        #expect(outcome.completedRounds == 8)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 10 })
        #expect(outcome.records.allSatisfy { $0.stageSeconds["unmasking"] != nil }, "secure aggregation did not run")
        #expect(outcome.rejections.isEmpty, "\(outcome.rejections)")
        #expect(outcome.publishedVersions.count == 8)

        let plain = try PreparedExperiment(
            yaml: syntheticYAML(name: "inproc-secure", participants: 10, rounds: 8, secure: false, evaluateEvery: 4))
        let reference = InMemoryFederation(
            plan: plain.plan, initialModel: plain.initialModel, strategy: try plain.config.makeStrategy(),
            participants: try plain.agents()
        ).run()

        let accuracy = try #require(outcome.records.last?.evalAccuracy)
        let referenceAccuracy = try #require(reference.records.last?.evalAccuracy)
        let first = try #require(outcome.records.compactMap(\.evalAccuracy).first)
        #expect(accuracy > 0.6, "accuracy \(accuracy)")
        #expect(abs(accuracy - referenceAccuracy) < 0.03, "secure \(accuracy) vs plaintext \(referenceAccuracy)")
        // The model itself is within quantization error of the plaintext one.
        let gap = zip(outcome.finalModel, reference.finalModel).map { abs($0 - $1) }.max() ?? 0
        #expect(gap < 0.05, "largest parameter gap \(gap)")
        let losses = outcome.records.compactMap(\.trainLoss)
        #expect(losses.last! < losses.first!, "train loss \(losses); first accuracy \(first)")
    }
}
