import Foundation
import SwiftProtobuf
import TesseraCrypto
import TesseraFederation
import TesseraFuzzTargets
import TesseraPKI
import TesseraSecAgg
import TesseraSupport
import TesseraTensor
import TesseraWire
import Testing

/// Writes the seed corpora of `Fuzz/Corpus/` from Tessera's own encoders: valid messages,
/// sequences and files, which the fuzzer then mutates. Run by `Scripts/fuzz-seeds`
/// (`TESSERA_WRITE_FUZZ_SEEDS=1`); skipped otherwise.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["TESSERA_WRITE_FUZZ_SEEDS"] == "1"))
struct FuzzSeedWriter {
    @Test func writeSeeds() throws {
        let seeds: [FuzzTarget: [String: [UInt8]]] = [
            .participantEnvelopes: try ParticipantSeeds.all(),
            .coordinatorEnvelopes: try CoordinatorSeeds.all(),
            .secAggMessage: SecAggSeeds.messages(),
            .shamirShare: try SecAggSeeds.shares(),
            .modelArchitecture: try TaskSeeds.architectures(),
            .trainTask: try TaskSeeds.tasks(),
            .experimentYAML: try ConfigSeeds.experiments(),
            .siteYAML: ConfigSeeds.sites(),
            .revocationList: try RevocationSeeds.lists(),
            .safetensors: try FileSeeds.safetensors(),
            .csv: try FileSeeds.csv(),
            .npy: FileSeeds.npy(),
            .idx: FileSeeds.idx(),
        ]
        for target in FuzzTarget.allCases {
            let directory = fuzzDirectory.appendingPathComponent("Corpus").appendingPathComponent(target.rawValue)
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (name, bytes) in seeds[target] ?? [:] {
                target.run(bytes)
                try Data(bytes).write(to: directory.appendingPathComponent(name))
            }
        }
    }
}

/// A sequence input for the envelope targets: a setup byte, then `control, framed envelope`.
private func sequence(
    setup: UInt8, _ envelopes: [Tessera_V1_ParticipantEnvelope], control: (Tessera_V1_ParticipantEnvelope) -> UInt8
) throws -> [UInt8] {
    try envelopes.reduce([setup]) { $0 + [control($1)] + FuzzInput.framed(try wire($1)) }
}

/// The protobuf encoding of a message.
private func wire(_ message: some SwiftProtobuf.Message) throws -> [UInt8] {
    try message.serializedBytes()
}

private let experimentID = "fuzz"
private let round = 3

enum ParticipantSeeds {
    /// The control byte that makes the target expect this envelope's own round and stage.
    static func control(_ envelope: Tessera_V1_ParticipantEnvelope, secure: Bool) -> UInt8 {
        let stage = RoundStage(rawValue: envelope.header.stage).flatMap { RoundStage.allCases.firstIndex(of: $0) }
        return UInt8(1 | (stage ?? 1) << 2) | (secure ? 0x20 : 0)
    }

