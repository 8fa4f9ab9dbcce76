import Foundation
import SwiftProtobuf
import TesseraCrypto
import TesseraFederation
import TesseraSecAgg
import TesseraWire

/// Sample domain values shared by the wire tests.
enum Fixtures {
    static let experiment = "mnist-fedavg"

    static func keys(_ id: UInt32, signed: Bool) -> AdvertisedKeys {
        AdvertisedKeys(
            participant: id, encryptionKey: [UInt8](repeating: UInt8(id), count: 32),
            maskingKey: [UInt8](repeating: UInt8(id) ^ 0xff, count: 32),
            signature: signed ? [UInt8](repeating: 7, count: 64) : [])
    }

    static let share = ShamirShare(x: 5, values: [1, 2, 3, (1 << 61) - 2])

    /// Every SecAgg message a participant sends whole (the masked input is chunked).
    static let clientSecAgg: [SecAggMessage] = [
        .advertiseKeys(AdvertiseKeysMessage(roundID: 9, sender: 5, keys: keys(5, signed: true))),
        .shareKeys(
            ShareKeysMessage(
                roundID: 9, sender: 5,
                shares: [
                    EncryptedShare(peer: 6, ciphertext: [1, 2, 3]), EncryptedShare(peer: 8, ciphertext: []),
                ])),
        .consistencySignature(
            ConsistencySignatureMessage(roundID: 9, sender: 5, signature: [UInt8](repeating: 3, count: 64))),
        .unmaskingResponse(
            UnmaskingResponseMessage(
                roundID: 9, sender: 5,
                selfMaskShares: [PeerShare(peer: 6, share: share, nonce: [UInt8](repeating: 1, count: 32))],
                keyShares: [PeerShare(peer: 7, share: share, nonce: [UInt8](repeating: 2, count: 32))])),
    ]

    /// Every SecAgg message the coordinator sends.
    static let serverSecAgg: [SecAggMessage] = [
        .shareKeysRequest(
            ShareKeysRequest(roundID: 9, recipient: 5, neighbours: [keys(6, signed: false), keys(7, signed: true)])),
        .maskedInputRequest(
            MaskedInputRequest(roundID: 9, recipient: 5, shares: [EncryptedShare(peer: 6, ciphertext: [9, 9])])),
        .consistencyCheckRequest(ConsistencyCheckRequest(roundID: 9, recipient: 5, survivors: [1, 5, 6, 100])),
        .unmaskingRequest(
            UnmaskingRequest(
                roundID: 9, recipient: 5, survivors: [5, 6], dropped: [7],
                signatures: [ParticipantSignature(participant: 6, signature: [UInt8](repeating: 1, count: 64))])),
    ]

    static let assignment = SecureRoundAssignment(
        roundID: 9, participantIndex: 5, rosterSize: 8, graph: .harary(degree: 4, seed: Array(0..<16)), threshold: 5,
        clip: 2.5, bits: 20, maxWeight: 600)

    static let architectures: [ModelArchitecture] = [
        .logisticRegression(inputs: 784, classes: 10),
        .mlp(inputs: 20, hidden: [64, 32], classes: 2),
        .mlp(inputs: 3, hidden: [], classes: 2),
        .mcmahanCNN(classes: 10),
    ]

    static let tasks: [TrainingTask] = [
        TrainingTask(
            epochs: 2, batchSize: 16,
            optimizer: .sgd(learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4),
            proximalMu: 0.01, gradientClipNorm: 5, seed: .max),
        TrainingTask(
            epochs: 1, batchSize: 32,
            optimizer: .adam(learningRate: 1e-3, beta1: 0.8, beta2: 0.99, epsilon: 1e-7, weightDecay: 0),
            proximalMu: 0, gradientClipNorm: nil, seed: 0),
    ]

    static func parameters(_ count: Int, seed: Float = 0.25) -> [Float] {
        (0..<count).map { Float($0) * seed - Float(count) / 7 }
    }

    static func train(
        round: Int = 3, architecture: ModelArchitecture = architectures[0], task: TrainingTask = tasks[0],
        secure: SecureRoundAssignment? = assignment, parameters: [Float] = parameters(50)
    ) -> TrainInstruction {
        TrainInstruction(
            experimentID: experiment, round: round, modelVersion: ModelVersion(major: 1, minor: 2, patch: 3),
            architecture: architecture, datasetName: "mnist", parameters: parameters, task: task, secure: secure)
    }

    static func position(_ stage: RoundStage, round: Int = 3) -> RoundPosition {
        RoundPosition(experimentID: experiment, round: round, stage: stage)
    }

    /// A coordinator-side decoder that has already accepted a Hello (sequence 1).
    static func helloedDecoder(
        _ encoder: inout ParticipantEnvelopeEncoder,
        handling: ParticipantEnvelopeDecoder.MaskedInputHandling = .assemble,
        maximumChunkBytes: Int = WireProtocol.defaultChunkBytes
    ) throws -> ParticipantEnvelopeDecoder {
        var decoder = ParticipantEnvelopeDecoder(maximumChunkBytes: maximumChunkBytes, maskedInputHandling: handling)
        _ = try decoder.decode(try encoder.hello(ParticipantHello(datasets: ["mnist": 600])), expecting: nil)
        return decoder
    }

    /// A participant-side decoder that has already accepted a Welcome.
    static func welcomedDecoder(_ encoder: inout CoordinatorEnvelopeEncoder) throws -> CoordinatorEnvelopeDecoder {
        var decoder = CoordinatorEnvelopeDecoder()
        _ = try decoder.decode(try encoder.welcome(SessionWelcome(sessionID: "s-1", site: "site-a")))
        return decoder
    }

    /// Serializes and parses again, as the network would.
    static func overTheWire<M: SwiftProtobuf.Message>(_ message: M) throws -> M {
        try M(wireBytes: message.wireBytes())
    }
}
