import GRPCCore
import GRPCInProcessTransport
import SwiftProtobuf
import Synchronization
import TesseraCoordinator
import TesseraCrypto
import TesseraFederation
import TesseraParticipant
import TesseraSecAgg
import TesseraSimulation
import TesseraTesting
import TesseraWire

/// A coordinator that does what a test scripts, to attack one real site with it.
///
/// The site is a real ``ParticipantClient`` driving a real ``ParticipantAgent`` over gRPC's
/// in-process transport, and the script speaks to it through the coordinator's own envelope
/// encoder and decoder, with models served by a real `ModelStoreService`: what the site refuses
/// here, it refuses on the network. A test writes the coordinator's half of the session with
/// ``send(_:announcing:)`` and ``reply()``, and plays the other sites of a roster with
/// ``HonestPeers``, so that a round is valid in every respect but the one the test tampers with.
///
/// Every envelope the site sends is kept, serialized, in the outcome's ``Transcript``: all that a
/// coordinator recording everything could ever learn from the site.
final class ScriptedCoordinator {
    /// What a scripted session left behind.
    struct Outcome {
        /// Every envelope the site sent.
        let transcript: Transcript
        /// The digests the site asked the model store for, in order.
        let fetches: [ModelDigest]
        /// Messages the site sent that the script never read.
        let unread: [ParticipantMessage]
    }

    static let experimentID = "malicious-coordinator"
    /// The round of the request that ends every session (see ``end()``); no script uses it.
    private static let closingRound = 1_000_000

    private let models: RecordingModelStore
    private var encoder = CoordinatorEnvelopeEncoder()
    private var decoder = ParticipantEnvelopeDecoder()
    private var inbound: AsyncStream<Tessera_V1_ParticipantEnvelope>.Iterator
    private let outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>.Continuation
    /// What the site's round messages are decoded against: the size of the last task's model
    /// and, in a secure round, the site's SecAgg round id, index and vector length.
    private var parameterCount = 0
    private var secure: ExpectedRound.Secure?

    private init(
        models: RecordingModelStore, inbound: AsyncStream<Tessera_V1_ParticipantEnvelope>,
        outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>.Continuation
    ) {
        self.models = models
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Connects `site` to a scripted coordinator, welcomes it, runs `script`, and ends the
    /// session once the site has answered everything it was sent.
    ///
    /// The site's clock is a ``ManualClock`` that nothing advances: it sends no heartbeats and
    /// never reconnects, so the transcript holds only its answers.
    static func attack(
        _ site: ParticipantAgent, script: (ScriptedCoordinator) async throws -> Void
    ) async throws -> Outcome {
        let clock = ManualClock()
        let models = RecordingModelStore()
        let transcript = Transcript()
        let name = site.site
        let (inbound, inboundSink) = AsyncStream.makeStream(of: Tessera_V1_ParticipantEnvelope.self)
        let (outbound, outboundSink) = AsyncStream.makeStream(of: Tessera_V1_CoordinatorEnvelope.self)
        let session = SessionService(outbound: outbound, inbound: inboundSink, transcript: transcript)
        let client = ParticipantClient(agent: site, clock: clock, logger: testLogger())
        let store = ModelStoreService(store: models, clock: clock)
        let transport = InProcessTransport()
        return try await withGRPCServer(transport: transport.server, services: [session, store]) { _ in
            try await withGRPCClient(transport: transport.client) { grpc in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await client.run(using: grpc) }
                    let coordinator = ScriptedCoordinator(models: models, inbound: inbound, outbound: outboundSink)
                    try await coordinator.welcome(name)
                    try await script(coordinator)
                    let unread = try await coordinator.end()
                    try await group.waitForAll()
                    return Outcome(transcript: transcript, fetches: models.fetches, unread: unread)
                }
            }
        }
    }

    /// Sends `message`; a task's model goes into the model store first, under its digest.
    ///
    /// - Parameters:
    ///   - announced: a parameter count for the task to announce instead of its own (empty)
    ///     parameters, for a model too large to build: nothing is stored for it.
    ///   - experimentID: the experiment the envelope names (a task must name the same).
    func send(
        _ message: CoordinatorMessage, announcing announced: Int? = nil,
        experimentID: String = ScriptedCoordinator.experimentID
    ) throws {
        var digest: ModelDigest?
        switch message {
        case .train(let instruction):
            parameterCount = announced ?? instruction.parameters.count
            secure = try instruction.secure.map { assignment in
                try Self.expected(
                    assignment,
                    words: QuantizationCodec.encodedLength(dimension: parameterCount) + assignment.metrics().wordCount)
            }
            if announced == nil { digest = models.put(instruction.parameters) }
        case .evaluate(let instruction):
            parameterCount = announced ?? instruction.parameters.count
            secure = try instruction.secure.map { try Self.expected($0, words: $0.metrics().wordCount) }
            if announced == nil { digest = models.put(instruction.parameters) }
        case .secAgg, .leaveRound:
            break
        }
        var envelope = try encoder.encode(
            message, experimentID: experimentID, currentStage: .training, modelDigest: digest)
        if let announced {
            switch message {
            case .train: envelope.trainTask.parameterCount = UInt64(announced)
            case .evaluate: envelope.evaluateTask.parameterCount = UInt64(announced)
            case .secAgg, .leaveRound: break
            }
        }
        outbound.yield(envelope)
    }

    /// The site's next message, decoded and checked as the coordinator does (chunked updates and
    /// masked inputs reassembled, heartbeats skipped).
    func reply() async throws -> ParticipantMessage {
        while true {
            switch try await nextInbound() {
            case .message(let message): return message
            case .hello, .heartbeat, .maskedInputChunk, nil: continue
            }
        }
    }

    private func nextInbound() async throws -> ParticipantInbound? {
        guard let envelope = await inbound.next() else { throw ScriptError("the site closed its session") }
        let header = try EnvelopeHeader(envelope.header)
        // Whatever round and stage the site answers in: the script checks them itself.
        let expected = header.stage.map { stage in
            ExpectedRound(
                position: RoundPosition(experimentID: header.experimentID, round: header.round, stage: stage),
                parameterCount: parameterCount, secure: secure)
        }
        return try decoder.decode(envelope, expecting: expected)
    }

    private func welcome(_ site: SiteID) async throws {
        guard case .hello? = try await nextInbound() else { throw ScriptError("the site did not open with Hello") }
        outbound.yield(try encoder.welcome(SessionWelcome(sessionID: "scripted", site: site)))
    }

    /// Ends the session once the site has answered everything: a SecAgg request for a round it
    /// never joined is answered with a failure, after every earlier reply (the stream is ordered),
    /// so the transcript is complete. Returns the replies the script did not read.
    private func end() async throws -> [ParticipantMessage] {
        try send(
            .secAgg(
                round: Self.closingRound,
                .shareKeysRequest(ShareKeysRequest(roundID: 0, recipient: 1, neighbours: []))))
        var unread: [ParticipantMessage] = []
        while true {
            let message = try await reply()
            if case .failed(Self.closingRound, _) = message { break }
            unread.append(message)
        }
        outbound.finish()
        return unread
    }

    private static func expected(_ assignment: SecureRoundAssignment, words: Int) -> ExpectedRound.Secure {
        ExpectedRound.Secure(
            secAggRoundID: assignment.roundID, participantIndex: assignment.participantIndex, vectorLength: words)
    }
}

