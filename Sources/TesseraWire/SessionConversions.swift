import Foundation
public import TesseraFederation
import TesseraSupport

// MARK: - Hello

/// What a participant says about itself when it opens a session: a `ParticipantDescriptor`
/// without the site.
///
/// The site is deliberately absent: the coordinator takes it from the participant's TLS
/// certificate (``descriptor(site:)``), so no message can claim another site's identity.
public struct ParticipantHello: Sendable, Hashable {
    public var protocolVersion: UInt32
    public var softwareVersion: String
    public var cores: Int
    /// Dataset name → training sample count.
    public var datasets: [String: Int]
    /// The site's signing certificate (DER), empty when it has none. The coordinator checks it
    /// before it enters the registry (see ``descriptor(site:signing:)``).
    public var signingCertificate: [UInt8]
    /// Dataset name → its schema, for the datasets whose schema the site reports.
    public var schemas: [String: DatasetSchema] = [:]
    /// The machine's memory in bytes, when reported.
    public var memoryBytes: Int?

    public init(
        datasets: [String: Int], cores: Int = 1, softwareVersion: String = "", signingCertificate: [UInt8] = [],
        protocolVersion: UInt32 = WireProtocol.version
    ) {
        self.protocolVersion = protocolVersion
        self.softwareVersion = softwareVersion
        self.cores = cores
        self.datasets = datasets
        self.signingCertificate = signingCertificate
    }

    /// The hello a participant described by `descriptor` sends (its site stays local).
    public init(_ descriptor: ParticipantDescriptor) {
        self.init(
            datasets: descriptor.datasets, cores: descriptor.cores, softwareVersion: descriptor.softwareVersion,
            signingCertificate: descriptor.signing?.certificate ?? [])
        schemas = descriptor.schemas.filter { descriptor.datasets[$0.key] != nil }
        memoryBytes = descriptor.memoryBytes
    }

    /// The registry entry of the participant whose certificate names `site`, with the signing
    /// credential the coordinator verified from ``signingCertificate``.
    public func descriptor(site: SiteID, signing: SigningCredential? = nil) -> ParticipantDescriptor {
        ParticipantDescriptor(
            site: site, datasets: datasets, cores: cores, softwareVersion: softwareVersion, signing: signing,
            schemas: schemas, memoryBytes: memoryBytes)
    }
}

extension Tessera_V1_Hello {
    /// Datasets are listed sorted by name, so the same hello always encodes to the same bytes.
    public init(_ hello: ParticipantHello) throws(WireError) {
        self.init()
        protocolVersion = hello.protocolVersion
        softwareVersion = hello.softwareVersion
        cores = try checkedUInt64(hello.cores, wireField("Hello", "cores"))
        var offers: [Tessera_V1_DatasetOffer] = []
        for (name, count) in hello.datasets.sorted(by: { $0.key < $1.key }) {
            var offer = Tessera_V1_DatasetOffer()
            offer.name = name
            offer.sampleCount = try checkedUInt64(count, wireField("DatasetOffer", "sample_count"))
            if let schema = hello.schemas[name] {
                offer.featureCount = UInt32(clamping: max(0, schema.features))
                offer.schemaHash = schema.hash
            }
            offers.append(offer)
        }
        datasets = offers
        signingCertificate = Data(hello.signingCertificate)
        memoryBytes = UInt64(clamping: max(0, hello.memoryBytes ?? 0))
    }
}

