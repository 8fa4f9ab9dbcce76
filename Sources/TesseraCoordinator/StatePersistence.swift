public import Foundation
import Synchronization
public import TesseraFederation
public import TesseraState
import TesseraSupport
import TesseraTensor

/// Where the coordinator service commits what its machine decides, before it carries any of it
/// out (see ``CoordinatorService``): a round's start before its first message leaves, a
/// finished round before the next one's first message leaves.
public protocol RoundPersistence: Sendable {
    /// Commits what `actions` (one event's) change; throws if the commit failed, and then the
    /// service carries out none of them and stops.
    ///
    /// - Parameter now: the instant of the machine's clock the actions were decided at.
    func persist(_ actions: [CoordinatorAction], now: Double) throws
    /// A site's session registered (its Hello was accepted).
    func siteConnected(_ descriptor: ParticipantDescriptor, fingerprint: String?) throws
    /// A site's registered session ended.
    func siteDisconnected(_ site: SiteID) throws
}

/// One run of one experiment recorded in a ``CoordinatorState``: rounds, model versions (their
/// safetensors blobs first), strategy state, site outcomes and breakers, and the log.
///
/// Breakers are kept on the machine's clock in the machine and on the wall clock in the
/// state, so that a bench survives a restart; ``breakers(now:)`` and the commits convert.
public final class ExperimentRecorder: RoundPersistence {
    public let state: CoordinatorState
    public let experiment: ExperimentRecord
    public let run: Int64
    private let layout: [ParameterEntry]
    private let metadata: [String: String]
    private let wallClock: @Sendable () -> Date
    private let pending = Mutex(Pending())

    private struct Pending {
        var model: PublishedModel?
        var outcomes: [SiteID: SiteRoundOutcome] = [:]
        var breakers: [SiteID: CircuitBreaker] = [:]
        var log: [String] = []
    }

    /// The most log lines kept between two commits; older ones are dropped (the process log
    /// still has them).
    static let maximumPendingLogLines = 1000

    public init(
        state: CoordinatorState, experiment: ExperimentRecord, run: Int64, architecture: ModelArchitecture,
        wallClock: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.state = state
        self.experiment = experiment
        self.run = run
        self.layout = try architecture.build(seed: 0).parameterLayout
        self.metadata = [
            "experiment": experiment.name, "config_hash": experiment.configHash, "architecture": architecture.summary,
        ]
        self.wallClock = wallClock
    }

    /// The safetensors file of `parameters` as version `version`: the bytes the registry
    /// stores and `model.safetensors` holds (the same metadata, so the same digest).
    public func artifact(_ parameters: [Float], version: ModelVersion) throws -> [UInt8] {
        try artifactContents(parameters, version: version).joined
    }

    /// ``artifact(_:version:)`` as the header and the parameters it is made of, which the
    /// state writes to disk without joining them first.
    func artifactContents(_ parameters: [Float], version: ModelVersion) throws -> FileContents {
        var metadata = metadata
        metadata["version"] = version.description
        return try Safetensors.contents(parameters, layout: layout, metadata: metadata)
    }

    /// The recorded breakers moved onto the machine's clock, whose current instant is `now`.
    public func breakers(now: Double) throws -> [SiteID: CircuitBreaker] {
        let offset = now - wallClock().timeIntervalSince1970
        return try state.breakers().mapValues { $0.shifted(by: offset) }
    }

    public func persist(_ actions: [CoordinatorAction], now: Double) throws {
        let toWall = wallClock().timeIntervalSince1970 - now
        // A finished round waits for the rest of its event: when the next round starts in the
        // same event (the usual round boundary), both commit in one transaction.
        var finished: (commit: RoundCommit, taken: Pending)?
        for action in actions {
            switch action {
            case .publish(let model):
                pending.withLock { $0.model = model }
            case .siteOutcomes(_, let outcomes, let breakers):
                pending.withLock {
                    $0.outcomes.merge(outcomes) { $1 }
                    $0.breakers.merge(breakers.mapValues { $0.shifted(by: toWall) }) { $1 }
                }
            case .log(let line):
                pending.withLock {
                    $0.log.append(line)
                    if $0.log.count > Self.maximumPendingLogLines { $0.log.removeFirst() }
                }
            case .roundFinished(let record):
                if let earlier = finished { try commit(earlier, thenStart: nil) }
                let taken = pending.withLock { pending in
                    defer { pending = Pending() }
                    return pending
                }
                finished = (try roundCommit(record, taken), taken)
            case .roundStarted(let round, let attempt, let seed):
                let log = pending.withLock { pending in
                    defer { pending.log = [] }; return pending.log
                }
                let start = RoundStart(round: round, attempt: attempt, publicSeed: seed, logLines: log)
                if let round = finished {
                    finished = nil
                    try commit(round, thenStart: start)
                } else {
                    // The round boundary is where a cancellation takes effect.
                    let current = try state.experiment(experiment.id)
                    if current.status == .cancelled {
                        throw ExperimentCancelled(experiment: experiment.id, message: current.message)
                    }
                    try state.recordRoundStart(
                        experiment: experiment.id, run: run, round: round, attempt: attempt, publicSeed: seed,
                        logLines: log)
                }
            case .send, .scheduleDeadline, .reject, .experimentFinished, .participantLost:
                break
            }
        }
        if let round = finished { try commit(round, thenStart: nil) }
    }

