import Foundation
public import TesseraFederation
public import TesseraSecAgg

// Coordinator → participant: the coordinator's encoder and the participant's decoder.

// MARK: - Encoding (coordinator side)

/// Turns what the coordinator says to one participant into `CoordinatorEnvelope`s, stamped with
/// a header and the next sequence number of that participant's stream.
public struct CoordinatorEnvelopeEncoder: Sendable {
    private var sequence = SequenceCounter()

    public init() {}

    /// The last sequence number handed out.
    public var lastSequence: UInt64 { sequence.last }

    public mutating func welcome(_ welcome: SessionWelcome) throws(WireError) -> Tessera_V1_CoordinatorEnvelope {
        var envelope = envelope(Tessera_V1_MessageHeader())
        envelope.welcome = try Tessera_V1_Welcome(welcome)
        return envelope
    }

    public mutating func heartbeat() -> Tessera_V1_CoordinatorEnvelope {
        var envelope = envelope(Tessera_V1_MessageHeader())
        envelope.heartbeat = Tessera_V1_Heartbeat()
        return envelope
    }

    /// A rejection; `position` is the round it concerns, if any (session-level otherwise).
    public mutating func rejection(
        _ rejection: Rejection, at position: RoundPosition? = nil
    ) throws(WireError)
        -> Tessera_V1_CoordinatorEnvelope
    {
        let header =
            if let position {
                try Tessera_V1_MessageHeader(
                    EnvelopeHeader(
                        experimentID: position.experimentID, round: position.round, stage: position.stage, sequence: 0))
            } else {
                Tessera_V1_MessageHeader()
            }
        var envelope = envelope(header)
        envelope.rejection = Tessera_V1_Rejection(rejection)
        return envelope
    }

    /// The envelope carrying `message` in experiment `experimentID`.
    ///
    /// Train and evaluate tasks name their parameters by `modelDigest`, which the caller has
    /// published to the model store; when `nil` it is computed here (a SHA-256 pass over the
    /// model, worth caching when one model goes to a whole cohort). The header's stage is the
    /// message's own (training, evaluation, or the SecAgg request's stage); a LeaveRound is
    /// stamped with `currentStage`.
    public mutating func encode(
        _ message: CoordinatorMessage, experimentID: String, currentStage: RoundStage, modelDigest: ModelDigest? = nil
    ) throws(WireError) -> Tessera_V1_CoordinatorEnvelope {
        switch message {
        case .train(let instruction):
            try checkExperiment(instruction.experimentID, experimentID)
            var envelope = envelope(try header(experimentID, instruction.round, .training))
            envelope.trainTask = try Tessera_V1_TrainTask(TrainTaskSpec(instruction, modelDigest: modelDigest))
            return envelope
        case .evaluate(let instruction):
            try checkExperiment(instruction.experimentID, experimentID)
            var envelope = envelope(try header(experimentID, instruction.round, .evaluation))
            envelope.evaluateTask = try Tessera_V1_EvaluateTask(EvaluateTaskSpec(instruction, modelDigest: modelDigest))
            return envelope
        case .secAgg(let round, let secAgg):
            guard !secAgg.isFromClient else {
                throw WireError(
                    code: .unexpectedMessage,
                    message: "the coordinator cannot send a participant's SecAgg \(secAgg.stage) message.",
                    field: wireField("SecAggPayload", "message"))
            }
            var envelope = envelope(try header(experimentID, round, RoundStage(secAgg.stage)))
            envelope.secagg = Tessera_V1_SecAggPayload(secAgg)
            return envelope
        case .leaveRound(let round, let reason):
            var envelope = envelope(try header(experimentID, round, currentStage))
            var leave = Tessera_V1_LeaveRound()
            leave.reason = reason
            envelope.leaveRound = leave
            return envelope
        }
    }

    private func checkExperiment(_ instruction: String, _ experimentID: String) throws(WireError) {
        guard instruction == experimentID else {
            throw WireError(
                code: .staleMessage,
                message:
                    "an instruction of experiment \"\(instruction)\" was to be sent under experiment \"\(experimentID)\".",
                field: wireField("MessageHeader", "experiment_id"))
        }
    }

    private func header(
        _ experimentID: String, _ round: Int, _ stage: RoundStage
    ) throws(WireError) -> Tessera_V1_MessageHeader {
        try Tessera_V1_MessageHeader(
            EnvelopeHeader(experimentID: experimentID, round: round, stage: stage, sequence: 0))
    }

    private mutating func envelope(_ header: Tessera_V1_MessageHeader) -> Tessera_V1_CoordinatorEnvelope {
        var envelope = Tessera_V1_CoordinatorEnvelope()
        envelope.header = header
        envelope.header.sequence = sequence.next()
        return envelope
    }
}

// MARK: - Decoding (participant side)

/// What a coordinator envelope amounts to, once decoded and checked.
public enum CoordinatorInbound: Sendable {
    case welcome(SessionWelcome)
    case heartbeat
    case rejection(Rejection)
    /// Fetch the model by digest, then ``TrainTaskSpec/instruction(parameters:)``.
    case train(TrainTaskSpec)
    /// Fetch the model by digest, then ``EvaluateTaskSpec/instruction(parameters:)``.
    case evaluate(EvaluateTaskSpec)
    case secAgg(round: Int, SecAggMessage)
    case leaveRound(round: Int, reason: String)