extension ParticipantHello {
    /// Any protocol version is accepted here; the session decides what it speaks
    /// (``ParticipantEnvelopeDecoder`` refuses versions other than ``WireProtocol/version``).
    public init(_ wire: Tessera_V1_Hello) throws(WireError) {
        guard wire.datasets.count <= WireProtocol.maximumDatasetOffers else {
            throw WireError.outOfRange(
                wireField("Hello", "datasets"),
                "\(wire.datasets.count) dataset offers; at most \(WireProtocol.maximumDatasetOffers) are accepted.")
        }
        var datasets: [String: Int] = [:]
        var schemas: [String: DatasetSchema] = [:]
        for offer in wire.datasets {
            _ = try checkedText(offer.name, limit: WireProtocol.maximumNameBytes, wireField("DatasetOffer", "name"))
            guard !offer.name.isEmpty else {
                throw WireError.missing(wireField("DatasetOffer", "name"), "a dataset name")
            }
            guard datasets[offer.name] == nil else {
                throw WireError.outOfRange(
                    wireField("DatasetOffer", "name"), "dataset \"\(offer.name)\" is offered twice.")
            }
            datasets[offer.name] = try checkedSampleCount(offer.sampleCount, wireField("DatasetOffer", "sample_count"))
            guard offer.featureCount <= WireProtocol.maximumFeatureCount else {
                throw WireError.outOfRange(
                    wireField("DatasetOffer", "feature_count"),
                    "\(offer.featureCount) features; at most \(WireProtocol.maximumFeatureCount) are accepted.")
            }
            guard offer.schemaHash.utf8.count <= 64, offer.schemaHash.utf8.allSatisfy({ Hex.digitValue($0) != nil })
            else {
                throw WireError.outOfRange(
                    wireField("DatasetOffer", "schema_hash"), "a schema hash is at most 64 hexadecimal digits.")
            }
            if offer.featureCount > 0 || !offer.schemaHash.isEmpty {
                schemas[offer.name] = DatasetSchema(features: Int(offer.featureCount), hash: offer.schemaHash)
            }
        }
        guard wire.memoryBytes <= UInt64(WireProtocol.maximumMemoryBytes) else {
            throw WireError.outOfRange(
                wireField("Hello", "memory_bytes"),
                "\(wire.memoryBytes) bytes; at most \(WireProtocol.maximumMemoryBytes) are accepted.")
        }
        guard wire.signingCertificate.count <= SecureRoundAssignment.maximumCredentialBytes else {
            throw WireError.outOfRange(
                wireField("Hello", "signing_certificate"),
                "\(wire.signingCertificate.count) bytes; at most \(SecureRoundAssignment.maximumCredentialBytes) accepted."
            )
        }
        self.init(
            datasets: datasets, cores: try checkedPositiveInt(wire.cores, wireField("Hello", "cores")),
            softwareVersion: try checkedText(
                wire.softwareVersion, limit: WireProtocol.maximumNameBytes, wireField("Hello", "software_version")),
            signingCertificate: [UInt8](wire.signingCertificate),
            protocolVersion: wire.protocolVersion)
        self.schemas = schemas
        self.memoryBytes = wire.memoryBytes > 0 ? Int(wire.memoryBytes) : nil
    }
}

// MARK: - Welcome

/// The coordinator's answer to a hello: the session's parameters.
public struct SessionWelcome: Sendable, Hashable {
    public var protocolVersion: UInt32
    public var sessionID: String
    /// Who the coordinator thinks the participant is (from its certificate), for the site's log.
    public var site: SiteID
    /// How often the participant must send a heartbeat while idle.
    public var heartbeatInterval: Duration
    /// The largest chunk payload the participant may send (see ``ModelChunker``).
    public var maximumChunkBytes: Int
    /// The federation CA's signed revocation list as the coordinator holds it (the bytes of
    /// `revoked.signed`); the site verifies it itself. Empty when there is none.
    public var signedRevocationList: [UInt8]

    /// The largest revocation list relayed: the PKI's own bound on the signed list.
    public static let maximumRevocationListBytes = 4 * 1024 * 1024

    public init(
        sessionID: String, site: SiteID, heartbeatInterval: Duration = .seconds(10),
        maximumChunkBytes: Int = WireProtocol.defaultChunkBytes, signedRevocationList: [UInt8] = [],
        protocolVersion: UInt32 = WireProtocol.version
    ) {
        self.protocolVersion = protocolVersion
        self.sessionID = sessionID
        self.site = site
        self.heartbeatInterval = heartbeatInterval
        self.maximumChunkBytes = maximumChunkBytes
        self.signedRevocationList = signedRevocationList
    }
}

