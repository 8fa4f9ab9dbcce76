import Foundation
public import TesseraFederation
import TesseraSecAgg

// Participant → coordinator: the participant's encoder and the coordinator's decoder.

// MARK: - Encoding (participant side)

/// Turns what a participant says into `ParticipantEnvelope`s: stamps each with a header and the
/// next sequence number, and splits plaintext updates and masked inputs into chunks.
///
/// One encoder per session stream: the sequence numbers it hands out are what the
/// coordinator's ``ParticipantEnvelopeDecoder`` uses to refuse replays.
public struct ParticipantEnvelopeEncoder: Sendable {
    public private(set) var chunker: ModelChunker
    private var sequence = SequenceCounter()

    /// Nothing large is sent before the coordinator's welcome; pass its
    /// `SessionWelcome/maximumChunkBytes` to ``adoptChunkLimit(_:)`` when it arrives.
    public init(maximumChunkBytes: Int = WireProtocol.defaultChunkBytes) {
        chunker = ModelChunker(maximumChunkBytes: maximumChunkBytes)
    }

    /// Sends chunks no larger than `maximumChunkBytes` (the coordinator's announced limit) from
    /// now on, if that is smaller than the current size. At least one 4-byte value per chunk.
    public mutating func adoptChunkLimit(_ maximumChunkBytes: Int) {
        let bytes = max(4, min(maximumChunkBytes, chunker.maximumChunkBytes))
        if bytes != chunker.maximumChunkBytes { chunker = ModelChunker(maximumChunkBytes: bytes) }
    }

    /// The last sequence number handed out.
    public var lastSequence: UInt64 { sequence.last }

    public mutating func hello(_ hello: ParticipantHello) throws(WireError) -> Tessera_V1_ParticipantEnvelope {
        var envelope = sessionEnvelope()
        envelope.hello = try Tessera_V1_Hello(hello)
        return envelope
    }

    public mutating func heartbeat() -> Tessera_V1_ParticipantEnvelope {
        var envelope = sessionEnvelope()
        envelope.heartbeat = Tessera_V1_Heartbeat()
        return envelope
    }

    /// The envelopes that carry `message`, in the order they must be sent.
    ///
    /// The header's stage is the one the message belongs to (training for a report, update or
    /// AdvertiseKeys; evaluation for the AdvertiseKeys of a secure evaluation, when `currentStage`
    /// is evaluation; the SecAgg stage for other SecAgg messages; evaluation for metrics); a
    /// failure is stamped with `currentStage`, the stage of the last coordinator message.
    /// - A plaintext update becomes a `TrainingReport` announcing its length, then its chunks.
    /// - A masked input becomes `MaskedInputChunk`s; every other client SecAgg message one payload.
    /// - A coordinator-side SecAgg message is refused (`unexpectedMessage`): it is a bug to send one.
    public mutating func encode(
        _ message: ParticipantMessage, experimentID: String, currentStage: RoundStage
    ) throws(WireError) -> [Tessera_V1_ParticipantEnvelope] {
        switch message {
        case .update(let round, let delta, let report):
            let header = try roundHeader(experimentID, round, .training)
            var first = envelope(header)
            first.trainingReport = try Tessera_V1_TrainingReport(report, updateParameterCount: delta.count)
            var envelopes = [first]
            for chunk in chunker.updateChunks(of: delta) {
                var next = envelope(header)
                next.plaintextUpdateChunk = chunk
                envelopes.append(next)
            }
            return envelopes
        case .trained(let round, let report):
            var single = envelope(try roundHeader(experimentID, round, .training))
            single.trainingReport = try Tessera_V1_TrainingReport(report)
            return [single]
        case .secAgg(let round, let secAgg):
            guard secAgg.isFromClient else {
                throw WireError(
                    code: .unexpectedMessage,
                    message: "a participant cannot send the coordinator's SecAgg \(secAgg.stage) message.",
                    field: wireField("SecAggPayload", "message"))
            }
            // AdvertiseKeys answers the task that opened the secure session: a training task, or
            // the evaluation task of a secure evaluation.
            let stage =
                secAgg.stage == .advertiseKeys && currentStage == .evaluation ? .evaluation : RoundStage(secAgg.stage)
            let header = try roundHeader(experimentID, round, stage)
            if case .maskedInput(let masked) = secAgg {
                return chunker.maskedInputChunks(of: masked).map { chunk in
                    var next = envelope(header)
                    var payload = Tessera_V1_SecAggPayload()
                    payload.maskedInputChunk = chunk
                    next.secagg = payload
                    return next
                }
            }
            var single = envelope(header)
            single.secagg = Tessera_V1_SecAggPayload(secAgg)
            return [single]
        case .evaluation(let round, let metrics):
            var single = envelope(try roundHeader(experimentID, round, .evaluation))
            single.evaluationResult = try Tessera_V1_EvaluationResult(metrics)
            return [single]
        case .failed(let round, let reason):
            var single = envelope(try roundHeader(experimentID, round, currentStage))
            var failure = Tessera_V1_Failure()
            failure.reason = reason
            single.failure = failure
            return [single]
        }
    }

