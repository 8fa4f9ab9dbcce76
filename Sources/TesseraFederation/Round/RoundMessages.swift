public import TesseraSecAgg

/// A participant's identity: the site name from its certificate in deployment, the
/// simulated site's name in simulation. Never taken from a message field.
public typealias SiteID = String

/// What a connected participant tells the coordinator about itself (its registry entry).
public struct ParticipantDescriptor: Sendable, Hashable {
    public var site: SiteID
    /// Datasets it offers, with their training sample counts.
    public var datasets: [String: Int]
    public var cores: Int
    public var softwareVersion: String

    public init(site: SiteID, datasets: [String: Int], cores: Int = 1, softwareVersion: String = "") {
        self.site = site
        self.datasets = datasets
        self.cores = cores
        self.softwareVersion = softwareVersion
    }
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

    // Explicit and public (the synthesised one is internal): the wire layer rebuilds
    // assignments received from the coordinator.
    public init(
        roundID: UInt64, participantIndex: UInt32, rosterSize: Int, graph: NeighbourGraph.Kind, threshold: Int,
        clip: Double, bits: Int, maxWeight: UInt32
    ) {
        self.roundID = roundID
        self.participantIndex = participantIndex
        self.rosterSize = rosterSize
        self.graph = graph
        self.threshold = threshold
        self.clip = clip
        self.bits = bits
        self.maxWeight = maxWeight
    }

    public var roster: [UInt32] { (1...UInt32(rosterSize)).map { $0 } }

    public func configuration(vectorLength: Int) throws(SecAggError) -> SecAggConfiguration {
        try SecAggConfiguration(
            roundID: roundID, participants: roster, graph: graph, threshold: threshold,
            vectorLength: QuantizationCodec.encodedLength(dimension: vectorLength))
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

    // Public so the wire layer can rebuild the instruction once the participant has fetched
    // the parameters by digest.
    public init(
        experimentID: String, round: Int, modelVersion: ModelVersion, architecture: ModelArchitecture,
        datasetName: String, parameters: [Float], task: TrainingTask, secure: SecureRoundAssignment? = nil
    ) {
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

    // Public so the wire layer can rebuild the instruction once the participant has fetched
    // the parameters by digest.
    public init(
        experimentID: String, round: Int, modelVersion: ModelVersion, architecture: ModelArchitecture,
        datasetName: String, parameters: [Float]
    ) {
        self.experimentID = experimentID
        self.round = round
        self.modelVersion = modelVersion
        self.architecture = architecture
        self.datasetName = datasetName
        self.parameters = parameters
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
/// aggregation).
public struct TrainingReport: Sendable, Hashable, Codable {
    public var sampleCount: Int
    public var loss: Double
    public var accuracy: Double?
    public var steps: Int

    public init(sampleCount: Int, loss: Double, accuracy: Double? = nil, steps: Int) {
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