    static func all() throws -> [String: [UInt8]] {
        var seeds: [String: [UInt8]] = [:]
        let report = TrainingReport(sampleCount: 120, loss: 0.5, accuracy: 0.75, steps: 4)
        let hello = ParticipantHello(datasets: ["clinical-risk": 120], cores: 2, softwareVersion: "fuzz")
        for (setup, chunkBytes) in [(UInt8(0), 16), (UInt8(1), 64), (UInt8(2), 4096)] {
            var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: chunkBytes)
            var envelopes = [try encoder.hello(hello), encoder.heartbeat()]
            envelopes += try encoder.encode(
                .update(round: round, delta: [0.5, -1, 2, 0, 1e-3, 7], report: report), experimentID: experimentID,
                currentStage: .training)
            envelopes += try encoder.encode(
                .evaluation(round: round, EvaluationMetrics(sampleCount: 30, loss: 0.4, accuracy: 0.8, auc: 0.9)),
                experimentID: experimentID, currentStage: .evaluation)
            envelopes += try encoder.encode(
                .failed(round: round, reason: "out of memory"), experimentID: experimentID, currentStage: .training)
            seeds["plaintext-\(chunkBytes)"] = try sequence(setup: setup, envelopes) { control($0, secure: false) }
        }
        let keys = AdvertisedKeys(
            participant: 2, encryptionKey: [UInt8](repeating: 1, count: 32),
            maskingKey: [UInt8](repeating: 2, count: 32))
        let share = ShamirShare(x: 3, values: [1, 2, 3, 4, 5])
        let secure: [ParticipantMessage] = [
            .trained(round: round, report: report),
            .secAgg(round: round, .advertiseKeys(AdvertiseKeysMessage(roundID: 9, sender: 2, keys: keys))),
            .secAgg(
                round: round,
                .shareKeys(
                    ShareKeysMessage(
                        roundID: 9, sender: 2,
                        shares: [EncryptedShare(peer: 1, ciphertext: [UInt8](repeating: 7, count: 48))]
                    ))),
            .secAgg(
                round: round, .maskedInput(MaskedInputMessage(roundID: 9, sender: 2, maskedInput: [1, 2, 3, 4, 5]))),
            .secAgg(
                round: round,
                .consistencySignature(
                    ConsistencySignatureMessage(roundID: 9, sender: 2, signature: [UInt8](repeating: 4, count: 64)))),
            .secAgg(
                round: round,
                .unmaskingResponse(
                    UnmaskingResponseMessage(
                        roundID: 9, sender: 2,
                        selfMaskShares: [PeerShare(peer: 1, share: share, nonce: [UInt8](repeating: 7, count: 32))],
                        keyShares: []))),
        ]
        for (setup, name) in [(UInt8(0), "secure-assembled"), (UInt8(8), "secure-streamed")] {
            var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: 16)
            var envelopes = [try encoder.hello(hello)]
            for message in secure {
                envelopes += try encoder.encode(message, experimentID: experimentID, currentStage: .training)
            }
            seeds[name] = try sequence(setup: setup, envelopes) { control($0, secure: true) }
        }
        // Near misses: a replayed envelope, an update without its report, a second Hello.
        var encoder = ParticipantEnvelopeEncoder(maximumChunkBytes: 16)
        let first = try encoder.hello(hello)
        let update = try encoder.encode(
            .update(round: round, delta: [1, 2, 3, 4, 5, 6], report: report), experimentID: experimentID,
            currentStage: .training)
        let wrong = [first, first] + update.dropFirst() + update + [try encoder.hello(hello)]
        seeds["near-misses"] = try sequence(setup: 0, wrong) { control($0, secure: false) | 0x02 }
        return seeds
    }
}

