import Foundation
import Synchronization
import Testing
import TesseraFederation
import TesseraRuntime
import TesseraSimulation
import TesseraWire

/// The coordinator assembles at most `maximumConcurrentUploads` uploads at once; the others
/// wait, unread, and a stalled upload does not keep them waiting for long.
@Suite struct UploadSlotTests {
    @Test func uploadsBeyondTheSlotLimitWaitAndTheResultIsUnchanged() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "slots", participants: 6, rounds: 2, secure: true, evaluateEvery: 2))
        func run(slots: Int) async throws -> CoordinatorService.Outcome {
            try await InProcessFederation.run(
                plan: experiment.plan, initialModel: experiment.initialModel, strategy: try experiment.config.makeStrategy(),
                participants: experiment.agents(), configuration: .init(maximumConcurrentUploads: slots), logger: testLogger())
        }
        let serial = try await run(slots: 1)
        #expect(serial.completedRounds == 2)
        #expect(serial.records.allSatisfy { $0.status == .completed && $0.contributors == 6 }, "\(serial.records)")
        #expect(serial.peakConcurrentUploads == 1)

        // Masked inputs are summed modulo 2^32, so the order they were admitted in cannot
        // change the aggregate: the same seeds give the same model bit for bit.
        let parallel = try await run(slots: 6)
        #expect(parallel.peakConcurrentUploads >= 1 && parallel.peakConcurrentUploads <= 6)
        #expect(parallel.finalModel == serial.finalModel)
    }

    /// One site sends the first chunk of its masked input and then nothing more (heartbeats
    /// still flow). With one slot it would block every other upload; the coordinator closes
    /// its session after the stall timeout, the others upload, and the round completes through
    /// dropout recovery without it.
    @Test func aStalledUploadIsAbandonedAndTheRoundCompletesWithoutIt() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "stall", participants: 4, rounds: 2, secure: true, evaluateEvery: 2))
        let staller = experiment.data.sites[0].name
        let stalled = Mutex(0)
        let outcome = try await InProcessFederation.run(
            plan: experiment.plan, initialModel: experiment.initialModel, strategy: try experiment.config.makeStrategy(),
            participants: experiment.agents(),
            // 256-byte chunks: the 610-parameter model's masked input is 10 chunks.
            configuration: .init(
                heartbeatInterval: .milliseconds(100), maximumChunkBytes: 256, maximumConcurrentUploads: 1,
                uploadStallTimeout: .milliseconds(300)),
            configure: { site, configuration in
                guard site == staller else { return }
                configuration.tamper = { envelope in
                    guard case .secagg(let payload)? = envelope.body, case .maskedInputChunk(let chunk)? = payload.body,
                        chunk.offsetWords > 0
                    else { return [envelope] }
                    stalled.withLock { $0 += 1 }
                    return []
                }
            },
            logger: testLogger())
        #expect(stalled.withLock { $0 } > 0, "the participants must follow the coordinator's chunk limit")
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(outcome.records)")
    }
}
