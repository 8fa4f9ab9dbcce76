import Foundation
import GRPCCore
import GRPCInProcessTransport
import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix
import Synchronization
import TesseraFederation
import TesseraPKI
import TesseraParticipant
import TesseraSimulation
import TesseraTesting
import TesseraTransport
import TesseraWire
import Testing

@testable import TesseraCoordinator

/// Sites and strangers that try to hold the coordinator's resources: each loses what it holds
/// at the configured limit, and the coordinator (and the round) goes on.
@Suite struct MaliciousSiteTransportTests {
    // MARK: Slow drip

    /// Holds back every masked-input chunk after the first and sends one in place of each
    /// heartbeat (under the heartbeat's sequence number): a chunk every heartbeat interval, so
    /// the upload is never silent for long, but moves 256 bytes per 10 s.
    final class Drip: Sendable {
        private let held = Mutex<[Tessera_V1_ParticipantEnvelope]>([])
        let dripping: AsyncStream<Void>
        private let started: AsyncStream<Void>.Continuation

        init() {
            (dripping, started) = AsyncStream.makeStream(of: Void.self)
        }

        func apply(_ envelope: Tessera_V1_ParticipantEnvelope) -> [Tessera_V1_ParticipantEnvelope] {
            if case .secagg(let payload)? = envelope.body, case .maskedInputChunk(let chunk)? = payload.body,
                chunk.offsetWords > 0
            {
                held.withLock { $0.append(envelope) }
                started.yield()
                return []
            }
            guard envelope.isHeartbeat else { return [envelope] }
            return held.withLock { held in
                guard !held.isEmpty else { return [envelope] }
                var chunk = held.removeFirst()
                chunk.header.sequence = envelope.header.sequence
                return [chunk]
            }
        }
    }