    /// What a finished round commits, from its record and what its event gathered.
    private func roundCommit(_ record: RoundRecord, _ taken: Pending) throws -> RoundCommit {
        var artifact: ModelArtifact?
        if record.status == .completed, let model = taken.model, record.modelVersion == model.version.description {
            artifact = ModelArtifact(
                version: model.version, parent: model.parent.patch > 0 ? model.parent : nil,
                contents: try artifactContents(model.parameters, version: model.version),
                strategyState: model.strategyState, metrics: Self.metrics(of: record))
        }
        return RoundCommit(
            experiment: experiment.id, run: run, attempt: record.attempt ?? 0, record: record, model: artifact,
            siteOutcomes: taken.outcomes, breakers: taken.breakers, logLines: taken.log)
    }

    /// Commits a finished round, and the next round's start with it when there is one. The round
    /// boundary is where a cancellation takes effect: the finished round is committed, the next
    /// never starts.
    private func commit(_ round: (commit: RoundCommit, taken: Pending), thenStart next: RoundStart?) throws {
        let current: ExperimentRecord
        do {
            current = try state.commitRound(round.commit, thenStart: next)
        } catch {
            // Kept for the next try: nothing of the round was committed.
            pending.withLock { $0 = round.taken }
            throw error
        }
        if next != nil, current.status == .cancelled {
            throw ExperimentCancelled(experiment: experiment.id, message: current.message)
        }
    }

    public func siteConnected(_ descriptor: ParticipantDescriptor, fingerprint: String?) throws {
        try state.siteConnected(
            SiteAnnouncement(
                site: descriptor.site, fingerprint: fingerprint ?? "", softwareVersion: descriptor.softwareVersion,
                cores: descriptor.cores, memoryBytes: descriptor.memoryBytes,
                datasets: descriptor.datasets.sorted { $0.key < $1.key }.map {
                    DatasetOfferRecord(
                        name: $0.key, rows: $0.value, features: descriptor.schemas[$0.key]?.features,
                        schemaHash: descriptor.schemas[$0.key]?.hash)
                }))
    }

    public func siteDisconnected(_ site: SiteID) throws {
        try state.siteDisconnected(site)
    }

    /// The named metrics a model version carries, from the round that produced it.
    static func metrics(of record: RoundRecord) -> [String: Double] {
        var metrics: [String: Double] = [:]
        metrics["train_loss"] = record.trainLoss
        metrics["loss"] = record.evalLoss
        metrics["accuracy"] = record.evalAccuracy
        metrics["auc"] = record.evalAUC
        metrics["central_loss"] = record.centralLoss
        metrics["central_accuracy"] = record.centralAccuracy
        metrics["central_auc"] = record.centralAUC
        // The privacy the experiment had spent when this version was published, so that
        // `tessera models list --where "epsilon<=3"` finds the versions within a budget.
        metrics["epsilon"] = record.privacy?.epsilon
        metrics["delta"] = record.privacy?.delta
        return metrics
    }
}

/// The experiment was cancelled (`tessera experiments cancel`) while it ran: its coordinator
/// stops at the next round boundary.
public struct ExperimentCancelled: Error, Sendable, CustomStringConvertible {
    public var experiment: Int64
    public var message: String?

    public var description: String { "experiment \(experiment) was cancelled" + (message.map { ": \($0)" } ?? "") }
}

extension CircuitBreaker {
    /// The same breaker on a clock `offset` seconds ahead.
    func shifted(by offset: Double) -> CircuitBreaker {
        guard case .open(let until) = state else { return self }
        return CircuitBreaker(
            state: .open(until: until + offset), consecutiveFailures: consecutiveFailures, trips: trips)
    }
}
