public import TesseraCrypto
public import TesseraSecAgg

/// A participant's identity: the site name from its certificate in deployment, the
/// simulated site's name in simulation. Never taken from a message field.
public typealias SiteID = String

/// What a connected participant tells the coordinator about itself (its registry entry).
/// What a site reports of a dataset's features: how many per sample, and a hash of their
/// names, shape and classes, so an operator can see two sites whose columns differ.
public struct DatasetSchema: Sendable, Hashable {
    public var features: Int
    /// Lowercase hex, at most 64 characters.
    public var hash: String

    public init(features: Int, hash: String) {
        self.features = features
        self.hash = hash
    }
}

public struct ParticipantDescriptor: Sendable, Hashable {
    public var site: SiteID
    /// Datasets it offers, with their training sample counts.
    public var datasets: [String: Int]
    public var cores: Int
    public var softwareVersion: String
    /// The site's signing credential, checked by the coordinator when the site joined; `nil`
    /// when it offered none (it then cannot take part in active-adversary rounds).
    public var signing: SigningCredential?
    /// The feature schema of each offered dataset, when the site reports it (the participant
    /// registry shows it; selection does not use it).
    public var schemas: [String: DatasetSchema]
    /// Memory of the site's machine in bytes, when reported.
    public var memoryBytes: Int?

    public init(
        site: SiteID, datasets: [String: Int], cores: Int = 1, softwareVersion: String = "",
        signing: SigningCredential? = nil, schemas: [String: DatasetSchema] = [:], memoryBytes: Int? = nil
    ) {
        self.schemas = schemas
        self.memoryBytes = memoryBytes
        self.site = site
        self.datasets = datasets
        self.cores = cores
        self.softwareVersion = softwareVersion
        self.signing = signing
    }
}

/// A site's long-term signing key as the federation CA certified it: the certificate travels
/// to the site's peers, which check it themselves (``SigningCredentialVerifier``), and the
/// Ed25519 key in it verifies the site's signatures on its SecAgg keys and survivor lists.
public struct SigningCredential: Sendable, Hashable {
    /// The signing certificate, DER.
    public var certificate: [UInt8]
    /// The Ed25519 public key it certifies (32 bytes).
    public var publicKey: [UInt8]

    public init(certificate: [UInt8], publicKey: [UInt8]) {
        self.certificate = certificate
        self.publicKey = publicKey
    }
}

/// Checks a peer's signing certificate against the federation: issued by its CA, valid now,
/// meant for signing SecAgg keys, not revoked. The participant runs it over every roster
/// credential the coordinator relays, so the coordinator cannot slip in a key of its own.
public protocol SigningCredentialVerifier: Sendable {
    /// The site `certificate` names and the Ed25519 key it certifies; throws an error that says
    /// why otherwise (another federation, expired, revoked, wrong purpose, malformed).
    func verify(certificate: [UInt8]) throws -> (site: SiteID, publicKey: [UInt8])
}

/// The stages of a round, as they appear in deadlines, logs and results.
public enum RoundStage: String, Sendable, Hashable, Codable, CaseIterable {
    case selection
    case training
    case shareKeys = "share_keys"
    case maskedInput = "masked_input"
    case consistencyCheck = "consistency_check"
    case unmasking
    case aggregation
    case evaluation
}

/// The public parameters of one participant's part in a secure round. Both sides build the
/// same `SecAggConfiguration` and `QuantizationCodec` from it.
public struct SecureRoundAssignment: Sendable, Hashable {
    public var roundID: UInt64
    /// This participant's protocol id (1-based; also its Shamir evaluation point).
    public var participantIndex: UInt32
    /// The roster is `1...rosterSize`.
    public var rosterSize: Int
    public var graph: NeighbourGraph.Kind
    public var threshold: Int
    public var clip: Double
    public var bits: Int
    /// The largest sample weight; a participant's weight is its sample count capped at this.
    public var maxWeight: UInt32
    /// The active-adversary setting: signed keys and survivor lists, and the ConsistencyCheck.
    public var activeAdversary: Bool
    /// Active setting: every roster member's signing certificate (DER), by protocol id.
    public var credentials: [UInt32: [UInt8]]
    /// SHA-256 of the Harary seed, which the ShareKeys request reveals (participants' copies then
    /// carry an empty seed in ``graph``); `nil` when the seed is public from the start.
    public var graphSeedCommitment: [UInt8]?
    /// Metrics masked after the update (``MetricsEncoding``); 0 for none.
    public var metricCount: Int