    private func roundHeader(
        _ experimentID: String, _ round: Int, _ stage: RoundStage
    ) throws(WireError) -> Tessera_V1_MessageHeader {
        try Tessera_V1_MessageHeader(
            EnvelopeHeader(experimentID: experimentID, round: round, stage: stage, sequence: 0))
    }

    private mutating func envelope(_ header: Tessera_V1_MessageHeader) -> Tessera_V1_ParticipantEnvelope {
        var envelope = Tessera_V1_ParticipantEnvelope()
        envelope.header = header
        envelope.header.sequence = sequence.next()
        return envelope
    }

    private mutating func sessionEnvelope() -> Tessera_V1_ParticipantEnvelope {
        envelope(Tessera_V1_MessageHeader())
    }
}

// MARK: - Decoding (coordinator side)

/// What the coordinator expects from one participant right now. The session service builds it
/// from the round state for each envelope; `nil` means the participant is in no round.
public struct ExpectedRound: Sendable, Hashable {
    /// A secure round's public facts about this participant.
    public struct Secure: Sendable, Hashable {
        /// `SecureRoundAssignment.roundID`.
        public var secAggRoundID: UInt64
        /// The participant index assigned to this (authenticated) site. SecAgg messages that
        /// claim another sender are refused here, before they reach the protocol.
        public var participantIndex: UInt32
        /// The length of a masked input in words (`QuantizationCodec.encodedLength(dimension:)`).
        public var vectorLength: Int

        public init(secAggRoundID: UInt64, participantIndex: UInt32, vectorLength: Int) {
            self.secAggRoundID = secAggRoundID
            self.participantIndex = participantIndex
            self.vectorLength = vectorLength
        }
    }

    public var position: RoundPosition
    /// The model's parameter count: the only length a plaintext update may announce.
    public var parameterCount: Int
    /// Present in secure rounds (plaintext updates are then refused); absent in plaintext rounds
    /// (SecAgg messages are then refused).
    public var secure: Secure?

    public init(position: RoundPosition, parameterCount: Int, secure: Secure? = nil) {
        self.position = position
        self.parameterCount = parameterCount
        self.secure = secure
    }
}

/// One verified masked-input chunk, in streaming mode.
public struct MaskedInputSlice: Sendable, Hashable {
    public var round: Int
    public var secAggRoundID: UInt64
    public var sender: UInt32
    /// Where ``words`` go in the vector.
    public var range: Range<Int>
    public var words: [UInt32]
    /// The vector's length.
    public var totalWords: Int
    /// `true` on the chunk that completes the vector.
    public var isLast: Bool
}

/// What a participant envelope amounts to, once decoded and checked.
public enum ParticipantInbound: Sendable {
    case hello(ParticipantHello)
    case heartbeat
    /// A complete message for the coordinator state machine.
    case message(ParticipantMessage)
    /// Streaming mode only: a verified piece of a masked input, to add into the running sum.
    case maskedInputChunk(MaskedInputSlice)
}

