import SwiftProtobuf
import TesseraFederation
import TesseraSecAgg
import TesseraWire

/// The session streams, read as the coordinator and the participant read them: a sequence of
/// protobuf envelopes through one decoder, so chunk reassembly, sequence numbers and the
/// Hello/Welcome ordering are exercised across envelopes, not one message at a time.
///
/// Input: one setup byte, then repeated `control byte, framed envelope` (see ``FuzzInput``).
/// Bytes that are not a protobuf envelope are skipped, as gRPC refuses them before any
/// Tessera code sees them.
enum EnvelopeTargets {
    /// The round the coordinator-side decoder is told to expect: small lengths, so that a
    /// short input can complete an upload.
    static let experimentID = "fuzz"
    static let round = 3
    static let parameterCount = 6
    static let secAggRoundID: UInt64 = 9
    static let participantIndex: UInt32 = 2
    static let vectorLength = 5

    /// Setup byte: bits 0–1 pick the chunk limit, bit 2 a small vector limit, bit 3 streaming
    /// masked inputs. Control byte per envelope: bits 0–1 pick the expectation (none, the fixed
    /// round, or the round the envelope's own header names, which lets mutated envelopes past
    /// the header check), bits 2–4 the stage, bit 5 a secure round, bit 7 a round change (the
    /// coordinator discards a partial upload).
    static func participantEnvelopes(_ bytes: [UInt8]) -> Int {
        var input = FuzzInput(bytes)
        let setup = input.byte()
        let chunkLimits = [16, 64, WireProtocol.defaultChunkBytes, WireProtocol.defaultChunkBytes]
        var decoder = ParticipantEnvelopeDecoder(
            maximumChunkBytes: chunkLimits[Int(setup & 3)],
            maximumVectorBytes: setup & 4 == 0 ? 1024 : WireProtocol.defaultMaximumVectorBytes,
            maskedInputHandling: setup & 8 == 0 ? .assemble : .stream)
        var encoder = CoordinatorEnvelopeEncoder()
        var accepted = 0
        while !input.isAtEnd {
            let control = input.byte()
            guard let envelope = try? Tessera_V1_ParticipantEnvelope(serializedBytes: input.piece()) else { continue }
            if control & 0x80 != 0 { decoder.discardPartialMessage() }
            let expected = expectation(control, header: envelope.header)
            let before = decoder.lastSequence
            do {
                let inbound = try decoder.decode(envelope, expecting: expected)
                fuzzExpect(
                    decoder.lastSequence == envelope.header.sequence && decoder.lastSequence > before,
                    "an accepted envelope did not advance the sequence to its own number")
                accepted += 1
                if let inbound { check(inbound, expected: expected, decoder: decoder) }
            } catch {
                fuzzExpect(!decoder.hasPartialMessage, "a refused envelope left a partial upload behind")
                // The coordinator answers every refusal on the stream; the answer must encode.
                let rejection = Rejection(error, rejectedSequence: envelope.header.sequence)
                let answer = try? encoder.rejection(rejection, at: expected?.position)
                fuzzExpect(answer != nil, "the rejection of a refused envelope does not encode")
                let wire: [UInt8]? = try? answer?.serializedBytes()
                fuzzExpect(wire != nil, "the rejection envelope does not serialise")
            }
        }
        return accepted
    }

    private static func expectation(_ control: UInt8, header: Tessera_V1_MessageHeader) -> ExpectedRound? {
        let stages = RoundStage.allCases
        var position = RoundPosition(
            experimentID: experimentID, round: round, stage: stages[Int(control >> 2 & 7) % stages.count])
        switch control & 3 {
        case 0:
            return nil
        case 1:
            break
        default:
            if let claimed = try? EnvelopeHeader(header), let stage = claimed.stage {
                position = RoundPosition(experimentID: claimed.experimentID, round: claimed.round, stage: stage)
            }
        }
        let secure =
            control & 0x20 == 0
            ? nil
            : ExpectedRound.Secure(
                secAggRoundID: secAggRoundID, participantIndex: participantIndex, vectorLength: vectorLength)
        return ExpectedRound(position: position, parameterCount: parameterCount, secure: secure)
    }