extension Tessera_V1_Welcome {
    public init(_ welcome: SessionWelcome) throws(WireError) {
        self.init()
        protocolVersion = welcome.protocolVersion
        sessionID = welcome.sessionID
        siteID = welcome.site
        let (seconds, attoseconds) = welcome.heartbeatInterval.components
        let millis = seconds.multipliedReportingOverflow(by: 1000)
        guard seconds >= 0, attoseconds >= 0, !millis.overflow else {
            throw WireError.outOfRange(
                wireField("Welcome", "heartbeat_interval_millis"),
                "cannot send the interval \(welcome.heartbeatInterval).")
        }
        heartbeatIntervalMillis = UInt64(millis.partialValue + attoseconds / 1_000_000_000_000_000)
        maxChunkBytes = try checkedUInt64(welcome.maximumChunkBytes, wireField("Welcome", "max_chunk_bytes"))
        signedRevocationList = Data(welcome.signedRevocationList)
    }
}

extension SessionWelcome {
    public init(_ wire: Tessera_V1_Welcome) throws(WireError) {
        guard !wire.sessionID.isEmpty else {
            throw WireError.missing(wireField("Welcome", "session_id"), "the session id")
        }
        let millis = try checkedPositiveInt(
            wire.heartbeatIntervalMillis, wireField("Welcome", "heartbeat_interval_millis"))
        let chunk = try checkedInt(wire.maxChunkBytes, wireField("Welcome", "max_chunk_bytes"))
        guard chunk >= 4 else {
            throw WireError.outOfRange(
                wireField("Welcome", "max_chunk_bytes"),
                "a chunk must hold at least one 4-byte value, got \(chunk) bytes.")
        }
        guard wire.signedRevocationList.count <= Self.maximumRevocationListBytes else {
            throw WireError.outOfRange(
                wireField("Welcome", "signed_revocation_list"),
                "\(wire.signedRevocationList.count) bytes; at most \(Self.maximumRevocationListBytes) accepted.")
        }
        self.init(
            sessionID: wire.sessionID, site: wire.siteID, heartbeatInterval: .milliseconds(millis),
            maximumChunkBytes: chunk, signedRevocationList: [UInt8](wire.signedRevocationList),
            protocolVersion: wire.protocolVersion)
    }
}

// MARK: - Rejection

/// Why the coordinator refused a participant's message or session.
public struct Rejection: Sendable, Hashable {
    public enum Code: Sendable, Hashable, CaseIterable {
        /// Wrong experiment, round or stage, or a repeated sequence number.
        case staleMessage
        /// Could not be decoded or failed validation.
        case malformedMessage
        /// Well-formed but not acceptable now (duplicate, not in the round, …).
        case protocolViolation
        /// The participant's protocol version is not spoken here.
        case unsupportedProtocolVersion
    }

    public var code: Code
    public var reason: String
    /// The sequence number of the refused envelope, 0 if it was not one envelope.
    public var rejectedSequence: UInt64
    /// The coordinator closes the session after sending this.
    public var fatal: Bool

    public init(code: Code, reason: String, rejectedSequence: UInt64 = 0, fatal: Bool = false) {
        self.code = code
        self.reason = reason
        self.rejectedSequence = rejectedSequence
        self.fatal = fatal
    }

    /// The rejection that answers a participant envelope that failed to decode. An unsupported
    /// protocol version is fatal: nothing else on the session could be understood either.
    public init(_ error: WireError, rejectedSequence: UInt64 = 0) {
        let code: Code =
            switch error.code {
            case .staleMessage, .replayedMessage: .staleMessage
            case .unsupportedProtocolVersion: .unsupportedProtocolVersion
            case .unexpectedMessage: .protocolViolation
            default: .malformedMessage
            }
        self.init(
            code: code, reason: error.description, rejectedSequence: rejectedSequence,
            fatal: code == .unsupportedProtocolVersion)
    }
}