    // Explicit and public (the synthesised one is internal): the wire layer rebuilds
    // assignments received from the coordinator.
    public init(
        roundID: UInt64, participantIndex: UInt32, rosterSize: Int, graph: NeighbourGraph.Kind, threshold: Int,
        clip: Double, bits: Int, maxWeight: UInt32, activeAdversary: Bool = false, credentials: [UInt32: [UInt8]] = [:],
        graphSeedCommitment: [UInt8]? = nil, metricCount: Int = 0
    ) {
        self.roundID = roundID
        self.participantIndex = participantIndex
        self.rosterSize = rosterSize
        self.graph = graph
        self.threshold = threshold
        self.clip = clip
        self.bits = bits
        self.maxWeight = maxWeight
        self.activeAdversary = activeAdversary
        self.credentials = credentials
        self.graphSeedCommitment = graphSeedCommitment
        self.metricCount = metricCount
    }

    public var roster: [UInt32] { (1...UInt32(rosterSize)).map { $0 } }

    /// The number of share holders of each participant: its neighbours and itself.
    public var holders: Int {
        switch graph {
        case .complete: rosterSize
        case .harary(let degree, _): degree + 1
        }
    }

    /// The SecAgg configuration for an update of `vectorLength` values followed by the
    /// metrics block; `verificationKeys` are required in the active setting.
    public func configuration(
        vectorLength: Int, verificationKeys: [UInt32: Ed25519PublicKey] = [:]
    ) throws(SecAggError) -> SecAggConfiguration {
        let words = QuantizationCodec.encodedLength(dimension: vectorLength) + (try metrics().wordCount)
        return try SecAggConfiguration(
            roundID: roundID, participants: roster, graph: graph, threshold: threshold, vectorLength: words,
            securityMode: activeAdversary ? .active(verificationKeys: verificationKeys) : .semiHonest,
            graphSeedCommitment: graphSeedCommitment)
    }

    /// The SecAgg configuration of a session over vectors of exactly `words` words (a private
    /// round's distributed-noise encoding).
    public func sessionConfiguration(
        words: Int, verificationKeys: [UInt32: Ed25519PublicKey] = [:]
    ) throws(SecAggError) -> SecAggConfiguration {
        try SecAggConfiguration(
            roundID: roundID, participants: roster, graph: graph, threshold: threshold, vectorLength: words,
            securityMode: activeAdversary ? .active(verificationKeys: verificationKeys) : .semiHonest,
            graphSeedCommitment: graphSeedCommitment)
    }

    /// The SecAgg configuration of an evaluation round: the metrics block alone.
    public func evaluationConfiguration(
        verificationKeys: [UInt32: Ed25519PublicKey] = [:]
    ) throws(SecAggError) -> SecAggConfiguration {
        try SecAggConfiguration(
            roundID: roundID, participants: roster, graph: graph, threshold: threshold,
            vectorLength: try metrics().wordCount,
            securityMode: activeAdversary ? .active(verificationKeys: verificationKeys) : .semiHonest,
            graphSeedCommitment: graphSeedCommitment)
    }

    public func metrics() throws(SecAggError) -> MetricsEncoding {
        try MetricsEncoding(count: metricCount)
    }

    public func codec() throws(SecAggError) -> QuantizationCodec {
        try QuantizationCodec(clip: clip, bits: bits, maxWeight: maxWeight, maxInputs: rosterSize)
    }
}

/// A training request: the global model, what to do with it, and (secure rounds) how to
/// protect the result.
public struct TrainInstruction: Sendable {
    public var experimentID: String
    public var round: Int
    public var modelVersion: ModelVersion
    public var architecture: ModelArchitecture
    public var datasetName: String
    public var parameters: [Float]
    public var task: TrainingTask
    public var secure: SecureRoundAssignment?
    /// Differential privacy: how the site clips and noises its update; `nil` for none.
    public var privacy: RoundPrivacy?

