import Foundation
import SwiftProtobuf
import TesseraFederation
import TesseraSecAgg
import TesseraWire
import Testing

/// A small deterministic generator, so a failing garbage input can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func expectWireError(
    _ code: WireError.Code, field: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    let error = #expect(throws: WireError.self, sourceLocation: sourceLocation) { try body() }
    #expect(error?.code == code, "\(String(describing: error))", sourceLocation: sourceLocation)
    if let field { #expect(error?.field == field, "\(String(describing: error))", sourceLocation: sourceLocation) }
}

@Suite("Malformed bytes")
struct MalformedBytesTests {
    @Test func randomGarbageIsAnErrorOrAHarmlessMessageNeverACrash() {
        var rng = SplitMix64(state: 42)
        var refused = 0
        for length in 1...400 {
            let bytes = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
            do {
                let envelope = try Tessera_V1_ParticipantEnvelope(wireBytes: bytes)
                // Bytes that happen to parse must still pass the decoder's checks or be refused.
                var decoder = ParticipantEnvelopeDecoder()
                _ = try? decoder.decode(envelope, expecting: nil)
                var other = CoordinatorEnvelopeDecoder()
                _ = try? other.decode(try Tessera_V1_CoordinatorEnvelope(wireBytes: bytes))
            } catch {
                #expect(error.code == .malformedBytes && error.field == "tessera.v1.ParticipantEnvelope")
                refused += 1
            }
        }
        #expect(refused > 300, "most random byte strings are not valid protobuf")
    }

    @Test func everyTruncationOfATaskIsRefusedOrIncomplete() throws {
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder = try Fixtures.welcomedDecoder(&encoder)
        let bytes = try encoder.encode(
            .train(Fixtures.train()), experimentID: Fixtures.experiment, currentStage: .training
        ).wireBytes()
        var malformed = 0
        for length in 0..<bytes.count {
            do {
                let envelope = try Tessera_V1_CoordinatorEnvelope(wireBytes: bytes.prefix(length))
                var fresh = decoder
                _ = try? fresh.decode(envelope)  // a prefix that parses is a message with fields missing
            } catch {
                #expect(error.code == .malformedBytes)
                malformed += 1
            }
        }
        #expect(malformed > bytes.count / 2)
        #expect(throws: Never.self) { _ = try decoder.decode(try Tessera_V1_CoordinatorEnvelope(wireBytes: bytes)) }
    }

    @Test func truncatedLengthDelimitedFieldIsMalformed() throws {
        let chunk = Array(ModelChunker(maximumChunkBytes: 64).modelChunks(of: Fixtures.parameters(16)))[0]
        let bytes = chunk.wireBytes()
        expectWireError(.malformedBytes, field: "tessera.v1.ModelChunk") {
            _ = try Tessera_V1_ModelChunk(wireBytes: bytes.dropLast(3))
        }
    }
}

@Suite("Validation of decoded messages")
struct ValidationTests {
    static let secure = ExpectedRound.Secure(secAggRoundID: 9, participantIndex: 5, vectorLength: 8)

    // MARK: Structure

    @Test func envelopesNeedAHeaderAndABody() throws {
        var decoder = ParticipantEnvelopeDecoder()
        var envelope = Tessera_V1_ParticipantEnvelope()
        envelope.heartbeat = .init()
        expectWireError(.missingField, field: "tessera.v1.ParticipantEnvelope.header") {
            _ = try decoder.decode(envelope, expecting: nil)
        }
        envelope.header.sequence = 1
        envelope.body = nil
        expectWireError(.missingField, field: "tessera.v1.ParticipantEnvelope.body") {
            _ = try decoder.decode(envelope, expecting: nil)
        }

        var coordinator = CoordinatorEnvelopeDecoder()
        var down = Tessera_V1_CoordinatorEnvelope()
        down.header.sequence = 1
        expectWireError(.missingField, field: "tessera.v1.CoordinatorEnvelope.body") {
            _ = try coordinator.decode(down)
        }
    }