    /// A site that drips its masked input (one 256-byte chunk every 10 s, in place of its
    /// heartbeats) is never silent for 30 s, so the old "any envelope in 30 s" rule kept its
    /// slot for ever. Judged by its rate, it loses the slot when it has held it for a whole
    /// 30 s window, and the round completes through dropout recovery without it.
    @Test(.timeLimit(.minutes(2))) func aSlowDripUploadLosesItsSlotAndTheRoundGoesOn() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "drip", participants: 4, rounds: 2, secure: true, evaluateEvery: 2)
                .replacingOccurrences(of: "minimum: 4", with: "minimum: 3"))
        let dripper = experiment.data.sites[0].name
        let clock = ManualClock()
        let drip = Drip()
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            identity: InProcessIdentityResolver(
                tokens: Dictionary(uniqueKeysWithValues: experiment.data.sites.map { ($0.name, $0.name) })),
            // 256-byte chunks: the masked input is 10 chunks, 100 s of dripping.
            configuration: CoordinatorService.Configuration(
                heartbeatInterval: .seconds(10), maximumChunkBytes: 256, maximumConcurrentUploads: 1,
                limits: CoordinatorLimits(minimumTransferBytesPerSecond: 1024, transferWindow: .seconds(30))
            ).withTestFederation,
            clock: clock, logger: testLogger())
        let clients = (try experiment.agents()).map { agent in
            ParticipantClient.tapped(
                agent: agent,
                configuration: .init(
                    backoffBase: .milliseconds(50), backoffCap: .seconds(1),
                    metadata: InProcessIdentityResolver.metadata(token: agent.site)),
                tap: agent.site == dripper ? SiteTap(tamper: { drip.apply($0) }) : SiteTap(), clock: clock,
                logger: testLogger())
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
                    for await _ in drip.dripping { break }
                    // At 10 s and 20 s a chunk arrives in place of the heartbeat, and the
                    // dripper has not held its slot for a whole window yet.
                    for second in [10, 20] {
                        clock.advance(to: .seconds(second))
                        await coordinator.waitUntil { state in
                            state.lastHeard.count == 4
                                && state.lastHeard.values.allSatisfy { $0 == .seconds(second) }
                        }
                        // At least: another timer may wake at the same second (see UploadSlotTests).
                        await clock.waitForSleepers { $0.count { $0 == .seconds(second + 10) } >= 5 }
                        #expect(await coordinator.connectedSites.contains(dripper))
                        #expect(await coordinator.retainedState.sessions == 4)
                    }
                    // At 30 s the window is whole: two or three chunks in it, not 30 KiB.
                    clock.advance(to: .seconds(30))
                    await coordinator.waitUntil { !$0.connectedSites.contains(dripper) }
                    #expect(clock.now == .seconds(30))
                    var outcome: CoordinatorService.Outcome?
                    for try await result in group where result != nil {
                        outcome = result
                        // The dripper waits to reconnect on the manual clock, which no longer moves.
                        group.cancelAll()
                    }
                    return try #require(outcome)
                }
            }
        }
        #expect(await coordinator.joins[dripper] == 1)
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(outcome.records)")
        #expect(outcome.records.first?.cohortSize == 4)
    }

    // MARK: Stale-envelope flood

    struct EnvelopeDeserializer: MessageDeserializer {
        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Tessera_V1_CoordinatorEnvelope {
            try bytes.withUnsafeBytes { try Tessera_V1_CoordinatorEnvelope(wireBytes: Data($0)) }
        }
    }

    struct EnvelopeSerializer: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: Tessera_V1_ParticipantEnvelope) throws -> Bytes {
            Bytes(message.wireBytes())
        }
    }

    /// A site sends Hello, then the same heartbeat 10,000 times (every copy after the first is a
    /// replay), and reads nothing until it is done. Its session is closed at its 100th
    /// rejection with RESOURCE_EXHAUSTED; what the coordinator keeps of the flood is bounded
    /// (the retained records, no per-session state once the session is gone), and the
    /// experiment of the honest sites completes.
    @Test(.timeLimit(.minutes(2))) func aStaleEnvelopeFloodWithNoReadsClosesTheSessionAndLeavesBoundedState()
        async throws
    {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "flood", participants: 3, rounds: 2, secure: true, evaluateEvery: 2))
        var tokens = ["rogue-token": "rogue-site"]
        for site in experiment.data.sites { tokens[site.name] = site.name }
        let limits = CoordinatorLimits(
            maximumQueuedEnvelopes: 1000, maximumRejectionsPerSession: 100, retainedRejections: 40)
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(), identity: InProcessIdentityResolver(tokens: tokens),
            configuration: CoordinatorService.Configuration(limits: limits).withTestFederation,
            clock: MonotonicClock(), logger: testLogger())
        let honest = (try experiment.agents()).map {
            ParticipantClient(
                agent: $0, configuration: .init(metadata: InProcessIdentityResolver.metadata(token: $0.site)),
                clock: MonotonicClock(), logger: testLogger())
        }
        let transport = InProcessTransport()
        let (outcome, rogue) = try await withGRPCServer(transport: transport.server, services: coordinator.services) {
            _ in
            try await withGRPCClient(transport: transport.client) { client in
                let (flooded, floodDone) = AsyncStream.makeStream(of: Int.self)
                let request = StreamingClientRequest<Tessera_V1_ParticipantEnvelope>(
                    metadata: InProcessIdentityResolver.metadata(token: "rogue-token")
                ) { writer in
                    var encoder = ParticipantEnvelopeEncoder()
                    var sent = 0
                    do {
                        // A dataset the experiment does not use: the rogue is never selected.
                        try await writer.write(try encoder.hello(ParticipantHello(datasets: ["elsewhere": 10])))
                        let heartbeat = encoder.heartbeat()
                        for _ in 0..<10_000 {
                            try await writer.write(heartbeat)
                            sent += 1
                        }
                    } catch {
                        // The coordinator ended the RPC: writes fail from then on.
                    }
                    floodDone.yield(sent)
                    floodDone.finish()
                }
                let rogue = try await Tessera_V1_ParticipantSession.Client(wrapping: client).session(
                    request: request, serializer: EnvelopeSerializer(), deserializer: EnvelopeDeserializer()
                ) { response in
                    // Nothing is read until the flood is over.
                    var sent = 0
                    for await count in flooded { sent = count }
                    var received = 0
                    do {
                        for try await _ in response.messages { received += 1 }
                        return (sent: sent, received: received, code: RPCError.Code?.none)
                    } catch let error as RPCError {
                        return (sent: sent, received: received, code: error.code)
                    }
                }
                let outcome = try await coordinator.run(
                    alongside: honest.map { participant in { try await participant.run(using: client) } })
                return (outcome, rogue)
            }
        }
        #expect(rogue.code == .resourceExhausted, "\(rogue)")
        // The Welcome and at most the 100 rejections came back, whatever was sent.
        #expect(rogue.received <= 101, "\(rogue)")
        #expect(outcome.rejectionTotals["rogue-site"] == 100)
        #expect(outcome.rejections.count == 40)
        #expect(outcome.rejections.allSatisfy { $0.site == "rogue-site" && $0.rejection.code == .staleMessage })
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(outcome.records)")
        let retained = await coordinator.retainedState
        #expect(retained.sessions == 0 && retained.rejectionBudgets == 0 && retained.closeWatchers == 0, "\(retained)")
        #expect(retained.rejectionRecords == 40)
        #expect(retained.rejectionLogBursts <= 1)
    }

    // MARK: Outbound queue and sessions per site, on the coordinator alone

    func coordinator(_ limits: CoordinatorLimits, site: SiteID = "site-x") throws -> CoordinatorService {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "queue", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        return CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(), identity: InProcessIdentityResolver(tokens: [:]),
            configuration: CoordinatorService.Configuration(limits: limits).withTestFederation, clock: ManualClock(),
            logger: testLogger())
    }

    /// A site that reads nothing fills its outbound queue (here with the answers to its own
    /// stale envelopes): at the first envelope that does not fit, its session is closed
    /// (RESOURCE_EXHAUSTED) rather than the envelope silently dropped, and what was queued is
    /// all that is held for it.
    @Test func aSiteThatReadsNothingLosesItsSessionWhenItsQueueIsFull() async throws {
        let coordinator = try coordinator(CoordinatorLimits(maximumQueuedEnvelopes: 8))
        let (id, outbound) = try await coordinator.connect(site: "site-x")
        var encoder = ParticipantEnvelopeEncoder()
        await coordinator.receive(try encoder.hello(ParticipantHello(datasets: ["elsewhere": 1])), on: id)
        let heartbeat = encoder.heartbeat()
        for _ in 0..<50 { await coordinator.receive(heartbeat, on: id) }
        let first = await coordinator.connectedSites
        #expect(first.isEmpty)
        // The first heartbeat was fine; the Welcome and seven rejections filled the queue, and
        // the eighth rejection closed the session; the rest were not looked at.
        let totals = await coordinator.outcome.rejectionTotals
        #expect(totals["site-x"] == 8)
        var queued = 0
        for await _ in outbound { queued += 1 }
        #expect(queued == 8)
        guard case .overloaded(let reason)? = await coordinator.disconnect(id) else {
            Issue.record("the session should be closed for overload")
            return
        }
        #expect(reason.contains("did not read"), "\(reason)")
        let retained = await coordinator.retainedState
        #expect(retained.sessions == 0 && retained.rejectionBudgets == 0)
    }

    /// At most `maximumSessionsPerSite` streams of one site are open at once; one more is refused
    /// with RESOURCE_EXHAUSTED naming the site, and a closed one makes room.
    @Test func aSiteCannotOpenMoreSessionsThanTheCap() async throws {
        let coordinator = try coordinator(CoordinatorLimits(maximumSessionsPerSite: 2))
        let first = try await coordinator.connect(site: "site-x")
        _ = try await coordinator.connect(site: "site-x")
        _ = try await coordinator.connect(site: "site-y")
        let error = await #expect(throws: RPCError.self) { try await coordinator.connect(site: "site-x") }
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message.contains("site-x") == true)
        _ = await coordinator.disconnect(first.id)
        _ = try await coordinator.connect(site: "site-x")
    }

    // MARK: Strangers on the network (live, on 127.0.0.1)

    /// Runs `body` against a coordinator listening with mTLS on 127.0.0.1 under `limits`.
    func withLiveCoordinator<Result: Sendable>(
        _ limits: CoordinatorLimits, pki: MutualTLSTests.PKI, experiment: PreparedExperiment,
        _ body: @Sendable (CoordinatorService, Int) async throws -> Result
    ) async throws -> Result {
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            identity: try PeerCertificateIdentityResolver(caDirectory: pki.caDirectory),
            configuration: CoordinatorService.Configuration(limits: limits).withTestFederation,
            clock: MonotonicClock(), logger: testLogger())
        return try await coordinator.withServer(
            listeningOn: Endpoint(host: "127.0.0.1", port: 0), identityDirectory: pki.coordinator,
            caCertificate: pki.caPEM
        ) { port in try await body(coordinator, port) }
    }

    /// A TCP connection to the coordinator that sends nothing.
    func silentConnection(to port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
    }

    /// A stranger that opens a TCP connection and never starts TLS is closed at the handshake
    /// timeout, while three sites complete an experiment over the same listener: their
    /// handshakes complete, so no other connection is closed for it.
    @Test(.timeLimit(.minutes(2))) func aSilentConnectionIsClosedAtTheHandshakeTimeout() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "silent", participants: 3, rounds: 2, secure: true, evaluateEvery: 2))
        let pki = try MutualTLSTests.PKI(sites: experiment.data.sites.map(\.name))
        defer { try? FileManager.default.removeItem(at: pki.root) }
        let clients = (try experiment.agents()).map {
            ParticipantClient(
                agent: $0, configuration: .init(backoffBase: .milliseconds(50), backoffCap: .milliseconds(200)),
                clock: MonotonicClock(), logger: testLogger())
        }
        let (outcome, counts) = try await withLiveCoordinator(
            CoordinatorLimits(handshakeTimeout: .seconds(2)), pki: pki, experiment: experiment
        ) { coordinator, port in
            let silent = try await silentConnection(to: port)
            let endpoint = Endpoint(host: "127.0.0.1", port: port)
            let outcome = try await coordinator.run(
                alongside: clients.map { client in
                    let identity = pki.site(client.site)
                    return { try await client.run(connectingTo: endpoint, security: .identityDirectory(identity)) }
                })
            // Ends when the coordinator closes it.
            try await silent.closeFuture.get()
            await coordinator.connections.waitUntil { $0.handshakeTimeouts >= 1 }
            return (outcome, coordinator.connections.counts)
        }
        #expect(outcome.completedRounds == 2)
        #expect(counts.handshakeTimeouts == 1, "\(counts)")
        #expect(counts.refused == 0, "\(counts)")
    }

    /// With at most two unfinished handshakes per address, the third silent connection from
    /// 127.0.0.1 is closed as soon as it is accepted, the first two are held (until their
    /// handshake timeout), and every count returns to zero when they close.
    @Test(.timeLimit(.minutes(1))) func thePerAddressCapRefusesTheNextConnection() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "cap", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let pki = try MutualTLSTests.PKI(sites: [])
        defer { try? FileManager.default.removeItem(at: pki.root) }
        let limits = CoordinatorLimits(handshakeTimeout: .seconds(60), maximumPendingHandshakesPerAddress: 2)
        let counts = try await withLiveCoordinator(limits, pki: pki, experiment: experiment) { coordinator, port in
            let gate = coordinator.connections
            let first = try await silentConnection(to: port)
            await gate.waitUntil { $0.open == 1 }
            let second = try await silentConnection(to: port)
            await gate.waitUntil { $0.open == 2 }
            let third = try await silentConnection(to: port)
            try await third.closeFuture.get()
            await gate.waitUntil { $0.refused == 1 }
            let held = gate.counts
            #expect(held.open == 2 && held.pendingHandshakes == 2 && held.addresses == 1, "\(held)")
            #expect(first.isActive && second.isActive)
            try await first.close()
            try await second.close()
            await gate.waitUntil { $0.open == 0 }
            return gate.counts
        }
        #expect(counts == .init(open: 0, pendingHandshakes: 0, refused: 1, handshakeTimeouts: 0, addresses: 0))
    }

    /// A site with a valid certificate sends a 2 MiB Hello (under gRPC's own 4 MiB default, over
    /// the coordinator's 1 MiB): the transport refuses the message before it is decoded (it
    /// resets the stream, so the client sees the RPC fail) and no session is registered; a
    /// normal Hello on the same connection then registers.
    @Test(.timeLimit(.minutes(1))) func anOversizeMessageIsRefused() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "oversize", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let site = experiment.data.sites[0].name
        let pki = try MutualTLSTests.PKI(sites: [site])
        defer { try? FileManager.default.removeItem(at: pki.root) }
        let limits = CoordinatorLimits(maximumMessageBytes: 1 << 20)
        let (code, joinsAfterRefusal) = try await withLiveCoordinator(limits, pki: pki, experiment: experiment) {
            coordinator, port in
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: port),
                transportSecurity: FederationTLS.client(identityDirectory: pki.site(site)))
            return try await withGRPCClient(transport: transport) { client in
                let sessions = Tessera_V1_ParticipantSession.Client(wrapping: client)
                func session(signingCertificateBytes: Int) async -> RPCError.Code? {
                    do {
                        var encoder = ParticipantEnvelopeEncoder()
                        var hello = try encoder.hello(ParticipantHello(datasets: ["elsewhere": 1]))
                        hello.hello.signingCertificate = Data(repeating: 0xAB, count: signingCertificateBytes)
                        let envelope = hello
                        let request = StreamingClientRequest<Tessera_V1_ParticipantEnvelope> { writer in
                            try await writer.write(envelope)
                            await suspendUntilCancelled()
                        }
                        try await sessions.session(request: request) { response in
                            for try await _ in response.messages {}
                        }
                        return nil
                    } catch let error as RPCError {
                        return error.code
                    } catch {
                        return .unknown
                    }
                }
                let code = await session(signingCertificateBytes: 2 << 20)
                let joins = await coordinator.joins
                // The same site, an ordinary Hello: it registers (the session is then dropped).
                let normal = Task { await session(signingCertificateBytes: 0) }
                await coordinator.waitUntil { $0.joins[site] == 1 }
                normal.cancel()
                return (code, joins)
            }
        }
        #expect(code != nil, "the oversize message must end its RPC")
        #expect(joinsAfterRefusal.isEmpty)
    }
}