/// The coordinator's reader of one participant's session stream.
///
/// It checks every envelope before the round sees it: sequence numbers only increase; Hello
/// comes first and once, in the protocol version this build speaks; round messages carry the
/// header of the round and stage the participant is expected in (``ExpectedRound``), and a body
/// that belongs to that stage; SecAgg messages are client messages that claim this site's
/// index; updates have the model's length and masked inputs the SecAgg vector length. It
/// reassembles chunked updates (and masked inputs, unless streaming) and returns `nil` while
/// a chunked message is incomplete.
///
/// A chunked message must not be interleaved with anything but heartbeats (a `Failure` may
/// abandon it). When any envelope fails its checks the partial message is discarded, so the
/// session can go on once the coordinator has dropped the participant from the round.
public struct ParticipantEnvelopeDecoder: Sendable {
    /// What to do with masked-input chunks.
    public enum MaskedInputHandling: Sendable, Hashable {
        /// Reassemble them into one `MaskedInputMessage` (for `SecAggServer.receive`).
        case assemble
        /// Hand each verified chunk on as ``ParticipantInbound/maskedInputChunk(_:)``, so the
        /// coordinator can add it to the round's running sum and hold no per-participant vector.
        case stream
    }

    public let maximumChunkBytes: Int
    public let maximumVectorBytes: Int
    public let maskedInputHandling: MaskedInputHandling

    public private(set) var hello: ParticipantHello?
    private var sequence = SequenceTracker()

    private struct PendingUpdate: Sendable {
        var round: Int
        var report: TrainingReport
        var assembler: ChunkAssembler<Float>
    }
    private enum MaskedWords: Sendable {
        case assembling(ChunkAssembler<UInt32>)
        case streaming(StreamingChunkVerifier<UInt32>)
    }
    private struct PendingMaskedInput: Sendable {
        var round: Int
        var secAggRoundID: UInt64
        var sender: UInt32
        /// Always present between chunks; taken out while a chunk is added.
        var words: MaskedWords?
    }
    private var pendingUpdate: PendingUpdate?
    private var pendingMaskedInput: PendingMaskedInput?

    public init(
        maximumChunkBytes: Int = WireProtocol.defaultChunkBytes,
        maximumVectorBytes: Int = WireProtocol.defaultMaximumVectorBytes,
        maskedInputHandling: MaskedInputHandling = .assemble
    ) {
        self.maximumChunkBytes = maximumChunkBytes
        self.maximumVectorBytes = maximumVectorBytes
        self.maskedInputHandling = maskedInputHandling
    }

    /// The last sequence number accepted.
    public var lastSequence: UInt64 { sequence.last }

    /// `true` while a chunked update or masked input is partly received.
    public var hasPartialMessage: Bool { pendingUpdate != nil || pendingMaskedInput != nil }

    /// Forgets a partly received update or masked input: its round is over for this participant
    /// (the coordinator told it to leave, or started the next round), so the rest will not come
    /// and the next message must not be refused as interleaved with it.
    public mutating func discardPartialMessage() {
        pendingUpdate = nil
        pendingMaskedInput = nil
    }

    /// Decodes and checks one envelope; `nil` when it was a chunk of a message not yet complete.
    ///
    /// Any error while a chunked message is partly received discards that message: the
    /// coordinator drops the participant from the round anyway, and a clean state lets the
    /// session carry on with the next round.
    public mutating func decode(
        _ envelope: Tessera_V1_ParticipantEnvelope, expecting expected: ExpectedRound?
    ) throws(WireError) -> ParticipantInbound? {
        do {
            return try decodeChecked(envelope, expecting: expected)
        } catch {
            pendingUpdate = nil
            pendingMaskedInput = nil
            throw error
        }
    }

