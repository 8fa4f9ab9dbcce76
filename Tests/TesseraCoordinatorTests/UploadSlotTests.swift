import Foundation
import GRPCCore
import GRPCInProcessTransport
import Synchronization
import TesseraCoordinator
import TesseraFederation
import TesseraParticipant
import TesseraSimulation
import TesseraTesting
import TesseraTransport
import TesseraWire
import Testing

/// The coordinator assembles at most `maximumConcurrentUploads` masked inputs at once; the others
/// wait, unread, and a stalled upload does not keep them waiting for long.
@Suite struct UploadSlotTests {
    /// As many uploads as model-sized vectors fit in the buffer, at least one, unless overridden.
    @Test func theSlotCountFollowsTheModelSize() throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "sizes", participants: 3, rounds: 1, secure: true, evaluateEvery: 1))
        func slots(parameters: Int, _ configuration: CoordinatorService.Configuration) throws -> Int {
            CoordinatorService(
                plan: experiment.plan, initialModel: [Float](repeating: 0, count: parameters),
                strategy: try experiment.config.makeStrategy(), identity: InProcessIdentityResolver(tokens: [:]),
                configuration: configuration, clock: ManualClock(), logger: testLogger()
            ).uploadSlots
        }
        #expect(try slots(parameters: 1_000_000, .init()) == 4)  // 16 MiB / 4 MB
        // A vector larger than the buffer still uploads.
        #expect(try slots(parameters: 1_000_000, .init(uploadBufferBytes: 1 << 20)) == 1)
        #expect(try slots(parameters: 1_000_000, .init(uploadBufferBytes: 8 << 20)) == 2)
        #expect(try slots(parameters: 1_000_000, .init(maximumConcurrentUploads: 3)) == 3)
    }

    /// Runs two rounds of `participants` sites with one upload slot, then with one per site;
    /// checks that every round completed with every site and that one slot meant one upload at a
    /// time; returns both outcomes.
    func serialAndParallel(
        secure: Bool, participants: Int
    ) async throws -> (CoordinatorService.Outcome, CoordinatorService.Outcome) {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(
                name: secure ? "slots" : "plain-slots", participants: participants, rounds: 2, secure: secure,
                evaluateEvery: 2))
        func run(slots: Int) async throws -> CoordinatorService.Outcome {
            try await InProcessFederation.run(
                plan: experiment.plan, initialModel: experiment.initialModel,
                strategy: try experiment.config.makeStrategy(),
                participants: (try experiment.agents()), configuration: .init(maximumConcurrentUploads: slots),
                logger: testLogger())
        }
        let serial = try await run(slots: 1)
        #expect(serial.completedRounds == 2)
        #expect(
            serial.records.allSatisfy { $0.status == .completed && $0.contributors == participants },
            "\(serial.records)")
        #expect(serial.peakConcurrentUploads == 1)
        let parallel = try await run(slots: participants)
        #expect(parallel.peakConcurrentUploads >= 1 && parallel.peakConcurrentUploads <= participants)
        return (serial, parallel)
    }

    @Test func uploadsBeyondTheSlotLimitWaitAndTheResultIsUnchanged() async throws {
        let (serial, parallel) = try await serialAndParallel(secure: true, participants: 6)
        // Masked inputs are summed modulo 2^32, so the order they were admitted in cannot
        // change the aggregate: the same seeds give the same model bit for bit.
        #expect(parallel.finalModel == serial.finalModel)
    }

    /// Plaintext updates wait for a slot too (FedAvg adds each to a running sum and drops it,
    /// so what the coordinator holds is the updates being assembled): with one slot they come
    /// one at a time, and the model is the one five slots give, up to the order of summation.
    @Test func plaintextUpdatesWaitForASlotToo() async throws {
        let (serial, parallel) = try await serialAndParallel(secure: false, participants: 5)
        let difference = zip(serial.finalModel, parallel.finalModel).map { abs($0 - $1) }.max() ?? 1
        #expect(difference < 1e-5)
    }

    /// One site sends the first chunk of its masked input and then nothing more (heartbeats
    /// still flow). With one slot it would block every other upload; the coordinator closes its
    /// session at the first liveness check once it has held the slot for a whole 30 s window
    /// (at 30 s on the manual clock) with less than the rate moved, the others
    /// upload, and the round completes through dropout recovery without it. (All four sites are
    /// connected before the experiment starts, so the staller is always in round 1; the cohort
    /// minimum of 3 lets the round go on without it.)
    @Test(.timeLimit(.minutes(2))) func aStalledUploadIsAbandonedAndTheRoundCompletesWithoutIt() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "stall", participants: 4, rounds: 2, secure: true, evaluateEvery: 2)
                .replacingOccurrences(of: "minimum: 4", with: "minimum: 3"))
        let staller = experiment.data.sites[0].name
        let clock = ManualClock()
        let (stalls, stalled) = AsyncStream.makeStream(of: Void.self)
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            identity: InProcessIdentityResolver(
                tokens: Dictionary(uniqueKeysWithValues: experiment.data.sites.map { ($0.name, $0.name) })),
            // 256-byte chunks: the 610-parameter model's masked input is 10 chunks.
            configuration: CoordinatorService.Configuration(
                heartbeatInterval: .seconds(10), maximumChunkBytes: 256, maximumConcurrentUploads: 1,
                limits: CoordinatorLimits(transferWindow: .seconds(30))
            ).withTestFederation,
            clock: clock, logger: testLogger())
        let clients = (try experiment.agents()).map { agent in
            let configuration = ParticipantClient.Configuration(
                backoffBase: .milliseconds(50), backoffCap: .seconds(1),
                metadata: InProcessIdentityResolver.metadata(token: agent.site))
            var tap = SiteTap()
            if agent.site == staller {
                tap.tamper = { envelope in
                    guard case .secagg(let payload)? = envelope.body, case .maskedInputChunk(let chunk)? = payload.body,
                        chunk.offsetWords > 0
                    else { return [envelope] }
                    stalled.yield()
                    return []
                }
            }
            return ParticipantClient.tapped(
                agent: agent, configuration: configuration, tap: tap, clock: clock, logger: testLogger())
        }
        let transport = InProcessTransport()
        let outcome = try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await withThrowingTaskGroup(of: CoordinatorService.Outcome?.self) { group in
                    for participant in clients {
                        group.addTask {
                            try await participant.run(using: client)
                            return nil
                        }
                    }
                    await coordinator.waitUntil { $0.connectedSites.count == 4 }
                    group.addTask { await coordinator.run() }
                    for await _ in stalls { break }
                    // Liveness checks at 10 and 20 s: the upload has moved nothing, but it has not
                    // held its slot for a whole window yet. Every site's heartbeats (the staller's
                    // too) arrive, and the coordinator's check and the four heartbeat loops wait
                    // for 30 s, when the window is whole and the staller is judged.
                    clock.advance(to: .seconds(20))
                    await coordinator.waitUntil { state in
                        state.lastHeard.count == 4 && state.lastHeard.values.allSatisfy { $0 == .seconds(20) }
                    }
                    // At least: another timer (a site's watch on the coordinator's silence) may also
                    // wake at 30 s, depending on when its last heartbeat arrived; waiting for exactly
                    // five then never ended.
                    await clock.waitForSleepers { $0.count { $0 == .seconds(30) } >= 5 }
                    #expect(await coordinator.connectedSites.contains(staller))
                    clock.advance(to: .seconds(30))
                    var outcome: CoordinatorService.Outcome?
                    for try await result in group where result != nil {
                        outcome = result
                        // The staller waits to reconnect on the manual clock, which no longer moves.
                        group.cancelAll()
                    }
                    return try #require(outcome)
                }
            }
        }
        #expect(await coordinator.joins[staller] == 1)
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(outcome.records)")
        #expect(outcome.records.first?.cohortSize == 4)
    }

    /// Round 1 fails at its masked-input deadline while one site holds the only slot with a
    /// stalled upload and the others' requests are still held back. The held-back requests must
    /// die with the round (a site asked for a masked input of a failed round would compute and
    /// send it for nothing), and the staller's half-received input must not make its next
    /// message look interleaved: round 2 completes with all four sites and nothing is rejected.
    @Test(.timeLimit(.minutes(2))) func aRoundThatFailsWithHeldBackRequestsLeavesNothingBehind() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "held-back", participants: 4, rounds: 2, secure: true, evaluateEvery: 2)
                + "\ndeadlines: {masked_input_collection: 5}")
        // The first site in the cohort's order gets the only slot.
        let staller = experiment.data.sites.map(\.name).sorted()[0]
        let clock = ManualClock()
        let (stalls, stalled) = AsyncStream.makeStream(of: Void.self)
        let tap = SiteTap(tamper: { envelope in
            guard envelope.header.round == 1, case .secagg(let payload)? = envelope.body,
                case .maskedInputChunk(let chunk)? = payload.body, chunk.offsetWords > 0
            else { return [envelope] }
            stalled.yield()
            return []
        })
        let outcome = try await withThrowingTaskGroup(of: CoordinatorService.Outcome?.self) { group in
            group.addTask {
                try await InProcessFederation.run(
                    plan: experiment.plan, initialModel: experiment.initialModel,
                    strategy: try experiment.config.makeStrategy(),
                    participants: (try experiment.agents()),
                    configuration: .init(
                        maximumChunkBytes: 256, maximumConcurrentUploads: 1,
                        limits: CoordinatorLimits(transferWindow: .seconds(20))),
                    taps: [staller: tap], clock: clock, logger: testLogger())
            }
            // The masked-input stage began at time 0: its deadline is at 5 s.
            for await _ in stalls { break }
            clock.advance(to: .seconds(5))
            let outcome = try await group.next() ?? nil
            return try #require(outcome)
        }
        let first = try #require(outcome.records.first)
        #expect(first.status == .failed, "\(outcome.records)")
        #expect(
            outcome.records.last?.status == .completed && outcome.records.last?.contributors == 4, "\(outcome.records)")
        #expect(outcome.rejections.isEmpty, "\(outcome.rejections)")
    }
}
