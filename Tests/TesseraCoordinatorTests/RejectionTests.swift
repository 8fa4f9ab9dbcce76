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

/// A site that misbehaves on the wire is answered with a clear rejection, and the experiment
/// goes on: the bad envelope never reaches the round.
@Suite struct RejectionTests {
    typealias Envelope = Tessera_V1_ParticipantEnvelope

    /// Rewrites what one site sends, keeping later sequence numbers in order.
    final class Misbehaviour: Sendable {
        enum Kind: Sendable { case replay, earlierRound, wrongLengthAndMalformed }
        struct State {
            var offset: UInt64 = 0
            var saved: Envelope?
            var done = false
        }
        let kind: Kind
        let state = Mutex(State())
        init(_ kind: Kind) { self.kind = kind }

        func apply(_ original: Envelope) -> [Envelope] {
            state.withLock { state in
                var envelope = original
                envelope.header.sequence += state.offset
                guard !state.done else { return [envelope] }
                if kind == .replay {
                    // The last chunk of round 1's update, twice: the copy repeats a sequence number.
                    guard envelope.header.round == 1, case .plaintextUpdateChunk(let chunk)? = envelope.body,
                        chunk.offsetValues + UInt64(chunk.values.count / 4) == chunk.totalValues
                    else { return [envelope] }
                    state.done = true
                    return [envelope, envelope]
                }
                guard case .trainingReport(let report)? = envelope.body else { return [envelope] }
                switch kind {
                case .replay:
                    return [envelope]
                case .earlierRound:
                    if envelope.header.round == 1 {
                        state.saved = envelope
                        return [envelope]
                    }
                    // Round 2: round 1's report again, under a fresh sequence number.
                    var old = state.saved!
                    old.header.sequence = envelope.header.sequence
                    envelope.header.sequence += 1
                    state.offset += 1
                    state.done = true
                    return [old, envelope]
                case .wrongLengthAndMalformed:
                    // An update announced with the wrong length, then an envelope with no body,
                    // then the honest report.
                    var wrong = envelope
                    wrong.trainingReport.updateParameterCount = report.updateParameterCount + 7
                    var empty = Envelope()
                    empty.header = envelope.header
                    empty.header.sequence += 1
                    envelope.header.sequence += 2
                    state.offset += 2
                    state.done = true
                    return [wrong, empty, envelope]
                }
            }
        }
    }

    @Test func replayedStaleMalformedAndWrongLengthEnvelopesAreRejectedAndTheExperimentContinues() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "rejections", participants: 3, rounds: 2, secure: false, evaluateEvery: 2))
        let sites = experiment.data.sites.map(\.name)
        let behaviours: [SiteID: Misbehaviour] = [
            sites[0]: Misbehaviour(.replay), sites[1]: Misbehaviour(.earlierRound),
            sites[2]: Misbehaviour(.wrongLengthAndMalformed),
        ]
        let outcome = try await InProcessFederation.run(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            participants: (try experiment.agents()),
            taps: behaviours.mapValues { behaviour in SiteTap(tamper: { behaviour.apply($0) }) },
            logger: testLogger())

        // The site that sent malformed envelopes left round 1 at once (it would not send them
        // right), which left the round below its minimum of 3; the replayed and stale envelopes
        // cost their sites nothing, and round 2 has every site.
        #expect(outcome.records.map(\.status) == [.failed, .completed], "\(outcome.records)")
        #expect(outcome.records[0].failureReason?.contains("only 2 of 3") == true, "\(outcome.records)")
        #expect(outcome.records[1].contributors == 3, "\(outcome.records)")

        let bySite = Dictionary(grouping: outcome.rejections, by: \.site)
        let replay = try #require(bySite[sites[0]]?.first?.rejection)
        #expect(replay.code == .staleMessage)
        #expect(replay.reason.contains("sequence"), "\(replay.reason)")
        #expect(replay.rejectedSequence > 0)

        let stale = try #require(bySite[sites[1]]?.first?.rejection)
        #expect(stale.code == .staleMessage)
        #expect(stale.reason.contains("round 1"), "\(stale.reason)")

        let third = bySite[sites[2]]?.map(\.rejection).filter { $0.code == .malformedMessage } ?? []
        #expect(third.count == 2, "\(third)")
        #expect(third.allSatisfy { !$0.fatal }, "\(third)")
        #expect(third.contains { $0.reason.contains("values") || $0.reason.contains("parameter") }, "\(third)")
        #expect(third.contains { $0.reason.contains("body") }, "\(third)")
        // Whatever else the third site sent in round 1 was refused as coming from a site that
        // left, or (once round 2 had begun) as stale.
        let afterLeaving = bySite[sites[2]]?.map(\.rejection).filter { $0.code != .malformedMessage } ?? []
        let refusedAsLeftOrStale = afterLeaving.allSatisfy {
            $0.reason.contains("already left round 1") || $0.code == .staleMessage
        }
        #expect(refusedAsLeftOrStale, "\(afterLeaving)")
        #expect(bySite[sites[0]]?.count == 1 && bySite[sites[1]]?.count == 1)
    }

    @Test func aStreamWithoutAKnownIdentityIsRefused() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "identity", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            identity: InProcessIdentityResolver(tokens: ["right-token": experiment.data.sites[0].name]),
            configuration: CoordinatorService.Configuration().withTestFederation, clock: MonotonicClock(),
            logger: testLogger())
        let transport = InProcessTransport()
        let agent = (try experiment.agents())[0]
        let participant = ParticipantClient(
            agent: agent,
            configuration: .init(
                backoffBase: .milliseconds(10), backoffCap: .milliseconds(20), maximumAttempts: 2,
                metadata: InProcessIdentityResolver.metadata(token: "wrong-token")),
            clock: MonotonicClock(), logger: testLogger())
        _ = try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                await #expect(throws: TesseraRuntimeError.self) { try await participant.run(using: client) }
            }
        }
        #expect(await coordinator.isFinished == false)
    }

    @Test func backoffIsFullJitterUnderADoublingCappedCeiling() {
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<12 {
            let ceiling = min(30.0, 0.5 * Double(1 << attempt))
            for _ in 0..<50 {
                let delay = ParticipantClient.backoff(
                    attempt: attempt, base: .milliseconds(500), cap: .seconds(30), using: &generator)
                #expect(delay >= .zero && delay <= .seconds(ceiling), "attempt \(attempt): \(delay)")
            }
        }
        let late = (0..<200).map { _ in
            ParticipantClient.backoff(attempt: 20, base: .milliseconds(500), cap: .seconds(30), using: &generator)
        }
        #expect(late.max()! > .seconds(15), "the cap is reached")
    }
}