extension Tessera_V1_Rejection {
    public init(_ rejection: Rejection) {
        self.init()
        code =
            switch rejection.code {
            case .staleMessage: .staleMessage
            case .malformedMessage: .malformedMessage
            case .protocolViolation: .protocolViolation
            case .unsupportedProtocolVersion: .unsupportedProtocolVersion
            }
        reason = rejection.reason
        rejectedSequence = rejection.rejectedSequence
        fatal = rejection.fatal
    }
}

extension Rejection {
    public init(_ wire: Tessera_V1_Rejection) throws(WireError) {
        let code: Code
        switch wire.code {
        case .staleMessage: code = .staleMessage
        case .malformedMessage: code = .malformedMessage
        case .protocolViolation: code = .protocolViolation
        case .unsupportedProtocolVersion: code = .unsupportedProtocolVersion
        case .unspecified:
            throw WireError.missing(wireField("Rejection", "code"), "the rejection code")
        case .UNRECOGNIZED(let value):
            throw WireError(
                code: .unknownEnumValue,
                message: "unknown rejection code \(value) (reason given: \"\(wire.reason)\").",
                field: wireField("Rejection", "code"))
        }
        self.init(code: code, reason: wire.reason, rejectedSequence: wire.rejectedSequence, fatal: wire.fatal)
    }
}

// MARK: - TrainingReport and EvaluationMetrics

extension Tessera_V1_TrainingReport {
    /// `updateParameterCount` is set for plaintext rounds, where the update follows in chunks.
    public init(_ report: TrainingReport, updateParameterCount: Int? = nil) throws(WireError) {
        self.init()
        sampleCount = try checkedUInt64(report.sampleCount, wireField("TrainingReport", "sample_count"))
        if let loss = report.loss { self.loss = loss }
        if let accuracy = report.accuracy { self.accuracy = accuracy }
        steps = try checkedUInt64(report.steps, wireField("TrainingReport", "steps"))
        if let updateParameterCount {
            self.updateParameterCount = try checkedUInt64(
                updateParameterCount, wireField("TrainingReport", "update_parameter_count"))
        }
    }
}

extension TrainingReport {
    /// Metrics are reported as measured: a NaN loss is a diverged site, which the coordinator
    /// should see rather than have the wire layer hide.
    public init(_ wire: Tessera_V1_TrainingReport) throws(WireError) {
        self.init(
            sampleCount: try checkedSampleCount(wire.sampleCount, wireField("TrainingReport", "sample_count")),
            loss: wire.hasLoss ? wire.loss : nil, accuracy: wire.hasAccuracy ? wire.accuracy : nil,
            steps: try checkedInt(wire.steps, wireField("TrainingReport", "steps")))
    }
}

extension Tessera_V1_EvaluationResult {
    public init(_ metrics: EvaluationMetrics) throws(WireError) {
        self.init()
        sampleCount = try checkedUInt64(metrics.sampleCount, wireField("EvaluationResult", "sample_count"))
        loss = metrics.loss
        if let accuracy = metrics.accuracy { self.accuracy = accuracy }
        if let auc = metrics.auc { self.auc = auc }
    }
}

extension EvaluationMetrics {
    public init(_ wire: Tessera_V1_EvaluationResult) throws(WireError) {
        self.init(
            sampleCount: try checkedSampleCount(wire.sampleCount, wireField("EvaluationResult", "sample_count")),
            loss: wire.loss, accuracy: wire.hasAccuracy ? wire.accuracy : nil, auc: wire.hasAuc ? wire.auc : nil)
    }
}

// MARK: - Tasks

/// A training task as it travels: everything in a `TrainInstruction` except the parameters,
/// which the participant fetches from the model store by ``modelDigest``.
public struct TrainTaskSpec: Sendable, Hashable {
    public var experimentID: String
    public var round: Int
    public var modelVersion: ModelVersion
    public var architecture: ModelArchitecture
    public var datasetName: String
    public var modelDigest: ModelDigest
    public var parameterCount: Int
    public var task: TrainingTask
    public var secure: SecureRoundAssignment?
    public var privacy: RoundPrivacy?

