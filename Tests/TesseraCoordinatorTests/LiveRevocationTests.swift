import Foundation
import GRPCCore
import GRPCInProcessTransport
import Synchronization
import TesseraFederation
import TesseraSimulation
import TesseraTesting
import TesseraTransport
import TesseraWire
import Testing

@testable import TesseraCoordinator

/// Live revocation on a manual clock: the coordinator re-reads its revocation list every
/// interval and ends the open sessions and model fetches of a revoked certificate; a fetch is
/// served only to a peer the identity check accepts.
@Suite struct LiveRevocationTests {
    /// Identifies in-process streams by token, as ``InProcessIdentityResolver`` does, and gives
    /// each a certificate serial, as the mTLS resolver does.
    struct SerialIdentityResolver: IdentityResolver {
        let peers: [String: PeerIdentity]

        func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID {
            try await peer(metadata: metadata, context: context).site
        }

        func peer(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> PeerIdentity {
            let tokens = Array(metadata[stringValues: InProcessIdentityResolver.metadataKey])
            guard tokens.count == 1, let peer = peers[tokens[0]] else {
                throw TesseraRuntimeError(.unauthenticated, "no known token")
            }
            return peer
        }
    }

    /// Two connected sites, "a" (serial a1) and "b" (serial b1), a revocation list the test
    /// edits, read every 10 s; chunks of one value, so a fetch of the model takes many windows.
    struct Harness {
        let experiment: PreparedExperiment
        let coordinator: CoordinatorService
        let clock = ManualClock()
        let revoked = Locked<Set<String>>([])
        let siteA: SiteID
        let siteB: SiteID

        init() throws {
            experiment = try PreparedExperiment(
                yaml: syntheticYAML(name: "revocation", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
            siteA = experiment.data.sites[0].name
            siteB = experiment.data.sites[1].name
            let revoked = revoked
            coordinator = CoordinatorService(
                plan: experiment.plan, initialModel: experiment.initialModel,
                strategy: try experiment.config.makeStrategy(),
                identity: SerialIdentityResolver(peers: [
                    "token-a": PeerIdentity(site: siteA, certificateSerial: "a1"),
                    "token-b": PeerIdentity(site: siteB, certificateSerial: "b1"),
                ]),
                configuration: CoordinatorService.Configuration(
                    heartbeatInterval: .seconds(1_000), maximumChunkBytes: 4, modelWindowBytes: 4,
                    revokedSerials: { revoked.value.withLock { $0 } }, revocationCheckInterval: .seconds(10)
                ).withTestFederation,
                clock: clock, logger: testLogger())
        }

        var digest: ModelDigest { ModelDigest(parameters: experiment.initialModel) }
    }

    /// A session that says Hello (offering no dataset of the experiment, so no round starts) and
    /// then only listens; returns the error it ended with.
    static func session(_ client: GRPCClient<some ClientTransport>, token: String) async -> RPCError? {
        let sessions = Tessera_V1_ParticipantSession.Client(wrapping: client)
        do {
            try await sessions.session(
                metadata: InProcessIdentityResolver.metadata(token: token),
                requestProducer: { writer in
                    var encoder = ParticipantEnvelopeEncoder()
                    try await writer.write(try encoder.hello(ParticipantHello(datasets: ["other": 10])))
                    await suspendUntilCancelled()
                },
                onResponse: { response in
                    for try await _ in response.messages {}
                })
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            return RPCError(code: .unknown, message: "\(error)")
        }
    }

    /// Fetches `digest` with a window of one chunk, crediting every chunk unless `stallAfter`
    /// chunks have arrived (then it says nothing more); `firstChunk` is told of the first chunk.
    static func fetch(
        _ client: GRPCClient<some ClientTransport>, token: String, digest: ModelDigest, stallAfter: Int = .max,
        firstChunk: AsyncStream<Void>.Continuation? = nil
    ) async -> Result<Int, RPCError> {
        let store = Tessera_V1_ModelStore.Client(wrapping: client)
        let (credits, creditSink) = AsyncStream.makeStream(of: Int.self)
        do {
            let chunks = try await store.fetchModel(
                metadata: InProcessIdentityResolver.metadata(token: token),
                requestProducer: { writer in
                    try await writer.write(.request(digest: digest, windowBytes: 4))
                    for await bytes in credits { try await writer.write(.credit(bytes)) }
                    await suspendUntilCancelled()
                },
                onResponse: { response in
                    defer { creditSink.finish() }
                    var count = 0
                    for try await chunk in response.messages {
                        count += 1
                        if count == 1 { firstChunk?.yield() }
                        if count < stallAfter { creditSink.yield(chunk.data.count) }
                    }
                    return count
                })
            return .success(chunks)
        } catch let error as RPCError {
            return .failure(error)
        } catch {
            return .failure(RPCError(code: .unknown, message: "\(error)"))
        }
    }

    @Test(.timeLimit(.minutes(1))) func aRevokedSitesSessionEndsAtTheNextCheckAndItCannotFetch() async throws {
        let harness = try Harness()
        let coordinator = harness.coordinator
        let clock = harness.clock
        let (siteA, siteB) = (harness.siteA, harness.siteB)
        let transport = InProcessTransport()
        try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { _ = await coordinator.run() }
                    let (ended, endedSink) = AsyncStream.makeStream(of: (String, RPCError?).self)
                    for token in ["token-a", "token-b"] {
                        group.addTask { endedSink.yield((token, await Self.session(client, token: token))) }
                    }
                    await coordinator.waitUntil { $0.connectedSites == [siteA, siteB].sorted() }
                    // The first read (at 0 s) is done once the next one is scheduled.
                    await clock.waitForSleepers { $0.contains(.seconds(10)) }
                    harness.revoked.value.withLock { $0 = ["a1"] }
                    clock.advance(to: .seconds(10) - .milliseconds(1))
                    #expect(await coordinator.connectedSites == [siteA, siteB].sorted())

                    clock.advance(to: .seconds(10))
                    await coordinator.waitUntil { $0.connectedSites == [siteB] }
                    var endings = ended.makeAsyncIterator()
                    let ending = await endings.next()
                    let (token, error) = try #require(ending)
                    #expect(token == "token-a")
                    #expect(error?.code == .permissionDenied)
                    let message = error?.message ?? ""
                    #expect(message.contains("certificate revoked") && message.contains("a1"), "\(message)")

                    // The revoked site can neither fetch nor open a new session; the other fetches.
                    let refused = await Self.fetch(client, token: "token-a", digest: harness.digest)
                    let refusedCode: RPCError.Code? = if case .failure(let error) = refused { error.code } else { nil }
                    #expect(refusedCode == .permissionDenied)
                    let again = await Self.session(client, token: "token-a")
                    #expect(again?.code == .permissionDenied)
                    let fetched = await Self.fetch(client, token: "token-b", digest: harness.digest)
                    let chunks = try fetched.get()
                    #expect(chunks == harness.experiment.initialModel.count)
                    #expect(await coordinator.connectedSites == [siteB])

                    coordinator.stop()
                    try await group.waitForAll()
                }
            }
        }
        #expect(await coordinator.joins[siteA] == 1)
    }