enum CoordinatorSeeds {
    static func all() throws -> [String: [UInt8]] {
        let model = try ModelPreset.logisticRegression(inputs: 4, classes: 3, seed: 1)
        let architecture = ModelArchitecture.logisticRegression(inputs: 4, classes: 3)
        let assignment = SecureRoundAssignment(
            roundID: 9, participantIndex: 2, rosterSize: 5, graph: .complete, threshold: 4, clip: 2, bits: 20,
            maxWeight: 1000, activeAdversary: false)
        var seeds: [String: [UInt8]] = [:]
        for (policy, secure) in [(UInt8(0), assignment), (UInt8(1), nil)] {
            var encoder = CoordinatorEnvelopeEncoder()
            var envelopes = [
                try encoder.welcome(SessionWelcome(sessionID: "s-1", site: "fuzz-site", maximumChunkBytes: 4096)),
                encoder.heartbeat(),
            ]
            let train = TrainInstruction(
                experimentID: experimentID, round: round, modelVersion: ModelVersion(major: 0, minor: 3, patch: 0),
                architecture: architecture, datasetName: "clinical-risk", parameters: model.parameters,
                task: TrainingTask(epochs: 2, batchSize: 16), secure: secure)
            envelopes.append(try encoder.encode(.train(train), experimentID: experimentID, currentStage: .training))
            for request in SecAggSeeds.serverMessages {
                envelopes.append(
                    try encoder.encode(
                        .secAgg(round: round, request), experimentID: experimentID, currentStage: .training))
            }
            let evaluate = EvaluateInstruction(
                experimentID: experimentID, round: round, modelVersion: ModelVersion(major: 0, minor: 4, patch: 0),
                architecture: architecture, datasetName: "clinical-risk", parameters: model.parameters, secure: secure)
            envelopes.append(
                try encoder.encode(.evaluate(evaluate), experimentID: experimentID, currentStage: .evaluation))
            envelopes.append(
                try encoder.encode(
                    .leaveRound(round: round, reason: "too slow"), experimentID: experimentID, currentStage: .training))
            envelopes.append(
                try encoder.rejection(
                    Rejection(code: .staleMessage, reason: "late", rejectedSequence: 4),
                    at: RoundPosition(experimentID: experimentID, round: round, stage: .training)))
            let bytes = try envelopes.map { try wire($0) }
            seeds[secure == nil ? "plaintext" : "secure"] = bytes.reduce([policy]) { $0 + FuzzInput.framed($1) }
        }
        var encoder = CoordinatorEnvelopeEncoder()
        let refused = try encoder.rejection(Rejection(code: .unsupportedProtocolVersion, reason: "v0", fatal: true))
        seeds["refused"] = [0] + FuzzInput.framed(try wire(refused))
        return seeds
    }
}

enum SecAggSeeds {
    static let keys = AdvertisedKeys(
        participant: 6, encryptionKey: [UInt8](repeating: 6, count: 32), maskingKey: [UInt8](repeating: 9, count: 32),
        signature: [UInt8](repeating: 1, count: 64))
    static let share = ShamirShare(x: 5, values: [1, 2, 3, (1 << 61) - 2])

    static let clientMessages: [SecAggMessage] = [
        .advertiseKeys(AdvertiseKeysMessage(roundID: 9, sender: 5, keys: keys)),
        .shareKeys(
            ShareKeysMessage(
                roundID: 9, sender: 5,
                shares: [EncryptedShare(peer: 6, ciphertext: [1, 2, 3]), EncryptedShare(peer: 8, ciphertext: [])])),
        .maskedInput(MaskedInputMessage(roundID: 9, sender: 5, maskedInput: [1, 2, 0xFFFF_FFFF])),
        .consistencySignature(
            ConsistencySignatureMessage(roundID: 9, sender: 5, signature: [UInt8](repeating: 3, count: 64))),
        .unmaskingResponse(
            UnmaskingResponseMessage(
                roundID: 9, sender: 5,
                selfMaskShares: [PeerShare(peer: 6, share: share, nonce: [UInt8](repeating: 7, count: 32))],
                keyShares: [PeerShare(peer: 7, share: share, nonce: [UInt8](repeating: 7, count: 32))])),
    ]

    static let serverMessages: [SecAggMessage] = [
        .shareKeysRequest(
            ShareKeysRequest(roundID: 9, recipient: 2, neighbours: [keys], graphSeed: [UInt8](repeating: 5, count: 32))),
        .maskedInputRequest(
            MaskedInputRequest(roundID: 9, recipient: 2, shares: [EncryptedShare(peer: 6, ciphertext: [9, 9])])),
        .consistencyCheckRequest(ConsistencyCheckRequest(roundID: 9, recipient: 2, survivors: [1, 2, 6])),
        .unmaskingRequest(
            UnmaskingRequest(
                roundID: 9, recipient: 2, survivors: [2, 6], dropped: [7],
                signatures: [ParticipantSignature(participant: 6, signature: [UInt8](repeating: 1, count: 64))])),
    ]