    private mutating func decodeChecked(
        _ envelope: Tessera_V1_ParticipantEnvelope, expecting expected: ExpectedRound?
    ) throws(WireError) -> ParticipantInbound? {
        guard envelope.hasHeader else {
            throw WireError.missing(wireField("ParticipantEnvelope", "header"), "the message header")
        }
        let header = try EnvelopeHeader(envelope.header)
        try sequence.accept(header.sequence)
        guard let body = envelope.body else {
            throw WireError.missing(wireField("ParticipantEnvelope", "body"), "the envelope body (oneof body)")
        }

        switch body {
        case .hello(let wire):
            guard hello == nil else {
                throw WireError(
                    code: .unexpectedMessage, message: "a second Hello on the same session.",
                    field: wireField("ParticipantEnvelope", "hello"))
            }
            let decoded = try ParticipantHello(wire)
            guard decoded.protocolVersion == WireProtocol.version else {
                throw WireError(
                    code: .unsupportedProtocolVersion,
                    message:
                        "the participant speaks wire protocol version \(decoded.protocolVersion); this coordinator speaks \(WireProtocol.version).",
                    field: wireField("Hello", "protocol_version"))
            }
            hello = decoded
            return .hello(decoded)
        case .heartbeat:
            try requireHello("Heartbeat")
            return .heartbeat
        default:
            break
        }

        try requireHello(Self.name(of: body))
        if case .failure(let failure) = body {
            // A failure may abandon a chunked message half way.
            let position = try roundPosition(header, expected)
            pendingUpdate = nil
            pendingMaskedInput = nil
            let reason = try checkedText(
                failure.reason, limit: WireProtocol.maximumReasonBytes, wireField("Failure", "reason"))
            return .message(.failed(round: position.round, reason: reason))
        }
        try refuseInterleaving(body)
        let expected = try requireRound(header, expected)
        let round = expected.position.round

        switch body {
        case .trainingReport(let wire):
            try requireStage(.training, header, body)
            let report = try TrainingReport(wire)
            guard wire.hasUpdateParameterCount else {
                return .message(.trained(round: round, report: report))
            }
            guard expected.secure == nil else {
                throw WireError(
                    code: .unexpectedMessage, message: "a plaintext update was announced in a secure round.",
                    field: wireField("TrainingReport", "update_parameter_count"))
            }
            let count = try checkedInt(wire.updateParameterCount, wireField("TrainingReport", "update_parameter_count"))
            guard count == expected.parameterCount else {
                throw WireError(
                    code: .parameterCountMismatch,
                    message: "the announced update has \(count) values; the model has \(expected.parameterCount).",
                    field: wireField("TrainingReport", "update_parameter_count"))
            }
            pendingUpdate = PendingUpdate(
                round: round, report: report,
                assembler: ChunkAssembler(
                    fields: .plaintextUpdateChunk, maximumTotalBytes: maximumVectorBytes,
                    maximumChunkBytes: maximumChunkBytes,
                    expectedCount: count))
            return nil

        case .plaintextUpdateChunk(let chunk):
            try requireStage(.training, header, body)
            // Checked on every chunk, not only at the announcement: what the coordinator expects
            // of this site can change between two envelopes, and a secure round takes no
            // plaintext update whatever was announced before it.
            guard expected.secure == nil else {
                pendingUpdate = nil
                throw WireError(
                    code: .unexpectedMessage, message: "a plaintext update chunk arrived in a secure round.",
                    field: wireField("ParticipantEnvelope", "plaintext_update_chunk"))
            }
            // Taken out of `pendingUpdate` so that appending mutates the only reference to the
            // partial vector (a second one would copy the whole vector on every chunk).
            guard var pending = pendingUpdate.take(), pending.round == round else {
                throw WireError(
                    code: .unexpectedMessage,
                    message: "an update chunk arrived without a TrainingReport announcing the update.",
                    field: wireField("ParticipantEnvelope", "plaintext_update_chunk"))
            }
            try pending.assembler.append(chunk)
            guard pending.assembler.isComplete else {
                pendingUpdate = pending
                return nil
            }
            pendingUpdate = nil
            let delta = try pending.assembler.finish()
            return .message(.update(round: round, delta: delta, report: pending.report))

        case .secagg(let payload):
            switch payload.body {
            case .message(let bytes):
                let message = try decodeSecAggMessage(bytes)
                guard message.isFromClient else {
                    throw WireError(
                        code: .unexpectedMessage,
                        message: "a participant sent the coordinator's SecAgg \(message.stage) message.",
                        field: wireField("SecAggPayload", "message"))
                }
                if case .maskedInput = message {
                    throw WireError(
                        code: .unexpectedMessage,
                        message: "a masked input must travel as MaskedInputChunks, not as one message.",
                        field: wireField("SecAggPayload", "message"))
                }
                // The AdvertiseKeys of a secure evaluation belongs to the evaluation stage.
                let advertisesForEvaluation = message.stage == .advertiseKeys && expected.position.stage == .evaluation
                try requireStage(advertisesForEvaluation ? .evaluation : RoundStage(message.stage), header, body)
                try checkSecAgg(
                    roundID: message.roundID, sender: message.sender, expected,
                    field: wireField("SecAggPayload", "message"))
                return .message(.secAgg(round: round, message))
            case .maskedInputChunk(let chunk):
                try requireStage(.maskedInput, header, body)
                return try receiveMaskedInput(chunk, round: round, expected)
            case nil:
                throw WireError.missing(wireField("SecAggPayload", "body"), "the SecAgg payload (oneof body)")
            }

        case .evaluationResult(let wire):
            try requireStage(.evaluation, header, body)
            return .message(.evaluation(round: round, try EvaluationMetrics(wire)))

        case .hello, .heartbeat, .failure:
            fatalError("handled above")
        }
    }

