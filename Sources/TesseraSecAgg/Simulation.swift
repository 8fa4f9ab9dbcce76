public import TesseraCrypto

/// An in-memory round: n ``SecAggClient``s and one ``SecAggServer`` exchanging encoded bytes,
/// with an injected dropout schedule. No I/O and no threads besides the server's unmasking.
///
/// It is the test double of the transport: every message goes through
/// ``SecAggMessage/encoded()`` and ``SecAggMessage/decode(_:)`` exactly as on the network, and
/// every byte the server receives is recorded in the transcript, so tests can check what the
/// server could learn. Interceptors let a test tamper with, duplicate, or drop messages in
/// flight to exercise the misbehaviour paths.
public struct SecAggSimulation {
    /// Which participants vanish before which stage (they send nothing from that stage on).
    public struct DropoutSchedule: Sendable, Hashable {
        public var dropBefore: [SecAggStage: Set<UInt32>]

        public init(dropBefore: [SecAggStage: Set<UInt32>] = [:]) {
            self.dropBefore = dropBefore
        }

        /// `true` when `id` dropped before `stage` or any earlier stage.
        public func hasDropped(_ id: UInt32, by stage: SecAggStage) -> Bool {
            dropBefore.contains { $0.key <= stage && $0.value.contains(id) }
        }
    }

    /// One message as received by the server.
    public struct TranscriptEntry: Sendable, Hashable {
        public var stage: SecAggStage
        public var sender: UInt32
        public var bytes: [UInt8]
    }

    /// What a run produced.
    public struct Outcome: Sendable {
        /// The server's result, or the error it aborted with.
        public var result: Result<SecAggResult, SecAggError>
        /// Every byte string the server received, in order.
        public var transcript: [TranscriptEntry]
        /// Errors thrown by clients (refusals), by participant.
        public var clientErrors: [UInt32: SecAggError]
        /// Shares that clients rejected (tampered ciphertexts and the like), by participant.
        public var rejectedShares: [UInt32: [SecAggError]]
        /// Messages the server rejected.
        public var serverMisbehaviour: [SecAggError]
        /// The server's survivor set of each closed stage.
        public var stageSurvivors: [SecAggStage: Set<UInt32>]
    }

    /// Rewrites a message in flight: return `[bytes]` to pass it on, `[]` to lose it, or
    /// several byte strings to deliver several messages.
    public typealias Interceptor = (_ stage: SecAggStage, _ participant: UInt32, _ bytes: [UInt8]) -> [[UInt8]]

    public var configuration: SecAggConfiguration
    public var dropouts: DropoutSchedule
    /// Long-term signing keys, required in the active setting.
    public var signingKeys: [UInt32: Ed25519PrivateKey]
    /// Seed of every client's (deterministic) key generation and Shamir randomness.
    public var seed: UInt64
    /// Threads for the server's unmasking.
    public var workerCount: Int?
    /// Applied to every client → server message (participant = sender).
    public var clientToServer: Interceptor?
    /// Applied to every server → client request (participant = recipient).
    public var serverToClient: Interceptor?
    /// After answering each request, every client masks its input ahead of the MaskedInput
    /// request (``SecAggClient/prepareMaskedInput(_:)``), as a networked participant does.
    public var prepareAhead = false

    public init(
        configuration: SecAggConfiguration,
        dropouts: DropoutSchedule = DropoutSchedule(),
        signingKeys: [UInt32: Ed25519PrivateKey] = [:],
        seed: UInt64 = 0,
        workerCount: Int? = nil
    ) {
        self.configuration = configuration
        self.dropouts = dropouts
        self.signingKeys = signingKeys
        self.seed = seed
        self.workerCount = workerCount
    }

    /// Runs one round over `inputs` (one ``SecAggConfiguration/vectorLength``-word vector per
    /// participant; a participant without an input drops before MaskedInputCollection).
    public func run(inputs: [UInt32: [UInt32]]) -> Outcome {
        var server = SecAggServer(configuration: configuration, workerCount: workerCount)
        var clients: [UInt32: SecAggClient] = [:]
        var generators: [UInt32: DeterministicGenerator] = [:]
        var clientErrors: [UInt32: SecAggError] = [:]
        var transcript: [TranscriptEntry] = []

        for id in configuration.participants {
            var generator = DeterministicGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(id))
            do {
                clients[id] = try SecAggClient(
                    id: id, configuration: configuration, signingKey: signingKeys[id], using: &generator)
            } catch {
                clientErrors[id] = error
            }
            generators[id] = generator
        }

        func deliver(_ message: SecAggMessage, from id: UInt32, server: inout SecAggServer) {
            var bytes = [message.encoded()]
            if let clientToServer { bytes = clientToServer(message.stage, id, bytes[0]) }
            for payload in bytes {
                transcript.append(TranscriptEntry(stage: message.stage, sender: id, bytes: payload))
                try? server.receive(payload, from: id)
            }
        }

        // AdvertiseKeys is unprompted: each participant opens the round with its keys.
        for id in configuration.participants where !dropouts.hasDropped(id, by: .advertiseKeys) {
            guard var client = clients[id] else { continue }
            do {
                let message = try client.advertiseKeys()
                clients[id] = client
                deliver(.advertiseKeys(message), from: id, server: &server)
            } catch {
                clientErrors[id] = error
            }
        }

        var result: Result<SecAggResult, SecAggError>
        while true {
            let step: SecAggServer.Step
            do {
                step = try server.closeStage()
            } catch {
                result = .failure(error)
                break
            }
            guard case .requests(let requests) = step else {
                if case .finished(let value) = step { result = .success(value) } else { continue }
                break
            }
            for request in requests {
                let id = request.recipient
                guard !dropouts.hasDropped(id, by: request.stage), var client = clients[id], clientErrors[id] == nil
                else {
                    continue
                }
                var payloads = [request.encoded()]
                if let serverToClient { payloads = serverToClient(request.stage, id, payloads[0]) }
                for payload in payloads {
                    guard clientErrors[id] == nil else { break }
                    do {
                        let decoded = try SecAggMessage.decode(payload)
                        if case .maskedInputRequest = decoded, inputs[id] == nil { continue }
                        var generator = generators[id] ?? DeterministicGenerator(seed: UInt64(id))
                        let answer = try client.respond(to: decoded, input: inputs[id] ?? [], using: &generator)
                        generators[id] = generator
                        if prepareAhead, let input = inputs[id] { client.prepareMaskedInput(input) }
                        clients[id] = client
                        deliver(answer, from: id, server: &server)
                    } catch {
                        clientErrors[id] = error
                        clients[id] = client
                    }
                }
            }
        }

        var rejected: [UInt32: [SecAggError]] = [:]
        for (id, client) in clients where !client.rejectedShares.isEmpty { rejected[id] = client.rejectedShares }
        return Outcome(
            result: result, transcript: transcript, clientErrors: clientErrors, rejectedShares: rejected,
            serverMisbehaviour: server.misbehaviour, stageSurvivors: server.survivors)
    }
}