    static func messages() -> [String: [UInt8]] {
        var seeds: [String: [UInt8]] = [:]
        for (index, message) in (clientMessages + serverMessages).enumerated() {
            seeds["message-\(index)-\(message.stage)"] = message.encoded()
        }
        return seeds
    }

    static func shares() throws -> [String: [UInt8]] {
        var seeds: [String: [UInt8]] = [:]
        var generator = Xoshiro256StarStar(seed: 7)
        for (threshold, length, points) in [(3, 32, [UInt32]([1, 2, 3, 4, 5])), (1, 7, [9]), (2, 0, [4, 2])] {
            let secret = (0..<length).map { UInt8($0 * 37 % 256) }
            let shares = try Shamir.split(secret: secret, threshold: threshold, points: points, using: &generator)
            let input = shares.reduce([UInt8(threshold - 1), UInt8(length)]) { $0 + FuzzInput.framed($1.serialized()) }
            seeds["split-\(threshold)-of-\(points.count)-\(length)-bytes"] = input
        }
        return seeds
    }
}

enum TaskSeeds {
    static let shapes: [ModelArchitecture] = [
        .logisticRegression(inputs: 4, classes: 3),
        .mlp(inputs: 12, hidden: [16, 8], classes: 2),
        .mlp(inputs: 3, hidden: [], classes: 2),
        .mcmahanCNN(classes: 10),
    ]

    static func architectures() throws -> [String: [UInt8]] {
        var seeds: [String: [UInt8]] = [:]
        for (index, architecture) in shapes.enumerated() {
            seeds["architecture-\(index)"] = try wire(Tessera_V1_ModelArchitecture(architecture))
        }
        return seeds
    }

    static func tasks() throws -> [String: [UInt8]] {
        let credentials = Dictionary(
            uniqueKeysWithValues: (1...5).map { (UInt32($0), [UInt8](repeating: UInt8($0), count: 40)) })
        let assignments: [SecureRoundAssignment?] = [
            nil,
            SecureRoundAssignment(
                roundID: 9, participantIndex: 2, rosterSize: 5, graph: .complete, threshold: 4, clip: 2, bits: 20,
                maxWeight: 1000, activeAdversary: true, credentials: credentials, metricCount: 2),
            SecureRoundAssignment(
                roundID: 9, participantIndex: 5, rosterSize: 8, graph: .harary(degree: 4, seed: Array(0..<32)),
                threshold: 4, clip: 2.5, bits: 20, maxWeight: 600),
            SecureRoundAssignment(
                roundID: 1, participantIndex: 1, rosterSize: 12, graph: .harary(degree: 6, seed: []), threshold: 5,
                clip: 1, bits: 24, maxWeight: 100, activeAdversary: true,
                graphSeedCommitment: [UInt8](repeating: 8, count: 32)),
        ]
        let tasks = [
            TrainingTask(
                epochs: 2, batchSize: 16,
                optimizer: .sgd(learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4),
                proximalMu: 0.01, gradientClipNorm: 5, seed: .max),
            TrainingTask(
                epochs: 1, batchSize: 32,
                optimizer: .adam(learningRate: 1e-3, beta1: 0.8, beta2: 0.99, epsilon: 1e-7, weightDecay: 0)),
        ]
        var seeds: [String: [UInt8]] = [:]
        for (index, assignment) in assignments.enumerated() {
            let architecture = shapes[index % shapes.count]
            let spec = TrainTaskSpec(
                experimentID: experimentID, round: round, modelVersion: ModelVersion(major: 1, minor: 2, patch: 3),
                architecture: architecture, datasetName: "clinical-risk",
                modelDigest: ModelDigest(parameters: [1, 2, 3]), parameterCount: architecture.parameterCount!,
                task: tasks[index % tasks.count], secure: assignment)
            seeds["train-\(index)"] = try wire(Tessera_V1_TrainTask(spec))
            let evaluate = EvaluateTaskSpec(
                experimentID: experimentID, round: round, modelVersion: spec.modelVersion, architecture: architecture,
                datasetName: "clinical-risk", modelDigest: spec.modelDigest, parameterCount: spec.parameterCount,
                secure: assignment)
            seeds["evaluate-\(index)"] = try wire(Tessera_V1_EvaluateTask(evaluate))
        }
        return seeds
    }
}