    public init(
        experimentID: String, round: Int, modelVersion: ModelVersion, architecture: ModelArchitecture,
        datasetName: String,
        modelDigest: ModelDigest, parameterCount: Int, task: TrainingTask, secure: SecureRoundAssignment?,
        privacy: RoundPrivacy? = nil
    ) {
        self.privacy = privacy
        self.experimentID = experimentID
        self.round = round
        self.modelVersion = modelVersion
        self.architecture = architecture
        self.datasetName = datasetName
        self.modelDigest = modelDigest
        self.parameterCount = parameterCount
        self.task = task
        self.secure = secure
    }

    /// The spec of `instruction`, whose parameters the model store holds under `modelDigest`
    /// (computed here when not given).
    public init(_ instruction: TrainInstruction, modelDigest: ModelDigest? = nil) {
        self.init(
            experimentID: instruction.experimentID, round: instruction.round, modelVersion: instruction.modelVersion,
            architecture: instruction.architecture, datasetName: instruction.datasetName,
            modelDigest: modelDigest ?? ModelDigest(parameters: instruction.parameters),
            parameterCount: instruction.parameters.count, task: instruction.task, secure: instruction.secure,
            privacy: instruction.privacy)
    }

    /// The instruction for the participant, once it has the parameters (fetched and verified
    /// against ``modelDigest`` by ``ChunkAssembler``). Refuses parameters of the wrong length.
    public func instruction(parameters: [Float]) throws(WireError) -> TrainInstruction {
        guard parameters.count == parameterCount else {
            throw WireError(
                code: .parameterCountMismatch,
                message: "the task announces \(parameterCount) parameters but \(parameters.count) were supplied.",
                field: wireField("TrainTask", "parameter_count"))
        }
        return TrainInstruction(
            experimentID: experimentID, round: round, modelVersion: modelVersion, architecture: architecture,
            datasetName: datasetName, parameters: parameters, task: task, secure: secure, privacy: privacy)
    }
}

/// An evaluation task as it travels: an `EvaluateInstruction` without the parameters.
public struct EvaluateTaskSpec: Sendable, Hashable {
    public var experimentID: String
    public var round: Int
    public var modelVersion: ModelVersion
    public var architecture: ModelArchitecture
    public var datasetName: String
    public var modelDigest: ModelDigest
    public var parameterCount: Int
    public var secure: SecureRoundAssignment?

    public init(
        experimentID: String, round: Int, modelVersion: ModelVersion, architecture: ModelArchitecture,
        datasetName: String,
        modelDigest: ModelDigest, parameterCount: Int, secure: SecureRoundAssignment? = nil
    ) {
        self.experimentID = experimentID
        self.round = round
        self.modelVersion = modelVersion
        self.architecture = architecture
        self.datasetName = datasetName
        self.modelDigest = modelDigest
        self.parameterCount = parameterCount
        self.secure = secure
    }

    public init(_ instruction: EvaluateInstruction, modelDigest: ModelDigest? = nil) {
        self.init(
            experimentID: instruction.experimentID, round: instruction.round, modelVersion: instruction.modelVersion,
            architecture: instruction.architecture, datasetName: instruction.datasetName,
            modelDigest: modelDigest ?? ModelDigest(parameters: instruction.parameters),
            parameterCount: instruction.parameters.count, secure: instruction.secure)
    }

    public func instruction(parameters: [Float]) throws(WireError) -> EvaluateInstruction {
        guard parameters.count == parameterCount else {
            throw WireError(
                code: .parameterCountMismatch,
                message: "the task announces \(parameterCount) parameters but \(parameters.count) were supplied.",
                field: wireField("EvaluateTask", "parameter_count"))
        }
        return EvaluateInstruction(
            experimentID: experimentID, round: round, modelVersion: modelVersion, architecture: architecture,
            datasetName: datasetName, parameters: parameters, secure: secure)
    }
}