    @Test func missingOneofsAndSubmessages() throws {
        expectWireError(.missingField, field: "tessera.v1.ModelArchitecture.kind") {
            _ = try ModelArchitecture(Tessera_V1_ModelArchitecture())
        }
        expectWireError(.missingField, field: "tessera.v1.LocalOptimizer.kind") {
            _ = try LocalOptimizer(Tessera_V1_LocalOptimizer())
        }
        var task = try Tessera_V1_TrainingTask(Fixtures.tasks[0])
        task.clearOptimizer()
        expectWireError(.missingField, field: "tessera.v1.TrainingTask.optimizer") { _ = try TrainingTask(task) }
        var train = try Tessera_V1_TrainTask(TrainTaskSpec(Fixtures.train()))
        train.clearArchitecture()
        let header = EnvelopeHeader(experimentID: Fixtures.experiment, round: 3, stage: .training, sequence: 1)
        expectWireError(.missingField, field: "tessera.v1.TrainTask.architecture") {
            _ = try TrainTaskSpec(train, header: header)
        }
        var assignment = try Tessera_V1_SecureRoundAssignment(Fixtures.assignment)
        assignment.clearGraph()
        expectWireError(.missingField, field: "tessera.v1.SecureRoundAssignment.graph") {
            _ = try SecureRoundAssignment(assignment)
        }
        var payload = Tessera_V1_SecAggPayload()
        payload.body = nil
        var encoder = ParticipantEnvelopeEncoder()
        var decoder = try Fixtures.helloedDecoder(&encoder)
        var envelope = try encoder.encode(
            .secAgg(round: 3, Fixtures.clientSecAgg[0]), experimentID: Fixtures.experiment,
            currentStage: .training)[0]
        envelope.secagg = payload
        expectWireError(.missingField, field: "tessera.v1.SecAggPayload.body") {
            _ = try decoder.decode(
                envelope,
                expecting: ExpectedRound(position: Fixtures.position(.training), parameterCount: 1, secure: Self.secure)
            )
        }
    }

    // MARK: Enums

    @Test func unknownEnumValuesSurviveTheWireAndAreRefused() throws {
        var graph = try Tessera_V1_NeighbourGraph(NeighbourGraph.Kind.complete)
        graph.kind = .UNRECOGNIZED(7)
        let parsed = try Fixtures.overTheWire(graph)
        expectWireError(.unknownEnumValue, field: "tessera.v1.NeighbourGraph.kind") {
            _ = try NeighbourGraph.Kind(parsed)
        }
        graph.kind = .unspecified
        expectWireError(.missingField, field: "tessera.v1.NeighbourGraph.kind") { _ = try NeighbourGraph.Kind(graph) }

        var rejection = Tessera_V1_Rejection(Rejection(code: .staleMessage, reason: "late"))
        rejection.code = .UNRECOGNIZED(9)
        expectWireError(.unknownEnumValue, field: "tessera.v1.Rejection.code") {
            _ = try Rejection(try Fixtures.overTheWire(rejection))
        }

        var header = Tessera_V1_MessageHeader()
        header.sequence = 1
        header.stage = "warmup"
        expectWireError(.unknownEnumValue, field: "tessera.v1.MessageHeader.stage") { _ = try EnvelopeHeader(header) }
    }

    // MARK: Sizes