enum ConfigSeeds {
    static func experiments() throws -> [String: [UInt8]] {
        let directory = fuzzDirectory.deletingLastPathComponent().appendingPathComponent("Experiments")
        var seeds: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".yaml") {
            seeds[name] = [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
        }
        return seeds
    }

    static func sites() -> [String: [UInt8]] {
        let full = """
            coordinator: coordinator.example.org:7443
            identity: .
            datasets:
              clinical-risk:
                path: site-1.csv
                label_column: readmitted_30d
                test_fraction: 0.2
                standardise: true
                classes: 2
            policy:
              require_secure_aggregation: true
              require_active_adversary_protection: false
              minimum_cohort: 4
              max_corruption_rate: 0.2
              max_dropout_rate: 0.1
              max_parameters: 1000000
              max_layer_width: 4096
              max_epochs: 20
              max_batch_size: 512
              max_model_bytes: 8000000
              share_metrics: per_site
              max_evaluations_per_round: 2

            """
        let files = """
            coordinator: "[::1]:7443"
            certificate: cert.pem
            private_key: key.pem
            ca: ca.pem
            datasets:
              a: {path: a.csv, label_column: y}
              b: {path: b.csv, label_column: "label"}
            policy: {}

            """
        let minimal = "coordinator: localhost:7443\nidentity: .\ndatasets:\n  x: {path: x.csv, label_column: y}\n"
        return ["full.yaml": Array(full.utf8), "files.yaml": Array(files.utf8), "minimal.yaml": Array(minimal.utf8)]
    }
}

enum RevocationSeeds {
    /// Signs the seed lists with a new throwaway CA and writes its certificate into
    /// `RevocationFixture.swift`, which the target verifies against.
    static func lists() throws -> [String: [UInt8]] {
        let ca = try EphemeralFederationCA(name: "Tessera fuzz fixture CA")
        let issued = Date(timeIntervalSince1970: 1_750_000_000)
        let empty = try ca.signedRevocationList(issuedAt: issued).encoded
        try ca.revoke(serial: "0x1F:2E")
        try ca.revoke(serial: "abcdef0123456789")
        let two = try ca.signedRevocationList(issuedAt: issued + 60).encoded
        try ca.revoke(serial: "7")
        let three = try ca.signedRevocationList(issuedAt: issued + 120).encoded
        let pem = try PEMFile.pem(of: ca.caCertificate).trimmingCharacters(in: .newlines)
        let quoted = pem.split(separator: "\n").map { "        \($0)\n" }.joined()
        let source =
            "/// Written by `Scripts/fuzz-seeds`: the certificate of the throwaway CA whose key signed the\n"
            + "/// seed lists in `Fuzz/Corpus/revocation_list` (the key was discarded after signing).\n"
            + "enum RevocationFixture {\n" + "    static let caCertificatePEM = \"\"\"\n" + quoted
            + "        \"\"\"\n" + "}\n"
        let file = fuzzDirectory.deletingLastPathComponent()
            .appendingPathComponent("Sources/TesseraFuzzTargets/RevocationFixture.swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        return [
            "one-list": FuzzInput.framed(three),
            "three-in-order": FuzzInput.framed(empty) + FuzzInput.framed(two) + FuzzInput.framed(three),
            "replayed-older": FuzzInput.framed(three) + FuzzInput.framed(two),
        ]
    }
}

