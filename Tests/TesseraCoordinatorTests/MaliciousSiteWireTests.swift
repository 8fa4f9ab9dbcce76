import TesseraCoordinator
import TesseraFederation
import TesseraSimulation
import TesseraTesting
import TesseraWire
import Testing

/// The attacks that once crashed the coordinator, sent over the real session path by a site
/// with a valid identity: the coordinator answers with a rejection naming the field and keeps
/// running, and every round completes.
@Suite struct MaliciousSiteWireTests {
    typealias Envelope = Tessera_V1_ParticipantEnvelope

    @Test("a sample_count of 2^63 − 1 in a training report or an evaluation result is refused, not a crash")
    func intMaxSampleCounts() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "int-max", participants: 3, rounds: 2, secure: false, evaluateEvery: 1))
        let sites = experiment.data.sites.map(\.name)
        let liar = SiteTap(tamper: { original in
            var envelope = original
            switch envelope.body {
            case .trainingReport? where envelope.header.round == 1:
                envelope.trainingReport.sampleCount = UInt64(Int.max)
            case .evaluationResult?: envelope.evaluationResult.sampleCount = UInt64(Int.max)
            default: break
            }
            return [envelope]
        })
        let outcome = try await InProcessFederation.run(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(), participants: (try experiment.agents()),
            taps: [sites[1]: liar], logger: testLogger())

        // Round 1 needs all three sites (the minimum): the liar's report is refused and the
        // round fails, naming why. Round 2 completes, and the liar's evaluation is refused
        // without holding the round.
        #expect(outcome.records.map(\.status) == [.failed, .completed], "\(outcome.records)")
        #expect(outcome.records[0].failureReason?.contains("only 2 of 3") == true, "\(outcome.records)")
        #expect(outcome.records[1].contributors == 3)
        #expect(outcome.records[1].evalLoss?.isFinite == true)
        let refusals = outcome.rejections.filter { $0.site == sites[1] }.map(\.rejection)
        #expect(refusals.contains { $0.reason.contains("TrainingReport.sample_count") }, "\(refusals)")
        #expect(refusals.contains { $0.reason.contains("EvaluationResult.sample_count") }, "\(refusals)")
        #expect(outcome.rejections.allSatisfy { $0.site == sites[1] })
    }
}