    @Test func negativeAndOverflowingSizes() throws {
        let header = EnvelopeHeader(experimentID: Fixtures.experiment, round: 3, stage: .training, sequence: 1)
        var train = try Tessera_V1_TrainTask(TrainTaskSpec(Fixtures.train()))
        train.parameterCount = UInt64(bitPattern: -50)  // a negative Int written as unsigned
        expectWireError(.valueOutOfRange, field: "tessera.v1.TrainTask.parameter_count") {
            _ = try TrainTaskSpec(train, header: header)
        }
        train.parameterCount = 0
        expectWireError(.valueOutOfRange, field: "tessera.v1.TrainTask.parameter_count") {
            _ = try TrainTaskSpec(train, header: header)
        }

        var task = try Tessera_V1_TrainingTask(Fixtures.tasks[0])
        task.epochs = 0
        expectWireError(.valueOutOfRange, field: "tessera.v1.TrainingTask.epochs") { _ = try TrainingTask(task) }
        task.epochs = 1
        task.optimizer.sgd.learningRate = .nan
        expectWireError(.valueOutOfRange, field: "tessera.v1.LocalOptimizer.Sgd.learning_rate") {
            _ = try TrainingTask(task)
        }

        var wireHeader = Tessera_V1_MessageHeader()
        wireHeader.sequence = 1
        wireHeader.round = .max
        expectWireError(.valueOutOfRange, field: "tessera.v1.MessageHeader.round") {
            _ = try EnvelopeHeader(wireHeader)
        }
        wireHeader.round = 1
        wireHeader.sequence = 0
        expectWireError(.valueOutOfRange, field: "tessera.v1.MessageHeader.sequence") {
            _ = try EnvelopeHeader(wireHeader)
        }

        var report = Tessera_V1_TrainingReport()
        report.sampleCount = UInt64(bitPattern: -1)
        expectWireError(.valueOutOfRange, field: "tessera.v1.TrainingReport.sample_count") {
            _ = try TrainingReport(report)
        }

        // The sending side refuses what it cannot represent instead of wrapping around.
        expectWireError(.valueOutOfRange, field: "tessera.v1.TrainingReport.sample_count") {
            _ = try Tessera_V1_TrainingReport(TrainingReport(sampleCount: -1, loss: 0, steps: 0))
        }
        expectWireError(.valueOutOfRange, field: "tessera.v1.ModelArchitecture.Mlp.hidden") {
            _ = try Tessera_V1_ModelArchitecture(.mlp(inputs: 2, hidden: [-3], classes: 2))
        }

        var assignment = try Tessera_V1_SecureRoundAssignment(Fixtures.assignment)
        assignment.participantIndex = 9  // roster is 1...8
        expectWireError(.valueOutOfRange, field: "tessera.v1.SecureRoundAssignment.participant_index") {
            _ = try SecureRoundAssignment(assignment)
        }
        assignment.participantIndex = 5
        assignment.bits = 33
        expectWireError(.valueOutOfRange, field: "tessera.v1.SecureRoundAssignment.bits") {
            _ = try SecureRoundAssignment(assignment)
        }

        var hello = try Tessera_V1_Hello(ParticipantHello(datasets: ["a": 1]))
        hello.datasets.append(hello.datasets[0])
        expectWireError(.valueOutOfRange, field: "tessera.v1.DatasetOffer.name") { _ = try ParticipantHello(hello) }
        hello = try Tessera_V1_Hello(ParticipantHello(datasets: [:]))
        hello.cores = 0
        expectWireError(.valueOutOfRange, field: "tessera.v1.Hello.cores") { _ = try ParticipantHello(hello) }
    }

    // MARK: Headers

    @Test func wrongExperimentRoundOrStageIsStale() throws {
        let report = ParticipantMessage.trained(round: 3, report: .init(sampleCount: 1, loss: 0, steps: 1))
        let cases: [(RoundPosition, String)] = [
            (
                RoundPosition(experimentID: "other", round: 3, stage: .training),
                "tessera.v1.MessageHeader.experiment_id"
            ),
            (Fixtures.position(.training, round: 4), "tessera.v1.MessageHeader.round"),
            (Fixtures.position(.shareKeys), "tessera.v1.MessageHeader.stage"),
        ]
        for (position, field) in cases {
            var encoder = ParticipantEnvelopeEncoder()
            var decoder = try Fixtures.helloedDecoder(&encoder)
            let envelope = try encoder.encode(report, experimentID: Fixtures.experiment, currentStage: .training)[0]
            expectWireError(.staleMessage, field: field) {
                _ = try decoder.decode(envelope, expecting: ExpectedRound(position: position, parameterCount: 1))
            }
        }
        var encoder = ParticipantEnvelopeEncoder()
        var decoder = try Fixtures.helloedDecoder(&encoder)
        let envelope = try encoder.encode(report, experimentID: Fixtures.experiment, currentStage: .training)[0]
        expectWireError(.staleMessage) { _ = try decoder.decode(envelope, expecting: nil) }
    }