enum FileSeeds {
    static func safetensors() throws -> [String: [UInt8]] {
        let model = try ModelPreset.logisticRegression(inputs: 4, classes: 3, seed: 1)
        let modelFile = try Safetensors.encode(model.namedParameters(), metadata: ["format": "pt"])
        let other = try Safetensors.encode(
            [("a", Tensor(shape: [2, 2], scalars: [1, -0.0, .infinity, 3])), ("b", Tensor(shape: [], scalars: [5]))])
        return [
            "model.safetensors": modelFile, "small.safetensors": other,
            "f16.safetensors": rawSafetensors(
                #"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, [0, 0x3C, 0xFF, 0x7B]),
            "bf16-f64.safetensors": rawSafetensors(
                #"{"__metadata__":{"k":"v"},"b":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},"d":{"dtype":"F64","shape":[1],"data_offsets":[2,10]}}"#,
                [0x80, 0x3F] + [0, 0, 0, 0, 0, 0, 0xF0, 0x3F]),
        ]
    }

    private static func rawSafetensors(_ header: String, _ data: [UInt8]) -> [UInt8] {
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        let length = UInt64(json.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + json + data
    }

    static func csv() throws -> [String: [UInt8]] {
        let sample = fuzzDirectory.deletingLastPathComponent().appendingPathComponent(
            "Datasets-sample/clinical-risk/site-1.csv")
        let lines = try String(contentsOf: sample, encoding: .utf8).split(separator: "\n").prefix(12)
        let clinical = lines.joined(separator: "\n").replacingOccurrences(of: "readmitted_30d", with: "label") + "\n"
        let quoted =
            "\u{FEFF}id,x,\"y\",label\r\n1,\"1.5\",2,a\r\n2,-3e-2,\"4\",b\r\n\r\n3,nan,,c\r\n4,\"5,5\",inf,\"a\"\"\"\n"
        let semicolons = "x;y;label\n1;2;0\n3;4;1\n5;6;2\n"
        return [
            "clinical.csv": [0] + Array(clinical.utf8), "clinical-regression.csv": [1] + Array(clinical.utf8),
            "quoted.csv": [0x30] + Array(quoted.utf8), "names.csv": [0x44] + Array(quoted.utf8),
            "semicolons.csv": [0x82] + Array(semicolons.utf8),
        ]
    }

    static func npy() -> [String: [UInt8]] {
        [
            "f4.npy": npyFile("<f4", "(3, 2)", (0..<6).flatMap { bytes(Float($0).bitPattern) }),
            "i8.npy": npyFile("<i8", "(4,)", (0..<4).flatMap { bytes(UInt64($0)) }),
            "u1.npy": npyFile("|u1", "(2, 2)", [0, 1, 1, 2]),
            "f8-fortran.npy": npyFile("<f8", "(2,)", bytes(1.5.bitPattern) + bytes(2.5.bitPattern), fortran: true),
            "scalar.npy": npyFile("<f4", "()", bytes(Float(1).bitPattern)),
        ]
    }

    private static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    private static func npyFile(_ descr: String, _ shape: String, _ data: [UInt8], fortran: Bool = false) -> [UInt8] {
        var header = Array(
            "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }".utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(UInt8(ascii: " ")) }
        header.append(UInt8(ascii: "\n"))
        return [0x93] + Array("NUMPY".utf8) + [1, 0] + bytes(UInt16(header.count)) + header + data
    }

    static func idx() -> [String: [UInt8]] {
        func dims(_ values: [UInt32]) -> [UInt8] { values.flatMap { bytes($0.bigEndian) } }
        return [
            "images.idx": [0, 0, 0x08, 3] + dims([2, 2, 2]) + [0, 255, 1, 2, 3, 4, 5, 6],
            "labels.idx": [0, 0, 0x08, 1] + dims([3]) + [0, 1, 2],
            "floats.idx": [0, 0, 0x0D, 2] + dims([1, 2]) + bytes(Float(1).bitPattern.bigEndian)
                + bytes(Float(-2).bitPattern.bigEndian),
            "shorts.idx": [0, 0, 0x0B, 1] + dims([2]) + [0x01, 0x00, 0xFF, 0xFF],
        ]
    }
}