/// The scripted coordinator's session service: it writes what the script sends and hands the
/// script, and the transcript, every envelope the site sends.
private struct SessionService: Tessera_V1_ParticipantSession.ServiceProtocol {
    let outbound: AsyncStream<Tessera_V1_CoordinatorEnvelope>
    let inbound: AsyncStream<Tessera_V1_ParticipantEnvelope>.Continuation
    let transcript: Transcript

    func session(
        request: StreamingServerRequest<Tessera_V1_ParticipantEnvelope>, context: ServerContext
    ) async throws -> StreamingServerResponse<Tessera_V1_CoordinatorEnvelope> {
        StreamingServerResponse { writer in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { inbound.finish() }
                    for try await envelope in request.messages {
                        transcript.record(try envelope.serializedBytes())
                        inbound.yield(envelope)
                    }
                }
                for await envelope in outbound { try await writer.write(envelope) }
                // The script has read every reply it waited for (see `end()`).
                group.cancelAll()
            }
            return [:]
        }
    }
}

/// Every envelope a site sent, as the bytes that crossed the wire.
final class Transcript: Sendable {
    private let envelopes = Mutex<[[UInt8]]>([])

    func record(_ bytes: [UInt8]) {
        envelopes.withLock { $0.append(bytes) }
    }

    var count: Int { envelopes.withLock { $0.count } }

    /// Whether any `length`-byte run of `needle` (all of it when shorter) occurs in one envelope.
    func containsRun(of needle: [UInt8], length: Int = 16) -> Bool {
        let length = min(length, needle.count)
        guard length > 0 else { return false }
        var seen = Set<ArraySlice<UInt8>>()
        for bytes in envelopes.withLock({ $0 }) where bytes.count >= length {
            for start in 0...(bytes.count - length) { seen.insert(bytes[start..<(start + length)]) }
        }
        return (0...(needle.count - length)).contains { seen.contains(needle[$0..<($0 + length)]) }
    }
}

/// The model store behind the scripted coordinator: it keeps what the script puts and records
/// every digest a fetch asks for (whether or not it holds the model).
final class RecordingModelStore: ModelStore {
    private struct State {
        var models: [ModelDigest: [Float]] = [:]
        var fetches: [ModelDigest] = []
    }
    private let state = Mutex(State())