    @Test func replayedSequenceNumbersAreRefused() throws {
        var encoder = ParticipantEnvelopeEncoder()
        var decoder = try Fixtures.helloedDecoder(&encoder)
        let expected = ExpectedRound(position: Fixtures.position(.evaluation), parameterCount: 1)
        let envelope = try encoder.encode(
            .evaluation(round: 3, .init(sampleCount: 3, loss: 1)), experimentID: Fixtures.experiment,
            currentStage: .evaluation)[0]
        _ = try decoder.decode(envelope, expecting: expected)
        expectWireError(.replayedMessage, field: "tessera.v1.MessageHeader.sequence") {
            _ = try decoder.decode(envelope, expecting: expected)
        }

        var coordinator = CoordinatorEnvelopeEncoder()
        var participant = try Fixtures.welcomedDecoder(&coordinator)
        let beat = coordinator.heartbeat()
        _ = try participant.decode(beat)
        expectWireError(.replayedMessage) { _ = try participant.decode(beat) }
    }

    // MARK: SecAgg

    func secureDecoder(
        _ stage: RoundStage = .shareKeys
    ) throws -> (ParticipantEnvelopeEncoder, ParticipantEnvelopeDecoder, ExpectedRound) {
        var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: 16)
        let decoder = try Fixtures.helloedDecoder(&encoder, maximumChunkBytes: 16)
        return (
            encoder, decoder, ExpectedRound(position: Fixtures.position(stage), parameterCount: 7, secure: Self.secure)
        )
    }

    @Test func badSecAggBytesReportTheSecAggError() throws {
        var (encoder, decoder, expected) = try secureDecoder()
        var envelope = try encoder.encode(
            .secAgg(round: 3, Fixtures.clientSecAgg[1]), experimentID: Fixtures.experiment,
            currentStage: .shareKeys)[0]
        let good = envelope.secagg.message
        for bad in [Data("not a secagg message".utf8), good.dropLast(2), good + Data([0])] {
            envelope.secagg.message = bad
            envelope.header.sequence += 1
            let error = #expect(throws: WireError.self) { _ = try decoder.decode(envelope, expecting: expected) }
            #expect(error?.code == .invalidSecAggPayload && error?.field == "tessera.v1.SecAggPayload.message")
            #expect(error?.cause is SecAggError)
        }
    }

    @Test func secAggMessagesMustBeTheParticipantsOwn() throws {
        var (encoder, decoder, expected) = try secureDecoder()
        let ok = try encoder.encode(
            .secAgg(round: 3, Fixtures.clientSecAgg[1]), experimentID: Fixtures.experiment, currentStage: .shareKeys)
        // A coordinator's message sent by a participant.
        var envelope = ok[0]
        envelope.header.sequence = 100
        envelope.secagg = Tessera_V1_SecAggPayload(Fixtures.serverSecAgg[0])
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(envelope, expecting: expected) }
        // Another participant's index.
        envelope.header.sequence = 101
        envelope.secagg = Tessera_V1_SecAggPayload(.shareKeys(ShareKeysMessage(roundID: 9, sender: 6, shares: [])))
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(envelope, expecting: expected) }
        // Another SecAgg round.
        envelope.header.sequence = 102
        envelope.secagg = Tessera_V1_SecAggPayload(.shareKeys(ShareKeysMessage(roundID: 8, sender: 5, shares: [])))
        expectWireError(.staleMessage) { _ = try decoder.decode(envelope, expecting: expected) }
        // A masked input in one piece.
        var masked = ok[0]
        masked.header.sequence = 103
        masked.header.stage = RoundStage.maskedInput.rawValue
        masked.secagg = Tessera_V1_SecAggPayload(
            .maskedInput(MaskedInputMessage(roundID: 9, sender: 5, maskedInput: [1])))
        var maskedExpected = expected
        maskedExpected.position.stage = .maskedInput
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(masked, expecting: maskedExpected) }
        // Any SecAgg message in a plaintext round.
        envelope.header.sequence = 104
        envelope.secagg = Tessera_V1_SecAggPayload(Fixtures.clientSecAgg[1])
        expectWireError(.unexpectedMessage) {
            _ = try decoder.decode(envelope, expecting: ExpectedRound(position: expected.position, parameterCount: 7))
        }
    }

    @Test func aBodyMustMatchItsHeadersStage() throws {
        var (encoder, decoder, expected) = try secureDecoder(.shareKeys)
        var envelope = try encoder.encode(
            .trained(round: 3, report: .init(sampleCount: 1, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)[0]
        envelope.header.stage = RoundStage.shareKeys.rawValue  // a late report dressed up as current
        expectWireError(.unexpectedMessage, field: "tessera.v1.MessageHeader.stage") {
            _ = try decoder.decode(envelope, expecting: expected)
        }
    }

    // MARK: Parameter counts

    @Test func updatesAndMaskedInputsMustHaveTheExpectedLength() throws {
        var encoder = ParticipantEnvelopeEncoder()
        var decoder = try Fixtures.helloedDecoder(&encoder)
        let plaintext = ExpectedRound(position: Fixtures.position(.training), parameterCount: 50)
        let update = try encoder.encode(
            .update(round: 3, delta: Fixtures.parameters(49), report: .init(sampleCount: 1, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)
        expectWireError(.parameterCountMismatch, field: "tessera.v1.TrainingReport.update_parameter_count") {
            _ = try decoder.decode(update[0], expecting: plaintext)
        }
        // Its chunks are then orphans.
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(update[1], expecting: plaintext) }

        var (secureEncoder, secureDecoder, expected) = try secureDecoder(.maskedInput)
        let masked = try secureEncoder.encode(
            .secAgg(round: 3, .maskedInput(MaskedInputMessage(roundID: 9, sender: 5, maskedInput: [1, 2, 3]))),
            experimentID: Fixtures.experiment, currentStage: .maskedInput)
        expectWireError(.parameterCountMismatch, field: "tessera.v1.MaskedInputChunk.total_words") {
            _ = try secureDecoder.decode(masked[0], expecting: expected)
        }

        let spec = TrainTaskSpec(Fixtures.train(parameters: Fixtures.parameters(50)))
        expectWireError(.parameterCountMismatch, field: "tessera.v1.TrainTask.parameter_count") {
            _ = try spec.instruction(parameters: Fixtures.parameters(51))
        }
        expectWireError(.unexpectedMessage) {
            // A plaintext update announced in a secure round.
            var again = ParticipantEnvelopeEncoder()
            var fresh = try Fixtures.helloedDecoder(&again)
            let announced = try again.encode(
                .update(round: 3, delta: [1], report: .init(sampleCount: 1, loss: 0, steps: 1)),
                experimentID: Fixtures.experiment, currentStage: .training)
            _ = try fresh.decode(
                announced[0],
                expecting: ExpectedRound(
                    position: Fixtures.position(.training), parameterCount: 1,
                    secure: Self.secure))
        }
    }

    /// Found by the participant_envelopes fuzz target: the announcement was checked against a
    /// plaintext expectation, the chunk that completed the update against a secure one.
    @Test func aPlaintextUpdateChunkIsRefusedInASecureRoundWhateverWasAnnounced() throws {
        var encoder = ParticipantEnvelopeEncoder()
        var decoder = try Fixtures.helloedDecoder(&encoder)
        let plaintext = ExpectedRound(position: Fixtures.position(.training), parameterCount: 2)
        let secure = ExpectedRound(position: Fixtures.position(.training), parameterCount: 2, secure: Self.secure)
        let update = try encoder.encode(
            .update(round: 3, delta: [1, 2], report: .init(sampleCount: 1, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)
        try #require(update.count == 2)
        #expect(try decoder.decode(update[0], expecting: plaintext) == nil)
        #expect(decoder.hasPartialMessage)
        expectWireError(.unexpectedMessage, field: "tessera.v1.ParticipantEnvelope.plaintext_update_chunk") {
            _ = try decoder.decode(update[1], expecting: secure)
        }
        #expect(!decoder.hasPartialMessage)
    }

    @Test func chunkedMessagesMustNotBeInterleaved() throws {
        var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: 8)
        var decoder = try Fixtures.helloedDecoder(&encoder, maximumChunkBytes: 8)
        let expected = ExpectedRound(position: Fixtures.position(.training), parameterCount: 6)
        let update = try encoder.encode(
            .update(round: 3, delta: Fixtures.parameters(6), report: .init(sampleCount: 1, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)
        #expect(update.count == 4)
        #expect(try decoder.decode(update[0], expecting: expected) == nil)
        #expect(try decoder.decode(update[1], expecting: expected) == nil)
        guard case .heartbeat = try decoder.decode(encoder.heartbeat(), expecting: expected) else {
            Issue.record("heartbeats may interleave"); return
        }
        // Skipping a chunk is a gap; the partial update is dropped and the session goes on.
        var skipped = update[3]
        skipped.header.sequence = encoder.lastSequence + 1  // sent after the heartbeat
        expectWireError(.chunkOutOfOrder) { _ = try decoder.decode(skipped, expecting: expected) }
        #expect(!decoder.hasPartialMessage)
        _ = encoder.heartbeat()  // burn the number the re-stamped chunk used
        let again = try encoder.encode(
            .trained(round: 3, report: .init(sampleCount: 2, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)[0]
        guard case .message(.trained(3, let back)) = try decoder.decode(again, expecting: expected) else {
            Issue.record("the session should recover"); return
        }
        // Anything but a heartbeat or a chunk in the middle of an update is refused, and drops it.
        let second = try encoder.encode(
            .update(round: 3, delta: Fixtures.parameters(6), report: .init(sampleCount: 1, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)
        #expect(try decoder.decode(second[0], expecting: expected) == nil)
        #expect(try decoder.decode(second[1], expecting: expected) == nil)
        let report = try encoder.encode(
            .trained(round: 3, report: .init(sampleCount: 1, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)[0]
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(report, expecting: expected) }
        #expect(!decoder.hasPartialMessage)
        #expect(back.sampleCount == 2)
    }

    // MARK: Session order and versions

    @Test func participantSessionOrder() throws {
        var encoder = ParticipantEnvelopeEncoder()
        var decoder = ParticipantEnvelopeDecoder()
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(encoder.heartbeat(), expecting: nil) }
        _ = try decoder.decode(try encoder.hello(ParticipantHello(datasets: [:])), expecting: nil)
        expectWireError(.unexpectedMessage) {
            _ = try decoder.decode(try encoder.hello(ParticipantHello(datasets: [:])), expecting: nil)
        }

        var newer = ParticipantEnvelopeDecoder()
        var helloFromTheFuture = try encoder.hello(ParticipantHello(datasets: [:], protocolVersion: 2))
        helloFromTheFuture.header.sequence = 1
        let error = #expect(throws: WireError.self) { _ = try newer.decode(helloFromTheFuture, expecting: nil) }
        #expect(error?.code == .unsupportedProtocolVersion)
        let rejection = Rejection(error!, rejectedSequence: 1)
        #expect(rejection.code == .unsupportedProtocolVersion && rejection.fatal)
    }

    @Test func coordinatorSessionOrderAndStages() throws {
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder = CoordinatorEnvelopeDecoder()
        let task = try encoder.encode(
            .train(Fixtures.train()), experimentID: Fixtures.experiment, currentStage: .training)
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(task) }
        // A rejection may answer the hello instead of a welcome.
        guard
            case .rejection = try decoder.decode(
                try encoder.rejection(Rejection(code: .protocolViolation, reason: "no")))
        else {
            Issue.record("rejection before welcome"); return
        }
        var future = try encoder.welcome(SessionWelcome(sessionID: "s", site: "a", protocolVersion: 7))
        expectWireError(.unsupportedProtocolVersion, field: "tessera.v1.Welcome.protocol_version") {
            _ = try decoder.decode(future)
        }
        future = try encoder.welcome(SessionWelcome(sessionID: "s", site: "a"))
        _ = try decoder.decode(future)

        var wrongStage = try encoder.encode(
            .train(Fixtures.train()), experimentID: Fixtures.experiment, currentStage: .training)
        wrongStage.header.stage = RoundStage.evaluation.rawValue
        expectWireError(.unexpectedMessage, field: "tessera.v1.MessageHeader.stage") {
            _ = try decoder.decode(wrongStage)
        }

        var noExperiment = try encoder.encode(
            .leaveRound(round: 3, reason: "x"), experimentID: Fixtures.experiment, currentStage: .training)
        noExperiment.header.experimentID = ""
        expectWireError(.missingField, field: "tessera.v1.MessageHeader.experiment_id") {
            _ = try decoder.decode(noExperiment)
        }

        var clientMessage = try encoder.encode(
            .secAgg(round: 3, Fixtures.serverSecAgg[0]), experimentID: Fixtures.experiment,
            currentStage: .shareKeys)
        clientMessage.secagg = Tessera_V1_SecAggPayload(Fixtures.clientSecAgg[1])
        expectWireError(.unexpectedMessage) { _ = try decoder.decode(clientMessage) }

        var chunk = try encoder.encode(
            .secAgg(round: 3, Fixtures.serverSecAgg[1]), experimentID: Fixtures.experiment,
            currentStage: .maskedInput)
        chunk.secagg.maskedInputChunk = Tessera_V1_MaskedInputChunk()
        expectWireError(.unexpectedMessage, field: "tessera.v1.SecAggPayload.masked_input_chunk") {
            _ = try decoder.decode(chunk)
        }

        var badDigest = try encoder.encode(
            .train(Fixtures.train()), experimentID: Fixtures.experiment, currentStage: .training)
        badDigest.trainTask.modelDigest = "sha256:1234"
        expectWireError(.valueOutOfRange, field: "tessera.v1.TrainTask.model_digest") {
            _ = try decoder.decode(badDigest)
        }
    }

    @Test func encodersRefuseTheOtherSidesMessages() throws {
        var participant = ParticipantEnvelopeEncoder()
        expectWireError(.unexpectedMessage) {
            _ = try participant.encode(
                .secAgg(round: 1, Fixtures.serverSecAgg[0]), experimentID: "e", currentStage: .shareKeys)
        }
        var coordinator = CoordinatorEnvelopeEncoder()
        expectWireError(.unexpectedMessage) {
            _ = try coordinator.encode(
                .secAgg(round: 1, Fixtures.clientSecAgg[0]), experimentID: "e", currentStage: .training)
        }
        expectWireError(.staleMessage) {
            _ = try coordinator.encode(.train(Fixtures.train()), experimentID: "another", currentStage: .training)
        }
    }
}