extension RejectionTests {
    /// Writes real protobuf for every envelope except heartbeats, which become bytes that are
    /// not a `ParticipantEnvelope` at all.
    struct CorruptingSerializer: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: Tessera_V1_ParticipantEnvelope) throws -> Bytes {
            if case .heartbeat? = message.body { return Bytes([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) }
            return Bytes(message.wireBytes())
        }
    }

    struct EnvelopeDeserializer: MessageDeserializer {
        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Tessera_V1_CoordinatorEnvelope {
            try bytes.withUnsafeBytes { try Tessera_V1_CoordinatorEnvelope(wireBytes: Data($0)) }
        }
    }

    /// Bytes that are not protobuf end that site's stream (gRPC cannot parse them into an
    /// envelope, so there is nothing to reject one by one); the coordinator counts the site gone
    /// and the experiment goes on with the others.
    @Test func undecodableBytesEndOnlyThatSessionAndTheExperimentGoesOn() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "garbage", participants: 3, rounds: 2, secure: true, evaluateEvery: 2))
        var tokens = ["rogue-token": "rogue-site"]
        for site in experiment.data.sites { tokens[site.name] = site.name }
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            identity: InProcessIdentityResolver(tokens: tokens),
            configuration: CoordinatorService.Configuration().withTestFederation, clock: MonotonicClock(),
            logger: testLogger())
        let honest = (try experiment.agents()).map {
            ParticipantClient(
                agent: $0, configuration: .init(metadata: InProcessIdentityResolver.metadata(token: $0.site)),
                clock: MonotonicClock(),
                logger: testLogger())
        }
        let transport = InProcessTransport()
        let (outcome, rogueStatus) = try await withGRPCServer(
            transport: transport.server, services: coordinator.services
        ) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                let sessions = Tessera_V1_ParticipantSession.Client(wrapping: client)
                let request = StreamingClientRequest<Tessera_V1_ParticipantEnvelope>(
                    metadata: InProcessIdentityResolver.metadata(token: "rogue-token")
                ) { writer in
                    var encoder = ParticipantEnvelopeEncoder()
                    // A dataset the experiment does not use: the rogue is never selected.
                    try await writer.write(try encoder.hello(ParticipantHello(datasets: ["elsewhere": 10])))
                    try await writer.write(encoder.heartbeat())
                    await suspendUntilCancelled()
                }
                let rogueStatus = try await sessions.session(
                    request: request, serializer: CorruptingSerializer(), deserializer: EnvelopeDeserializer()
                ) { response in
                    do {
                        for try await _ in response.messages {}
                        return RPCError.Code?.none
                    } catch let error as RPCError {
                        return error.code
                    }
                }
                let outcome = try await withThrowingTaskGroup(of: CoordinatorService.Outcome?.self) { group in
                    group.addTask { await coordinator.run() }
                    for participant in honest {
                        group.addTask {
                            try await participant.run(using: client)
                            return nil
                        }
                    }
                    var outcome: CoordinatorService.Outcome?
                    for try await result in group where result != nil { outcome = result }
                    return outcome!
                }
                return (outcome, rogueStatus)
            }
        }
        #expect(rogueStatus != nil, "the corrupt stream should end with an error status")
        #expect(await coordinator.joins["rogue-site"] == 1)
        #expect(!(await coordinator.connectedSites.contains("rogue-site")))
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(outcome.records)")
    }
}