    @discardableResult
    func put(_ parameters: [Float]) -> ModelDigest {
        let digest = ModelDigest(parameters: parameters)
        state.withLock { $0.models[digest] = parameters }
        return digest
    }

    func parameters(for digest: ModelDigest) -> [Float]? {
        state.withLock { state in
            state.fetches.append(digest)
            return state.models[digest]
        }
    }

    var fetches: [ModelDigest] { state.withLock { $0.fetches } }
}

/// A secure round's roster as the scripted coordinator announces it: the site under attack at
/// `siteIndex`, and at every other place a peer with its own signing certificate from the test
/// federation.
struct Roster {
    var assignment: SecureRoundAssignment
    /// Every place's signer, the site's included.
    let signers: [UInt32: SiteSigner]

    init(
        roundID: UInt64, site: SiteID, size: Int = 4, threshold: Int = 3, siteIndex: UInt32 = 2, active: Bool = true,
        metricCount: Int = SecureMetricsLayout.training
    ) throws {
        var signers: [UInt32: SiteSigner] = [:]
        for index in 1...UInt32(size) {
            signers[index] = try SimulatedSigning.testFederation.signer(
                for: index == siteIndex ? site : "mc-peer-\(index)")
        }
        self.signers = signers
        assignment = SecureRoundAssignment(
            roundID: roundID, participantIndex: siteIndex, rosterSize: size, graph: .complete, threshold: threshold,
            clip: 1, bits: 16, maxWeight: 1_000, activeAdversary: active,
            credentials: active ? signers.mapValues(\.certificate) : [:], metricCount: metricCount)
    }

    var verificationKeys: [UInt32: Ed25519PublicKey] { signers.mapValues(\.key.publicKey) }
}

/// The other sites of a secure round, played honestly by the script: real ``SecAggClient``s that
/// sign with their own certificates, and a real ``SecAggServer`` routing the protocol. The site
/// under attack then sees a round that is valid in every respect but the one a test tampers with,
/// so a refusal can only be of that.
struct HonestPeers {
    /// How a secure round ended.
    enum End {
        /// The server's result: the sum of every survivor's input.
        case finished(SecAggResult)
        /// The site refused a request, with this reason.
        case refused(String)
    }

    let assignment: SecureRoundAssignment
    private(set) var server: SecAggServer
    private var clients: [UInt32: SecAggClient] = [:]
    /// Each peer's input (arbitrary words: only their sum is ever checked).
    private(set) var inputs: [UInt32: [UInt32]] = [:]

    /// The peers of `roster` for a round of `configuration` (the site's own, from its assignment).
    init(_ roster: Roster, configuration: SecAggConfiguration) throws {
        assignment = roster.assignment
        server = SecAggServer(configuration: configuration, workerCount: 1)
        for (index, signer) in roster.signers where index != roster.assignment.participantIndex {
            clients[index] = try SecAggClient(
                id: index, configuration: configuration,
                signingKey: configuration.securityMode.isActive ? signer.key : nil)
            inputs[index] = (0..<configuration.vectorLength).map { UInt32(truncatingIfNeeded: Int(index) * 7_919 + $0) }
        }
    }

    /// Runs the protocol from the site's AdvertiseKeys to the end. `tamper` rewrites each request
    /// before it goes to the site: the attack. The site's answers go to the server like the
    /// peers'.
    mutating func run(
        with coordinator: ScriptedCoordinator, round: Int, siteKeys: AdvertiseKeysMessage,
        tamper: (SecAggMessage) -> SecAggMessage = { $0 }
    ) async throws -> End {
        let site = assignment.participantIndex
        try server.receive(.advertiseKeys(siteKeys), from: site)
        for id in clients.keys.sorted() {
            try server.receive(.advertiseKeys(try clients[id]!.advertiseKeys()), from: id)
        }
        var generator = SystemRandomNumberGenerator()
        while true {
            let requests: [SecAggMessage]
            switch try server.closeStage() {
            case .finished(let result): return .finished(result)
            case .requests(let next): requests = next
            }
            for request in requests {
                let id = request.recipient
                guard id == site else {
                    try server.receive(
                        try clients[id]!.respond(to: request, input: inputs[id]!, using: &generator), from: id)
                    continue
                }
                try coordinator.send(.secAgg(round: round, tamper(request)))
                switch try await coordinator.reply() {
                case .secAgg(_, let answer): try server.receive(answer, from: id)
                case .failed(_, let reason): return .refused(reason)
                case let other: throw ScriptError("the site answered a \(request.stage) request with \(other)")
                }
            }
        }
    }
}

/// The script could not go on: the site did something no coordinator expects.
struct ScriptError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
