import Foundation
import SwiftProtobuf
import TesseraFederation
import TesseraSecAgg
import TesseraWire
import Testing

/// Every message kind, encoded by one side, serialized to protobuf bytes, parsed and decoded by
/// the other side, comes back as the same domain value.
@Suite("Round trips through protobuf bytes")
struct RoundTripTests {
    // MARK: Participant → coordinator

    /// Sends `message` through a fresh encoder/decoder pair and returns what the decoder produced.
    func deliver(
        _ message: ParticipantMessage, stage: RoundStage, expected: ExpectedRound, chunkBytes: Int = 64
    ) throws -> [ParticipantInbound] {
        var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: chunkBytes)
        var decoder = try Fixtures.helloedDecoder(&encoder, maximumChunkBytes: chunkBytes)
        var out: [ParticipantInbound] = []
        for envelope in try encoder.encode(message, experimentID: Fixtures.experiment, currentStage: stage) {
            if let inbound = try decoder.decode(try Fixtures.overTheWire(envelope), expecting: expected) {
                out.append(inbound)
            }
        }
        #expect(!decoder.hasPartialMessage)
        return out
    }

    @Test("only the first envelope of an upload the receiver assembles opens one")
    func opensUpload() throws {
        var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: 64)
        let report = TrainingReport(sampleCount: 10, loss: 0.5, accuracy: nil, steps: 2)
        let update = try encoder.encode(
            .update(round: 3, delta: Fixtures.parameters(40), report: report), experimentID: Fixtures.experiment,
            currentStage: .training)
        #expect(update.count > 2)
        #expect(update.map(\.opensUpload) == [true] + [Bool](repeating: false, count: update.count - 1))
        let masked = try encoder.encode(
            .secAgg(
                round: 3,
                .maskedInput(MaskedInputMessage(roundID: 1, sender: 2, maskedInput: [UInt32](repeating: 7, count: 40)))),
            experimentID: Fixtures.experiment, currentStage: .maskedInput)
        #expect(masked.count > 1)
        #expect(masked.map(\.opensUpload) == [true] + [Bool](repeating: false, count: masked.count - 1))
        // A report without an update (a secure round's) and a heartbeat open nothing.
        let trained = try encoder.encode(
            .trained(round: 3, report: report), experimentID: Fixtures.experiment, currentStage: .training)
        #expect(trained.map(\.opensUpload) == [false])
        #expect(!encoder.heartbeat().opensUpload)
    }

    @Test func helloAndHeartbeat() throws {
        var encoder = ParticipantEnvelopeEncoder()
        var decoder = ParticipantEnvelopeDecoder()
        let hello = ParticipantHello(datasets: ["mnist": 600, "cifar": 0], cores: 8, softwareVersion: "tessera 0.3")
        let first = try decoder.decode(try Fixtures.overTheWire(try encoder.hello(hello)), expecting: nil)
        guard case .hello(let decoded) = first else {
            Issue.record("not a hello: \(String(describing: first))"); return
        }
        #expect(decoded == hello)
        #expect(
            decoded.descriptor(site: "site-a")
                == ParticipantDescriptor(
                    site: "site-a", datasets: hello.datasets, cores: 8,
                    softwareVersion: "tessera 0.3"))
        let beat = try decoder.decode(try Fixtures.overTheWire(encoder.heartbeat()), expecting: nil)
        guard case .heartbeat = beat else { Issue.record("not a heartbeat"); return }
        #expect(decoder.lastSequence == 2)
    }

    @Test func trainingReportOfASecureRound() throws {
        let report = TrainingReport(sampleCount: 600, loss: 0.31, accuracy: 0.9, steps: 38)
        let expected = ExpectedRound(
            position: Fixtures.position(.training), parameterCount: 50,
            secure: .init(secAggRoundID: 9, participantIndex: 5, vectorLength: 51))
        let out = try deliver(.trained(round: 3, report: report), stage: .training, expected: expected)
        guard out.count == 1, case .message(.trained(let round, let decoded)) = out[0] else {
            Issue.record("unexpected \(out)"); return
        }
        #expect(round == 3 && decoded == report)
    }

    @Test(arguments: [0, 1, 15, 16, 17, 1000])
    func plaintextUpdate(count: Int) throws {
        let delta = Fixtures.parameters(count, seed: -0.125)
        let report = TrainingReport(sampleCount: 60, loss: .nan, accuracy: nil, steps: 4)
        let expected = ExpectedRound(position: Fixtures.position(.training), parameterCount: count)
        let out = try deliver(.update(round: 3, delta: delta, report: report), stage: .training, expected: expected)
        guard out.count == 1, case .message(.update(let round, let decodedDelta, let decodedReport)) = out[0] else {
            Issue.record("unexpected \(out)"); return
        }
        #expect(round == 3 && decodedDelta == delta)
        #expect(
            decodedReport.sampleCount == 60 && decodedReport.loss?.isNaN == true && decodedReport.accuracy == nil
                && decodedReport.steps == 4)
    }

    @Test(arguments: Fixtures.clientSecAgg)
    func clientSecAggMessage(_ message: SecAggMessage) throws {
        let stage = RoundStage(message.stage)
        let expected = ExpectedRound(
            position: Fixtures.position(stage), parameterCount: 50,
            secure: .init(secAggRoundID: 9, participantIndex: 5, vectorLength: 51))
        let out = try deliver(.secAgg(round: 3, message), stage: stage, expected: expected)
        guard out.count == 1, case .message(.secAgg(let round, let decoded)) = out[0] else {
            Issue.record("unexpected \(out)"); return
        }
        #expect(round == 3 && decoded == message)
    }

    /// A secure evaluation opens its SecAgg session with the evaluation task, so its AdvertiseKeys
    /// travels in the evaluation stage: stamped as such by the site, accepted as such by the
    /// coordinator (which is in that stage), where a training round's travels in training.
    @Test func advertiseKeysOfASecureEvaluation() throws {
        let advertise = Fixtures.clientSecAgg[0]
        let expected = ExpectedRound(
            position: Fixtures.position(.evaluation), parameterCount: 50,
            secure: .init(secAggRoundID: 9, participantIndex: 5, vectorLength: 4))
        var encoder = ParticipantEnvelopeEncoder()
        let envelopes = try encoder.encode(
            .secAgg(round: 3, advertise), experimentID: Fixtures.experiment, currentStage: .evaluation)
        #expect(try envelopes.map { try EnvelopeHeader($0.header).stage } == [.evaluation])
        let out = try deliver(.secAgg(round: 3, advertise), stage: .evaluation, expected: expected)
        guard out.count == 1, case .message(.secAgg(3, let decoded)) = out[0] else {
            Issue.record("unexpected \(out)"); return
        }
        #expect(decoded == advertise)
    }

    @Test(arguments: [0, 1, 16, 17, 1001])
    func maskedInputAssembled(words count: Int) throws {
        let words = (0..<count).map { UInt32(truncatingIfNeeded: $0 &* 2_654_435_761) }
        let message = SecAggMessage.maskedInput(MaskedInputMessage(roundID: 9, sender: 5, maskedInput: words))
        let expected = ExpectedRound(
            position: Fixtures.position(.maskedInput), parameterCount: 50,
            secure: .init(secAggRoundID: 9, participantIndex: 5, vectorLength: count))
        let out = try deliver(.secAgg(round: 3, message), stage: .maskedInput, expected: expected)
        guard out.count == 1, case .message(.secAgg(3, let decoded)) = out[0] else {
            Issue.record("unexpected \(out)"); return
        }
        #expect(decoded == message)
    }

    @Test func maskedInputStreamedIntoARunningSum() throws {
        let words = (0..<1001).map { UInt32.max - UInt32($0) }
        var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: 64)
        var decoder = try Fixtures.helloedDecoder(&encoder, handling: .stream, maximumChunkBytes: 64)
        let expected = ExpectedRound(
            position: Fixtures.position(.maskedInput), parameterCount: 1000,
            secure: .init(secAggRoundID: 9, participantIndex: 5, vectorLength: 1001))
        var sum = [UInt32](repeating: 1, count: 1001)
        var lastSeen = false
        let envelopes = try encoder.encode(
            .secAgg(round: 3, .maskedInput(MaskedInputMessage(roundID: 9, sender: 5, maskedInput: words))),
            experimentID: Fixtures.experiment, currentStage: .maskedInput)
        #expect(envelopes.count == 63)  // 16 words per 64-byte chunk
        for envelope in envelopes {
            guard
                case .maskedInputChunk(let slice) = try decoder.decode(
                    try Fixtures.overTheWire(envelope), expecting: expected)
            else {
                Issue.record("streaming mode must hand on every chunk"); return
            }
            #expect(!lastSeen && slice.totalWords == 1001 && slice.sender == 5 && slice.secAggRoundID == 9)
            for (i, word) in zip(slice.range, slice.words) { sum[i] &+= word }
            lastSeen = slice.isLast
        }
        #expect(lastSeen)
        #expect(sum == words.map { $0 &+ 1 })
    }

    @Test func evaluationAndFailure() throws {
        let metrics = EvaluationMetrics(sampleCount: 120, loss: 0.4, accuracy: 0.85, auc: 0.91)
        let out = try deliver(
            .evaluation(round: 3, metrics), stage: .evaluation,
            expected: ExpectedRound(position: Fixtures.position(.evaluation), parameterCount: 50))
        guard case .message(.evaluation(3, let decoded)) = out.first else { Issue.record("unexpected \(out)"); return }
        #expect(decoded == metrics)

        let failed = try deliver(
            .failed(round: 3, reason: "dataset mnist not found"), stage: .shareKeys,
            expected: ExpectedRound(position: Fixtures.position(.shareKeys), parameterCount: 50))
        guard case .message(.failed(3, let reason)) = failed.first else { Issue.record("unexpected \(failed)"); return }
        #expect(reason == "dataset mnist not found")
    }

    // MARK: Coordinator → participant

    @Test func welcomeRejectionHeartbeat() throws {
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder = CoordinatorEnvelopeDecoder()
        let welcome = SessionWelcome(
            sessionID: "s-42", site: "site-a", heartbeatInterval: .milliseconds(2500), maximumChunkBytes: 4096)
        guard case .welcome(let decoded) = try decoder.decode(try Fixtures.overTheWire(try encoder.welcome(welcome)))
        else {
            Issue.record("not a welcome"); return
        }
        #expect(decoded == welcome)
        guard case .heartbeat = try decoder.decode(try Fixtures.overTheWire(encoder.heartbeat())) else {
            Issue.record("not a heartbeat"); return
        }
        for code in Rejection.Code.allCases {
            let rejection = Rejection(
                code: code, reason: "because \(code)", rejectedSequence: 17, fatal: code == .unsupportedProtocolVersion)
            let envelope = try encoder.rejection(rejection, at: Fixtures.position(.training))
            guard case .rejection(let back) = try decoder.decode(try Fixtures.overTheWire(envelope)) else {
                Issue.record("not a rejection"); return
            }
            #expect(back == rejection)
            #expect(decoder.lastHeader?.stage == .training && decoder.lastHeader?.round == 3)
        }
    }

    @Test(arguments: Fixtures.architectures, [false, true])
    func trainTask(architecture: ModelArchitecture, secure: Bool) throws {
        for task in Fixtures.tasks {
            let instruction = Fixtures.train(
                architecture: architecture, task: task, secure: secure ? Fixtures.assignment : nil)
            var encoder = CoordinatorEnvelopeEncoder()
            var decoder = try Fixtures.welcomedDecoder(&encoder)
            let envelope = try encoder.encode(
                .train(instruction), experimentID: Fixtures.experiment, currentStage: .selection)
            #expect(envelope.trainTask.modelDigest == ModelDigest(parameters: instruction.parameters).hex)
            guard case .train(let spec) = try decoder.decode(try Fixtures.overTheWire(envelope)) else {
                Issue.record("not a task"); return
            }
            #expect(spec == TrainTaskSpec(instruction))
            let rebuilt = try spec.instruction(parameters: instruction.parameters)
            #expect(rebuilt.experimentID == instruction.experimentID && rebuilt.round == instruction.round)
            #expect(
                rebuilt.modelVersion == instruction.modelVersion && rebuilt.architecture == instruction.architecture)
            #expect(rebuilt.datasetName == instruction.datasetName && rebuilt.parameters == instruction.parameters)
            #expect(rebuilt.task == instruction.task && rebuilt.secure == instruction.secure)
            #expect(decoder.lastHeader?.stage == .training)
        }
    }

    @Test func completeGraphAssignment() throws {
        var assignment = Fixtures.assignment
        assignment.graph = .complete
        let back = try SecureRoundAssignment(try Fixtures.overTheWire(try Tessera_V1_SecureRoundAssignment(assignment)))
        #expect(back == assignment)
    }

    @Test func evaluateTask() throws {
        let instruction = EvaluateInstruction(
            experimentID: Fixtures.experiment, round: 4, modelVersion: ModelVersion(major: 1, minor: 0, patch: 4),
            architecture: .mlp(inputs: 5, hidden: [3], classes: 2), datasetName: "clinical",
            parameters: Fixtures.parameters(26))
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder = try Fixtures.welcomedDecoder(&encoder)
        let digest = ModelDigest(parameters: instruction.parameters)
        let envelope = try encoder.encode(
            .evaluate(instruction), experimentID: Fixtures.experiment, currentStage: .aggregation,
            modelDigest: digest)
        guard case .evaluate(let spec) = try decoder.decode(try Fixtures.overTheWire(envelope)) else {
            Issue.record("not a task"); return
        }
        #expect(spec.modelDigest == digest && spec.round == 4 && spec.parameterCount == 26)
        let rebuilt = try spec.instruction(parameters: instruction.parameters)
        #expect(rebuilt.architecture == instruction.architecture && rebuilt.parameters == instruction.parameters)
        #expect(rebuilt.modelVersion == instruction.modelVersion && rebuilt.datasetName == "clinical")
    }

    @Test(arguments: Fixtures.serverSecAgg)
    func serverSecAggMessage(_ message: SecAggMessage) throws {
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder = try Fixtures.welcomedDecoder(&encoder)
        let envelope = try encoder.encode(
            .secAgg(round: 3, message), experimentID: Fixtures.experiment, currentStage: .training)
        let inbound = try decoder.decode(try Fixtures.overTheWire(envelope))
        guard case .secAgg(3, let decoded) = inbound else { Issue.record("unexpected \(inbound)"); return }
        #expect(decoded == message)
        #expect(decoder.lastHeader?.stage == RoundStage(message.stage))
        guard case .secAgg(3, let domain)? = inbound.coordinatorMessage else {
            Issue.record("no domain message"); return
        }
        #expect(domain == message)
    }

    @Test func leaveRound() throws {
        var encoder = CoordinatorEnvelopeEncoder()
        var decoder = try Fixtures.welcomedDecoder(&encoder)
        let envelope = try encoder.encode(
            .leaveRound(round: 3, reason: "deadline passed"), experimentID: Fixtures.experiment,
            currentStage: .unmasking)
        guard case .leaveRound(3, let reason) = try decoder.decode(try Fixtures.overTheWire(envelope)) else {
            Issue.record("not a leave"); return
        }
        #expect(reason == "deadline passed" && decoder.lastHeader?.stage == .unmasking)
    }

    @Test func modelChunksRoundTrip() throws {
        let parameters = Fixtures.parameters(1001)
        let chunks = ModelChunker(maximumChunkBytes: 400).modelChunks(of: parameters)
        var assembler = ChunkAssembler.model(digest: chunks.digest, parameterCount: 1001)
        for chunk in chunks { try assembler.append(try Fixtures.overTheWire(chunk)) }
        #expect(try assembler.finish() == parameters)
        let request = try Fixtures.overTheWire(Tessera_V1_FetchModelRequest.with { $0.digest = chunks.digest.hex })
        #expect(try ModelDigest(hex: request.digest) == chunks.digest)
    }
}