    @Test(.timeLimit(.minutes(1))) func aFetchInFlightEndsWhenItsCertificateIsRevoked() async throws {
        let harness = try Harness()
        let coordinator = harness.coordinator
        let clock = harness.clock
        let transport = InProcessTransport()
        let result = try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await withThrowingTaskGroup(of: Result<Int, RPCError>?.self) { group in
                    group.addTask {
                        _ = await coordinator.run()
                        return nil
                    }
                    await clock.waitForSleepers { $0.contains(.seconds(10)) }
                    let (first, firstSink) = AsyncStream.makeStream(of: Void.self)
                    group.addTask {
                        // One chunk, then no credit: the fetch waits, its window full.
                        await Self.fetch(
                            client, token: "token-a", digest: harness.digest, stallAfter: 1, firstChunk: firstSink)
                    }
                    var firstChunk = first.makeAsyncIterator()
                    _ = await firstChunk.next()
                    harness.revoked.value.withLock { $0 = ["a1"] }
                    clock.advance(to: .seconds(10))
                    var result: Result<Int, RPCError>?
                    for try await ended in group {
                        if let ended {
                            result = ended
                            coordinator.stop()
                        }
                    }
                    return result
                }
            }
        }
        let failure: RPCError? = if case .failure(let error)? = result { error } else { nil }
        #expect(failure?.code == .permissionDenied, "\(String(describing: result))")
        #expect(failure?.message.contains("certificate revoked") == true)
    }

    @Test(.timeLimit(.minutes(1))) func aFetchByAnUnknownPeerIsRefused() async throws {
        let harness = try Harness()
        let transport = InProcessTransport()
        let result = try await withGRPCServer(transport: transport.server, services: harness.coordinator.services) {
            _ in
            try await withGRPCClient(transport: transport.client) { client in
                await Self.fetch(client, token: "stolen-or-forged", digest: harness.digest)
            }
        }
        let code: RPCError.Code? = if case .failure(let error) = result { error.code } else { nil }
        #expect(code == .unauthenticated)
    }

    /// An unreadable list changes nothing (the serials read last stay in force); a readable one is adopted.
    @Test func anUnreadableListChangesNothingAndAReadableOneIsAdopted() async throws {
        let harness = try Harness()
        await harness.coordinator.applyRevocations(.failure(TesseraRuntimeError(.transport, "test: unreadable")))
        #expect(harness.coordinator.revocation.isRevoked("a1") == false)
        await harness.coordinator.applyRevocations(.success(["a1"]))
        #expect(harness.coordinator.revocation.isRevoked("a1"))
        #expect(harness.coordinator.revocation.isRevoked(nil) == false)
    }
}

/// A value behind a lock, shareable by reference (a `Mutex` cannot be copied into a struct).
final class Locked<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}
