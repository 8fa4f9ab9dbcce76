public import Foundation
public import TesseraFederation
public import TesseraSupport

/// Where an experiment is in the coordinator's queue.
public enum ExperimentStatus: String, Codable, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case queued, running, completed, failed, cancelled

    /// Finished experiments are never run again.
    public var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }
    public var description: String { rawValue }
}

/// An experiment as the state records it: the exact configuration it was submitted with (so a
/// restart runs what was submitted, whatever happened to the file since), who submitted it,
/// and the model version line it writes.
public struct ExperimentRecord: Codable, Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var configYAML: String
    public var configHash: String
    /// The file it was read from, for messages only.
    public var source: String?
    public var status: ExperimentStatus
    public var submittedBy: String
    public var submittedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// MAJOR.MINOR of every version it publishes (``CoordinatorState/submit(_:)`` chooses them).
    public var versionMajor: Int
    public var versionMinor: Int
    public var architecture: String
    public var roundsPlanned: Int
    /// Why it failed or was cancelled, or the last word on it.
    public var message: String?

    public init(
        id: Int64, name: String, configYAML: String, configHash: String, source: String?, status: ExperimentStatus,
        submittedBy: String, submittedAt: Date, startedAt: Date?, finishedAt: Date?, versionMajor: Int,
        versionMinor: Int, architecture: String, roundsPlanned: Int, message: String?
    ) {
        self.id = id
        self.name = name
        self.configYAML = configYAML
        self.configHash = configHash
        self.source = source
        self.status = status
        self.submittedBy = submittedBy
        self.submittedAt = submittedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.architecture = architecture
        self.roundsPlanned = roundsPlanned
        self.message = message
    }
}

/// What to submit: the experiment's configuration and where it came from.
public struct ExperimentSubmission: Sendable, Hashable {
    public var name: String
    public var configYAML: String
    public var configHash: String
    public var source: String?
    public var architecture: String
    public var rounds: Int
    public var submittedBy: String

    public init(
        name: String, configYAML: String, configHash: String, source: String? = nil, architecture: String,
        rounds: Int, submittedBy: String
    ) {
        self.name = name
        self.configYAML = configYAML
        self.configHash = configHash
        self.source = source
        self.architecture = architecture
        self.rounds = rounds
        self.submittedBy = submittedBy
    }
}

/// What a restarted coordinator needs to pick an experiment up where it stopped.
public struct ExperimentCheckpoint: Sendable {
    public var experiment: ExperimentRecord
    /// Every finished round (completed or failed), in order.
    public var records: [RoundRecord]
    /// The latest version it published, if any round completed.
    public var latestModel: RegisteredModel?
    /// The saved strategy state of ``latestModel`` (`nil` before the first completed round).
    public var strategyState: StrategyState?
    /// The attempt the next round starts as (one more than every attempt made of it).
    public var nextAttempt: Int
    /// How many runs (coordinator lifetimes) worked on it before.
    public var runs: Int
}

/// A completed round's model version, as a round commit registers it.
public struct ModelArtifact: Sendable {
    public var version: ModelVersion
    public var parent: ModelVersion?
    /// The safetensors file of the model.
    public var contents: FileContents
    public var strategyState: StrategyState
    public var metrics: [String: Double]

    public init(
        version: ModelVersion, parent: ModelVersion?, contents: FileContents, strategyState: StrategyState,
        metrics: [String: Double]
    ) {
        self.version = version
        self.parent = parent
        self.contents = contents
        self.strategyState = strategyState
        self.metrics = metrics
    }

    public init(
        version: ModelVersion, parent: ModelVersion?, bytes: [UInt8], strategyState: StrategyState,
        metrics: [String: Double]
    ) {
        self.init(
            version: version, parent: parent, contents: FileContents(bytes), strategyState: strategyState,
            metrics: metrics)
    }
}

/// Everything a finished round changes, committed in one transaction after its blobs are on
/// disk: the round's record and stages, its model version, the outcomes and breakers of its
/// sites, and the log lines since the last commit.
public struct RoundCommit: Sendable {
    public var experiment: Int64
    public var run: Int64
    public var attempt: Int
    public var record: RoundRecord
    public var model: ModelArtifact?
    public var siteOutcomes: [String: SiteRoundOutcome]
    /// The breakers of the round's sites after it, with `open(until:)` in seconds since 1970.
    public var breakers: [String: CircuitBreaker]
    public var logLines: [String]

    public init(
        experiment: Int64, run: Int64, attempt: Int, record: RoundRecord, model: ModelArtifact? = nil,
        siteOutcomes: [String: SiteRoundOutcome] = [:], breakers: [String: CircuitBreaker] = [:],
        logLines: [String] = []
    ) {
        self.experiment = experiment
        self.run = run
        self.attempt = attempt
        self.record = record
        self.model = model
        self.siteOutcomes = siteOutcomes
        self.breakers = breakers
        self.logLines = logLines
    }
}

/// A round attempt about to start: recorded before its first message leaves, so that a
/// restart knows the attempt was made and gives the round's next run fresh randomness.
public struct RoundStart: Sendable, Hashable {
    public var round: Int
    public var attempt: Int
    public var publicSeed: String
    /// The log lines since the last commit.
    public var logLines: [String]

    public init(round: Int, attempt: Int, publicSeed: String, logLines: [String] = []) {
        self.round = round
        self.attempt = attempt
        self.publicSeed = publicSeed
        self.logLines = logLines
    }
}

/// A dataset a site advertises.
public struct DatasetOfferRecord: Codable, Sendable, Hashable {
    public var name: String
    public var rows: Int
    /// Features per row, when the site reports it.
    public var features: Int?
    /// A hash of the feature schema (names, kinds, order), when the site reports it.
    public var schemaHash: String?

    public init(name: String, rows: Int, features: Int? = nil, schemaHash: String? = nil) {
        self.name = name
        self.rows = rows
        self.features = features
        self.schemaHash = schemaHash
    }
}

/// What a site told the coordinator when it connected.
public struct SiteAnnouncement: Sendable, Hashable {
    public var site: String
    /// SHA-256 (hex) of its TLS certificate (DER); empty on transports without certificates.
    public var fingerprint: String
    public var softwareVersion: String
    public var cores: Int
    public var memoryBytes: Int?
    public var datasets: [DatasetOfferRecord]

    public init(
        site: String, fingerprint: String, softwareVersion: String, cores: Int, memoryBytes: Int? = nil,
        datasets: [DatasetOfferRecord]
    ) {
        self.site = site
        self.fingerprint = fingerprint
        self.softwareVersion = softwareVersion
        self.cores = cores
        self.memoryBytes = memoryBytes
        self.datasets = datasets
    }
}

/// A site in the participant registry: every site that ever connected.
public struct SiteRecord: Codable, Sendable, Hashable {
    public var site: String
    public var fingerprint: String
    public var firstSeen: Date
    public var lastSeen: Date
    public var softwareVersion: String
    public var cores: Int
    public var memoryBytes: Int?
    public var datasets: [DatasetOfferRecord]
    public var connected: Bool
    public var revoked: Bool
    /// Its breaker, `open(until:)` in seconds since 1970.
    public var breaker: CircuitBreaker
    /// Its latest round outcomes, newest last.
    public var recent: [SiteRoundOutcome]

    /// Its health at `now` (derived, never stored).
    public func health(at now: Date) -> SiteHealth {
        SiteHealth.derive(
            revoked: revoked, connected: connected, breaker: breaker, recent: recent,
            now: now.timeIntervalSince1970)
    }
}