extension Tessera_V1_TrainTask {
    /// The experiment id and round go into the envelope header, not here.
    public init(_ spec: TrainTaskSpec) throws(WireError) {
        self.init()
        modelVersion = try Tessera_V1_ModelVersion(spec.modelVersion)
        architecture = try Tessera_V1_ModelArchitecture(spec.architecture)
        datasetName = spec.datasetName
        modelDigest = spec.modelDigest.hex
        parameterCount = try checkedUInt64(spec.parameterCount, wireField("TrainTask", "parameter_count"))
        task = try Tessera_V1_TrainingTask(spec.task)
        if let secure = spec.secure { self.secure = try Tessera_V1_SecureRoundAssignment(secure) }
        if let privacy = spec.privacy { self.privacy = try Tessera_V1_RoundPrivacy(privacy) }
    }
}

extension TrainTaskSpec {
    /// Reads a task; its experiment and round come from the envelope `header`.
    public init(_ wire: Tessera_V1_TrainTask, header: EnvelopeHeader) throws(WireError) {
        let f = { (name: String) in wireField("TrainTask", name) }
        guard wire.hasModelVersion else { throw WireError.missing(f("model_version"), "the model version") }
        guard wire.hasArchitecture else { throw WireError.missing(f("architecture"), "the architecture") }
        guard wire.hasTask else { throw WireError.missing(f("task"), "the training task") }
        guard !wire.datasetName.isEmpty else { throw WireError.missing(f("dataset_name"), "the dataset name") }
        self.init(
            experimentID: header.experimentID, round: header.round, modelVersion: try ModelVersion(wire.modelVersion),
            architecture: try ModelArchitecture(wire.architecture), datasetName: wire.datasetName,
            modelDigest: try ModelDigest(hex: wire.modelDigest, field: f("model_digest")),
            parameterCount: try checkedPositiveInt(wire.parameterCount, f("parameter_count")),
            task: try TrainingTask(wire.task), secure: wire.hasSecure ? try SecureRoundAssignment(wire.secure) : nil,
            privacy: wire.hasPrivacy ? try RoundPrivacy(wire.privacy) : nil)
    }
}

extension Tessera_V1_EvaluateTask {
    public init(_ spec: EvaluateTaskSpec) throws(WireError) {
        self.init()
        modelVersion = try Tessera_V1_ModelVersion(spec.modelVersion)
        architecture = try Tessera_V1_ModelArchitecture(spec.architecture)
        datasetName = spec.datasetName
        modelDigest = spec.modelDigest.hex
        parameterCount = try checkedUInt64(spec.parameterCount, wireField("EvaluateTask", "parameter_count"))
        if let secure = spec.secure { self.secure = try Tessera_V1_SecureRoundAssignment(secure) }
    }
}

extension EvaluateTaskSpec {
    public init(_ wire: Tessera_V1_EvaluateTask, header: EnvelopeHeader) throws(WireError) {
        let f = { (name: String) in wireField("EvaluateTask", name) }
        guard wire.hasModelVersion else { throw WireError.missing(f("model_version"), "the model version") }
        guard wire.hasArchitecture else { throw WireError.missing(f("architecture"), "the architecture") }
        guard !wire.datasetName.isEmpty else { throw WireError.missing(f("dataset_name"), "the dataset name") }
        self.init(
            experimentID: header.experimentID, round: header.round, modelVersion: try ModelVersion(wire.modelVersion),
            architecture: try ModelArchitecture(wire.architecture), datasetName: wire.datasetName,
            modelDigest: try ModelDigest(hex: wire.modelDigest, field: f("model_digest")),
            parameterCount: try checkedPositiveInt(wire.parameterCount, f("parameter_count")),
            secure: wire.hasSecure ? try SecureRoundAssignment(wire.secure) : nil)
    }
}