    /// The domain message, for the bodies that need nothing fetched first.
    public var coordinatorMessage: CoordinatorMessage? {
        switch self {
        case .secAgg(let round, let message): .secAgg(round: round, message)
        case .leaveRound(let round, let reason): .leaveRound(round: round, reason: reason)
        default: nil
        }
    }
}

/// The participant's reader of its session stream.
///
/// The participant follows the coordinator's rounds rather than predicting them, so it checks
/// what it can know: sequence numbers only increase; Welcome comes first (a Rejection may come
/// instead) and once, in the protocol version this build speaks; round messages name an
/// experiment and a stage, and a body that belongs to that stage; SecAgg messages are
/// coordinator messages. Which round the participant is in is `ParticipantAgent`'s to check;
/// ``lastHeader`` tells it the header of the envelope just decoded.
public struct CoordinatorEnvelopeDecoder: Sendable {
    public private(set) var welcome: SessionWelcome?
    /// The header of the last envelope decoded successfully.
    public private(set) var lastHeader: EnvelopeHeader?
    private var sequence = SequenceTracker()

    public init() {}

    public mutating func decode(_ envelope: Tessera_V1_CoordinatorEnvelope) throws(WireError) -> CoordinatorInbound {
        guard envelope.hasHeader else {
            throw WireError.missing(wireField("CoordinatorEnvelope", "header"), "the message header")
        }
        let header = try EnvelopeHeader(envelope.header)
        try sequence.accept(header.sequence)
        guard let body = envelope.body else {
            throw WireError.missing(wireField("CoordinatorEnvelope", "body"), "the envelope body (oneof body)")
        }
        let inbound = try decode(body, header)
        lastHeader = header
        return inbound
    }

    private mutating func decode(
        _ body: Tessera_V1_CoordinatorEnvelope.OneOf_Body, _ header: EnvelopeHeader
    ) throws(WireError) -> CoordinatorInbound {
        switch body {
        case .welcome(let wire):
            guard welcome == nil else {
                throw WireError(
                    code: .unexpectedMessage, message: "a second Welcome on the same session.",
                    field: wireField("CoordinatorEnvelope", "welcome"))
            }
            let decoded = try SessionWelcome(wire)
            guard decoded.protocolVersion == WireProtocol.version else {
                throw WireError(
                    code: .unsupportedProtocolVersion,
                    message:
                        "the coordinator speaks wire protocol version \(decoded.protocolVersion); this participant speaks \(WireProtocol.version).",
                    field: wireField("Welcome", "protocol_version"))
            }
            welcome = decoded
            return .welcome(decoded)
        case .rejection(let wire):
            // Allowed before Welcome: it is how a coordinator refuses the Hello.
            return .rejection(try Rejection(wire))
        default:
            break
        }
        guard welcome != nil else {
            throw WireError(
                code: .unexpectedMessage, message: "\(Self.name(of: body)) arrived before Welcome.",
                field: wireField("CoordinatorEnvelope", "welcome"))
        }
        if case .heartbeat = body { return .heartbeat }

        guard !header.experimentID.isEmpty else {
            throw WireError.missing(wireField("MessageHeader", "experiment_id"), "the experiment id of a round message")
        }
        guard let stage = header.stage else {
            throw WireError.missing(wireField("MessageHeader", "stage"), "the stage of a round message")
        }
        switch body {
        case .trainTask(let wire):
            try require(.training, stage, body)
            return .train(try TrainTaskSpec(wire, header: header))
        case .evaluateTask(let wire):
            try require(.evaluation, stage, body)
            return .evaluate(try EvaluateTaskSpec(wire, header: header))
        case .secagg(let payload):
            switch payload.body {
            case .message(let bytes):
                let message = try decodeSecAggMessage(bytes)
                guard !message.isFromClient else {
                    throw WireError(
                        code: .unexpectedMessage,
                        message: "the coordinator sent a participant's SecAgg \(message.stage) message.",
                        field: wireField("SecAggPayload", "message"))
                }
                try require(RoundStage(message.stage), stage, body)
                return .secAgg(round: header.round, message)
            case .maskedInputChunk:
                throw WireError(
                    code: .unexpectedMessage,
                    message: "the coordinator sent a masked-input chunk; only participants send them.",
                    field: wireField("SecAggPayload", "masked_input_chunk"))
            case nil:
                throw WireError.missing(wireField("SecAggPayload", "body"), "the SecAgg payload (oneof body)")
            }
        case .leaveRound(let wire):
            return .leaveRound(round: header.round, reason: wire.reason)
        case .welcome, .rejection, .heartbeat:
            fatalError("handled above")
        }
    }

    private func require(
        _ expected: RoundStage, _ stage: RoundStage, _ body: Tessera_V1_CoordinatorEnvelope.OneOf_Body
    ) throws(WireError) {
        guard expected == stage else {
            throw WireError(
                code: .unexpectedMessage,
                message:
                    "\(Self.name(of: body)) belongs to stage \(expected.rawValue) but its header says \(stage.rawValue).",
                field: wireField("MessageHeader", "stage"))
        }
    }

    static func name(of body: Tessera_V1_CoordinatorEnvelope.OneOf_Body) -> String {
        switch body {
        case .welcome: "Welcome"
        case .trainTask: "TrainTask"
        case .secagg: "SecAggPayload"
        case .evaluateTask: "EvaluateTask"
        case .leaveRound: "LeaveRound"
        case .rejection: "Rejection"
        case .heartbeat: "Heartbeat"
        }
    }
}
