import Foundation

/// What one round of an experiment produced: the row of the results table, the point on the
/// report's curves.
///
/// Metrics are optional because not every round evaluates (evaluation runs on a cadence) and
/// a failed round has no model metrics at all; a missing value is written as an empty CSV
/// cell and `null` in JSON, never as a made-up zero.
public struct RoundRecord: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable, Hashable {
        case completed
        case failed
    }

    public var round: Int
    public var status: Status
    /// Why the round failed, in words a researcher can act on.
    public var failureReason: String?
    /// The model version the round published (`MAJOR.MINOR.PATCH`), if it completed.
    public var modelVersion: String?
    /// Participants selected for the round.
    public var cohortSize: Int
    /// Participants whose update went into the aggregate.
    public var contributors: Int
    /// Participants of the cohort whose update is not in the aggregate (`cohortSize −
    /// contributors`): they dropped out, timed out or failed before their update counted. Under
    /// secure aggregation a participant lost after its masked input arrived still contributed
    /// (its input is in the sum; its peers' shares unmask it), so it is not a dropout here.
    public var dropouts: Int
    /// Sample-weighted mean training loss reported by the contributors.
    public var trainLoss: Double?
    /// Sample-weighted evaluation metrics on the participants' held-out data. A site with no
    /// held-out rows does not evaluate, so these never come from training rows.
    public var evalLoss: Double?
    public var evalAccuracy: Double?
    public var evalAUC: Double?
    /// The published model's metrics on the coordinator's central test set
    /// (`evaluation.dataset`), when the experiment names one.
    public var centralLoss: Double?
    public var centralAccuracy: Double?
    public var centralAUC: Double?
    /// Seconds spent in each stage, keyed by stage name (`train`, `advertise_keys`, …).
    public var stageSeconds: [String: Double]
    /// Wall time of the whole round in seconds.
    public var seconds: Double
    /// The round's public randomness (hex): the seed its cohort, graph permutation and SecAgg
    /// round ids came from, so a run can be audited and replayed.
    public var publicSeed: String?
    /// Which run of this round produced the record: `nil` for the first; a coordinator restarted
    /// mid-round runs the round again from its start as attempt 1, 2, … with fresh randomness.
    public var attempt: Int?
    /// Differential privacy: the ε spent so far and what this round charged; `nil` without.
    public var privacy: RoundPrivacyRecord?

    public init(
        round: Int, status: Status = .completed, failureReason: String? = nil, modelVersion: String? = nil,
        cohortSize: Int, contributors: Int, dropouts: Int, trainLoss: Double? = nil, evalLoss: Double? = nil,
        evalAccuracy: Double? = nil, evalAUC: Double? = nil, centralLoss: Double? = nil,
        centralAccuracy: Double? = nil, centralAUC: Double? = nil, stageSeconds: [String: Double] = [:],
        seconds: Double, publicSeed: String? = nil, attempt: Int? = nil, privacy: RoundPrivacyRecord? = nil
    ) {
        self.privacy = privacy
        self.attempt = attempt
        self.round = round
        self.status = status
        self.failureReason = failureReason
        self.modelVersion = modelVersion
        self.cohortSize = cohortSize
        self.contributors = contributors
        self.dropouts = dropouts
        self.trainLoss = trainLoss
        self.evalLoss = evalLoss
        self.evalAccuracy = evalAccuracy
        self.evalAUC = evalAUC
        self.centralLoss = centralLoss
        self.centralAccuracy = centralAccuracy
        self.centralAUC = centralAUC
        self.stageSeconds = stageSeconds
        self.seconds = seconds
        self.publicSeed = publicSeed
    }
}

extension RoundRecord {
    /// ``ExperimentResults/finalAccuracy`` of these records.
    public static func finalAccuracy(of records: [RoundRecord]) -> (value: Double, source: String)? {
        guard let last = records.last(where: { $0.status == .completed }) else { return nil }
        if let central = last.centralAccuracy { return (central, "central test set") }
        if let held = last.evalAccuracy { return (held, "sites' held-out data") }
        return nil
    }

    /// The one progress line per round that the CLI, the coordinator's log and the reports use.
    public var summaryLine: String {
        var line = "round \(round): \(status.rawValue)"
        line += ", cohort \(cohortSize), contributors \(contributors), dropouts \(dropouts)"
        if let trainLoss { line += ", train loss \(Self.fixed(trainLoss))" }
        if let evalAccuracy { line += ", accuracy \(Self.fixed(evalAccuracy))" }
        if let evalAUC { line += ", AUC \(Self.fixed(evalAUC))" }
        if let centralAccuracy { line += ", central test set accuracy \(Self.fixed(centralAccuracy))" }
        if let centralAUC { line += ", central test set AUC \(Self.fixed(centralAUC))" }
        if let modelVersion { line += ", model \(modelVersion)" }
        if let failureReason { line += " — \(failureReason)" }
        return line
    }

    /// Whether the round carries central test-set metrics.
    public var hasCentralEvaluation: Bool { centralLoss != nil || centralAccuracy != nil || centralAUC != nil }

    private static func fixed(_ value: Double) -> String { String(format: "%.4f", value) }
}

/// Everything an experiment run reports.
public struct ExperimentResults: Codable, Sendable, Hashable {
    public var experiment: String
    public var configHash: String
    public var seed: UInt64
    public var startedAt: String
    public var rounds: [RoundRecord]
    /// Free-form facts shown at the top of the report (strategy, secure aggregation, …).
    public var summary: [String: String]

    /// The accuracy a run reports as its result, and on what: the central test set's when the
    /// last completed round has one, else the sites' held-out figure. `nil` when neither was
    /// measured (no site held rows out, and no central test set): never a training figure.
    public var finalAccuracy: (value: Double, source: String)? {
        RoundRecord.finalAccuracy(of: rounds)
    }

    public init(
        experiment: String, configHash: String, seed: UInt64, startedAt: String, rounds: [RoundRecord] = [],
        summary: [String: String] = [:]
    ) {
        self.experiment = experiment
        self.configHash = configHash
        self.seed = seed
        self.startedAt = startedAt
        self.rounds = rounds
        self.summary = summary
    }
}