    /// What the decoder promises about what it lets through.
    private static func check(
        _ inbound: ParticipantInbound, expected: ExpectedRound?, decoder: ParticipantEnvelopeDecoder
    ) {
        switch inbound {
        case .hello(let hello):
            fuzzExpect(
                hello.protocolVersion == WireProtocol.version, "a Hello of another protocol version was accepted")
            fuzzExpect(decoder.hello == hello, "the decoder does not remember the Hello it accepted")
        case .heartbeat:
            fuzzExpect(decoder.hello != nil, "a heartbeat was accepted before Hello")
        case .message(let message):
            fuzzExpect(decoder.hello != nil, "a round message was accepted before Hello")
            guard let expected else { return fuzzExpect(false, "a round message was accepted outside any round") }
            fuzzExpect(message.round == expected.position.round, "a message of another round was accepted")
            switch message {
            case .update(_, let delta, _):
                fuzzExpect(expected.secure == nil, "a plaintext update was accepted in a secure round")
                fuzzExpect(delta.count == expected.parameterCount, "an update of the wrong length was accepted")
            case .secAgg(_, let secAgg):
                fuzzExpect(secAgg.isFromClient, "a coordinator's SecAgg message was accepted from a participant")
                guard let secure = expected.secure else {
                    return fuzzExpect(false, "a SecAgg message was accepted in a plaintext round")
                }
                fuzzExpect(
                    secAgg.sender == secure.participantIndex && secAgg.roundID == secure.secAggRoundID,
                    "a SecAgg message of another sender or SecAgg round was accepted")
                if case .maskedInput(let masked) = secAgg {
                    fuzzExpect(masked.maskedInput.count == secure.vectorLength, "a masked input of the wrong length")
                }
            case .trained, .evaluation, .failed:
                break
            }
        case .maskedInputChunk(let slice):
            fuzzExpect(decoder.maskedInputHandling == .stream, "a masked-input slice came out of an assembling decoder")
            fuzzExpect(
                slice.words.count == slice.range.count && slice.range.lowerBound >= 0
                    && slice.range.upperBound <= slice.totalWords,
                "a masked-input slice lies outside its vector")
            fuzzExpect(slice.totalWords == expected?.secure?.vectorLength, "a masked input of the wrong length")
        }
    }

    /// Input: one byte picking the site policy, then framed envelopes.
    static func coordinatorEnvelopes(_ bytes: [UInt8]) -> Int {
        var input = FuzzInput(bytes)
        let policy = TaskTargets.policies[Int(input.byte()) % TaskTargets.policies.count]
        var decoder = CoordinatorEnvelopeDecoder()
        var accepted = 0
        while !input.isAtEnd {
            guard let envelope = try? Tessera_V1_CoordinatorEnvelope(serializedBytes: input.piece()) else { continue }
            let before = decoder.lastHeader?.sequence ?? 0
            guard let inbound = try? decoder.decode(envelope) else { continue }
            accepted += 1
            let sequence = decoder.lastHeader?.sequence ?? 0
            fuzzExpect(
                sequence == envelope.header.sequence && sequence > before,
                "an accepted envelope did not advance the sequence to its own number")
            switch inbound {
            case .welcome(let welcome):
                fuzzExpect(welcome.protocolVersion == WireProtocol.version, "a Welcome of another version was accepted")
            case .heartbeat, .rejection, .leaveRound:
                break
            case .train(let spec):
                fuzzExpect(decoder.welcome != nil, "a task was accepted before Welcome")
                TaskTargets.screen(
                    architecture: spec.architecture, parameterCount: spec.parameterCount, task: spec.task,
                    secure: spec.secure, evaluation: false, round: spec.round, policy: policy)
                TaskTargets.checkRoundTrip(spec)
            case .evaluate(let spec):
                fuzzExpect(decoder.welcome != nil, "a task was accepted before Welcome")
                TaskTargets.screen(
                    architecture: spec.architecture, parameterCount: spec.parameterCount, task: nil,
                    secure: spec.secure, evaluation: true, round: spec.round, policy: policy)
            case .secAgg(_, let message):
                fuzzExpect(!message.isFromClient, "a participant's SecAgg message was accepted from the coordinator")
            }
        }
        return accepted
    }
}