    private mutating func receiveMaskedInput(
        _ chunk: Tessera_V1_MaskedInputChunk, round: Int, _ expected: ExpectedRound
    ) throws(WireError) -> ParticipantInbound? {
        let field = wireField("MaskedInputChunk", "")
        let secure = try checkSecAgg(
            roundID: chunk.secaggRoundID, sender: chunk.sender, expected, field: field + "sender")
        var pending: PendingMaskedInput
        // Taken out of `pendingMaskedInput` (and its words out of `pending` below) so that the
        // partial vector has one reference while a chunk is added: no copy per chunk.
        if let existing = pendingMaskedInput.take(), existing.round == round,
            existing.secAggRoundID == chunk.secaggRoundID
        {
            pending = existing
        } else {
            let words: MaskedWords =
                switch maskedInputHandling {
                case .assemble:
                    .assembling(
                        ChunkAssembler(
                            fields: .maskedInputChunk, maximumTotalBytes: maximumVectorBytes,
                            maximumChunkBytes: maximumChunkBytes,
                            expectedCount: secure.vectorLength))
                case .stream:
                    .streaming(
                        StreamingChunkVerifier(
                            fields: .maskedInputChunk, maximumTotalBytes: maximumVectorBytes,
                            maximumChunkBytes: maximumChunkBytes,
                            expectedCount: secure.vectorLength))
                }
            pending = PendingMaskedInput(
                round: round, secAggRoundID: chunk.secaggRoundID, sender: chunk.sender, words: words)
        }
        switch pending.words.take()! {
        case .assembling(var assembler):
            try assembler.append(chunk)
            guard assembler.isComplete else {
                pending.words = .assembling(assembler)
                pendingMaskedInput = pending
                return nil
            }
            pendingMaskedInput = nil
            let words = try assembler.finish()
            return .message(
                .secAgg(
                    round: round,
                    .maskedInput(
                        MaskedInputMessage(roundID: pending.secAggRoundID, sender: pending.sender, maskedInput: words)))
            )
        case .streaming(var verifier):
            var slice: MaskedInputSlice?
            try verifier.consume(chunk) { range, words in
                slice = MaskedInputSlice(
                    round: round, secAggRoundID: pending.secAggRoundID, sender: pending.sender, range: range,
                    words: Array(words), totalWords: 0, isLast: false)
            }
            slice!.totalWords = verifier.totalCount!
            if verifier.isComplete {
                try verifier.finish()
                slice!.isLast = true
                pendingMaskedInput = nil
            } else {
                pending.words = .streaming(verifier)
                pendingMaskedInput = pending
            }
            return .maskedInputChunk(slice!)
        }
    }

    /// Checks a SecAgg message's round id and claimed sender against the round; returns the
    /// secure expectation.
    @discardableResult
    private func checkSecAgg(
        roundID: UInt64, sender: UInt32, _ expected: ExpectedRound, field: String
    ) throws(WireError) -> ExpectedRound.Secure {
        guard let secure = expected.secure else {
            throw WireError(
                code: .unexpectedMessage, message: "a SecAgg message arrived in a plaintext round.", field: field)
        }
        guard roundID == secure.secAggRoundID else {
            throw WireError(
                code: .staleMessage,
                message:
                    "the SecAgg message is for SecAgg round \(roundID); this round's id is \(secure.secAggRoundID).",
                field: field)
        }
        guard sender == secure.participantIndex else {
            throw WireError(
                code: .unexpectedMessage,
                message: "the SecAgg message claims sender \(sender); this site's index is \(secure.participantIndex).",
                field: field)
        }
        return secure
    }

    private func requireHello(_ what: String) throws(WireError) {
        guard hello != nil else {
            throw WireError(
                code: .unexpectedMessage, message: "\(what) arrived before Hello; Hello must open the session.",
                field: wireField("ParticipantEnvelope", "hello"))
        }
    }