    // Public so the wire layer can rebuild the instruction once the participant has fetched
    // the parameters by digest.
    public init(
        experimentID: String, round: Int, modelVersion: ModelVersion, architecture: ModelArchitecture,
        datasetName: String, parameters: [Float], task: TrainingTask, secure: SecureRoundAssignment? = nil,
        privacy: RoundPrivacy? = nil
    ) {
        self.privacy = privacy
        self.experimentID = experimentID
        self.round = round
        self.modelVersion = modelVersion
        self.architecture = architecture
        self.datasetName = datasetName
        self.parameters = parameters
        self.task = task
        self.secure = secure
    }
}

/// An evaluation request for a published model version.
public struct EvaluateInstruction: Sendable {
    public var experimentID: String
    public var round: Int
    public var modelVersion: ModelVersion
    public var architecture: ModelArchitecture
    public var datasetName: String
    public var parameters: [Float]
    /// Present when the metrics may leave the site only inside a secure sum: the participant
    /// masks them (``SecureMetricsLayout``) instead of answering in the clear.
    public var secure: SecureRoundAssignment?

    // Public so the wire layer can rebuild the instruction once the participant has fetched
    // the parameters by digest.
    public init(
        experimentID: String, round: Int, modelVersion: ModelVersion, architecture: ModelArchitecture,
        datasetName: String, parameters: [Float], secure: SecureRoundAssignment? = nil
    ) {
        self.experimentID = experimentID
        self.round = round
        self.modelVersion = modelVersion
        self.architecture = architecture
        self.datasetName = datasetName
        self.parameters = parameters
        self.secure = secure
    }
}

/// Coordinator → participant.
public enum CoordinatorMessage: Sendable {
    case train(TrainInstruction)
    case secAgg(round: Int, SecAggMessage)
    case evaluate(EvaluateInstruction)
    /// The participant is out of the round (misbehaviour, or the round ended); it should drop
    /// any state it holds for it.
    case leaveRound(round: Int, reason: String)

    public var round: Int {
        switch self {
        case .train(let t): t.round
        case .secAgg(let round, _): round
        case .evaluate(let e): e.round
        case .leaveRound(let round, _): round
        }
    }
}

/// Training metrics a participant reports in the clear (never its update under secure
/// aggregation). A site that releases metrics only in aggregate leaves out the loss and the
/// accuracy: they travel inside the masked vector instead.
public struct TrainingReport: Sendable, Hashable, Codable {
    public var sampleCount: Int
    public var loss: Double?
    public var accuracy: Double?
    public var steps: Int

    public init(sampleCount: Int, loss: Double?, accuracy: Double? = nil, steps: Int) {
        self.sampleCount = sampleCount
        self.loss = loss
        self.accuracy = accuracy
        self.steps = steps
    }
}

/// Participant → coordinator.
public enum ParticipantMessage: Sendable {
    /// Plaintext rounds only: the update itself.
    case update(round: Int, delta: [Float], report: TrainingReport)
    /// Secure rounds: the training metrics, sent with the first protocol message.
    case trained(round: Int, report: TrainingReport)
    case secAgg(round: Int, SecAggMessage)
    case evaluation(round: Int, EvaluationMetrics)
    /// The participant could not do what was asked (its reason is logged and shown).
    case failed(round: Int, reason: String)

    public var round: Int {
        switch self {
        case .update(let round, _, _), .trained(let round, _), .secAgg(let round, _), .evaluation(let round, _),
            .failed(let round, _):
            round
        }
    }
}

/// The metrics blocks of secure rounds (``MetricsEncoding``): which metric sits where.
public enum SecureMetricsLayout {
    /// Training rounds: the local training loss and accuracy, weighted by the site's weight.
    public static let training = 2
    /// Evaluation rounds: loss, accuracy and AUC on held-out rows, weighted by their count.
    public static let evaluation = 3
}