    private func roundPosition(_ header: EnvelopeHeader, _ expected: ExpectedRound?) throws(WireError) -> RoundPosition
    {
        try requireRound(header, expected).position
    }

    private func requireRound(_ header: EnvelopeHeader, _ expected: ExpectedRound?) throws(WireError) -> ExpectedRound {
        guard let expected else {
            throw WireError(
                code: .staleMessage,
                message:
                    "a message for round \(header.round) of \"\(header.experimentID)\" arrived while this participant is in no round.",
                field: wireField("MessageHeader", "round"))
        }
        try header.check(against: expected.position)
        return expected
    }

    /// A body must belong to the stage its header names; a mismatch is a confused or lying peer.
    private func requireStage(
        _ stage: RoundStage, _ header: EnvelopeHeader, _ body: Tessera_V1_ParticipantEnvelope.OneOf_Body
    ) throws(WireError) {
        guard header.stage == stage else {
            throw WireError(
                code: .unexpectedMessage,
                message:
                    "\(Self.name(of: body)) belongs to stage \(stage.rawValue) but its header says \(header.stage?.rawValue ?? "(none)").",
                field: wireField("MessageHeader", "stage"))
        }
    }

    private func refuseInterleaving(_ body: Tessera_V1_ParticipantEnvelope.OneOf_Body) throws(WireError) {
        if let pending = pendingUpdate {
            if case .plaintextUpdateChunk = body { return }
            throw WireError(
                code: .unexpectedMessage,
                message:
                    "\(Self.name(of: body)) arrived in the middle of an update (\(pending.assembler.receivedCount) of \(pending.assembler.totalCount ?? 0) values received).",
                field: wireField("ParticipantEnvelope", "plaintext_update_chunk"))
        }
        if pendingMaskedInput != nil {
            if case .secagg(let payload) = body, case .maskedInputChunk = payload.body { return }
            throw WireError(
                code: .unexpectedMessage, message: "\(Self.name(of: body)) arrived in the middle of a masked input.",
                field: wireField("SecAggPayload", "masked_input_chunk"))
        }
    }

    static func name(of body: Tessera_V1_ParticipantEnvelope.OneOf_Body) -> String {
        switch body {
        case .hello: "Hello"
        case .heartbeat: "Heartbeat"
        case .trainingReport: "TrainingReport"
        case .plaintextUpdateChunk: "PlaintextUpdateChunk"
        case .secagg: "SecAggPayload"
        case .evaluationResult: "EvaluationResult"
        case .failure: "Failure"
        }
    }
}

extension Tessera_V1_ParticipantEnvelope {
    /// `true` for a heartbeat (it keeps a session alive but is no progress of an upload).
    public var isHeartbeat: Bool {
        if case .heartbeat? = body { true } else { false }
    }

    /// `true` when this envelope opens an upload that the receiver assembles into a model-sized
    /// vector: a masked input's first `MaskedInputChunk`, or the `TrainingReport` announcing a
    /// plaintext update. The coordinator assembles only a few uploads at once and reads this
    /// before decoding, to decide whether to go on reading this stream now. It is a hint about
    /// the bytes, not a check: the decoder still checks everything.
    public var opensUpload: Bool {
        switch body {
        case .secagg(let payload):
            if case .maskedInputChunk(let chunk) = payload.body { chunk.offsetWords == 0 } else { false }
        case .trainingReport(let report):
            report.hasUpdateParameterCount
        default:
            false
        }
    }
}

extension Tessera_V1_ParticipantEnvelope {
    /// The payload bytes this envelope carries: of an update (plaintext chunk or masked-input
    /// chunk) and of a whole SecAgg message. An upload holding a slot is judged by their sum;
    /// both sides count them as bytes sent and received.
    public var payloadBytes: (update: Int, secAgg: Int) {
        switch body {
        case .plaintextUpdateChunk(let chunk)?: (chunk.values.count, 0)
        case .secagg(let payload)?:
            switch payload.body {
            case .maskedInputChunk(let chunk)?: (chunk.words.count, 0)
            case .message(let message)?: (0, message.count)
            case nil: (0, 0)
            }
        default: (0, 0)
        }
    }
}
