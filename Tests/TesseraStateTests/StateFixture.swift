import Foundation
import Synchronization
import TesseraFederation
import TesseraState
import TesseraTensor

/// A wall clock the tests move by hand: rows get known, distinct times.
final class TestClock: Sendable {
    /// 2026-01-01T00:00:00Z.
    static let start = Date(timeIntervalSince1970: 1_767_225_600)

    private let current = Mutex(TestClock.start)

    var now: Date { current.withLock { $0 } }
    var read: @Sendable () -> Date { { [self] in now } }

    func advance(_ seconds: Double) { current.withLock { $0 += seconds } }
}

/// A fresh state folder with a hand-moved clock, and helpers that fill it the way a
/// coordinator does (submit, run, commit rounds with real safetensors models).
struct StateFixture {
    let folder: URL
    let clock = TestClock()
    let state: CoordinatorState

    init(folder: URL? = nil) throws {
        self.folder =
            folder
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("tessera-state-\(UUID().uuidString)")
        state = try CoordinatorState(directory: self.folder, now: clock.read)
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }

    static func submission(
        name: String, architecture: String = "logistic 4→2", rounds: Int = 3
    )
        -> ExperimentSubmission
    {
        ExperimentSubmission(
            name: name, configYAML: "name: \(name)\nrounds: \(rounds)\n", configHash: "hash-\(name)",
            source: "Experiments/\(name).yaml", architecture: architecture, rounds: rounds, submittedBy: "local:test")
    }

    /// A two-tensor model (`w` 2×2 filled with `value`, `b` = [0, value]) as safetensors bytes;
    /// `wide` makes `w` 2×3, a different architecture.
    static func modelBytes(_ value: Float, wide: Bool = false) -> [UInt8] {
        let w = wide ? Tensor(repeating: value, shape: [2, 3]) : Tensor(repeating: value, shape: [2, 2])
        return try! Safetensors.encode([(name: "w", tensor: w), (name: "b", tensor: Tensor([0, value]))])
    }

    /// Submits an experiment and commits one completed round per entry of `metrics`, each
    /// publishing `NAME@MAJOR.MINOR.round` (model value = round), one minute apart.
    @discardableResult
    func runExperiment(
        _ name: String, metrics: [[String: Double]], wide: Bool = false,
        outcomes: [String: SiteRoundOutcome] = [:]
    ) throws -> ExperimentRecord {
        let experiment = try state.submit(Self.submission(name: name, rounds: metrics.count))
        let run = try state.beginRun(of: experiment.id)
        for (index, roundMetrics) in metrics.enumerated() {
            clock.advance(60)
            try commit(experiment, run: run, round: index + 1, metrics: roundMetrics, wide: wide, outcomes: outcomes)
        }
        return try state.experiment(experiment.id)
    }

    func version(_ experiment: ExperimentRecord, _ patch: Int) -> ModelVersion {
        ModelVersion(major: experiment.versionMajor, minor: experiment.versionMinor, patch: patch)
    }

    func commit(
        _ experiment: ExperimentRecord, run: Int64, round: Int, attempt: Int = 0, metrics: [String: Double] = [:],
        wide: Bool = false, outcomes: [String: SiteRoundOutcome] = [:], breakers: [String: CircuitBreaker] = [:],
        bytes: [UInt8]? = nil, version: ModelVersion? = nil
    ) throws {
        let published = version ?? self.version(experiment, round)
        let record = RoundRecord(
            round: round, modelVersion: published.description, cohortSize: 3, contributors: 2, dropouts: 1,
            evalLoss: metrics["loss"], evalAccuracy: metrics["accuracy"], seconds: 1)
        let model = ModelArtifact(
            version: published, parent: self.version(experiment, round - 1),
            bytes: bytes ?? Self.modelBytes(Float(round), wide: wide),
            strategyState: StrategyState(strategy: "fedavg", rounds: round), metrics: metrics)
        try state.commitRound(
            RoundCommit(
                experiment: experiment.id, run: run, attempt: attempt, record: record, model: model,
                siteOutcomes: outcomes, breakers: breakers, logLines: ["round \(round): aggregated"]))
    }

    static func announcement(
        _ site: String, software: String = "0.1.0",
        datasets: [DatasetOfferRecord] = [
            DatasetOfferRecord(name: "clinical-risk", rows: 1200, features: 12, schemaHash: "f00d")
        ]
    ) -> SiteAnnouncement {
        SiteAnnouncement(
            site: site, fingerprint: String(repeating: "ab", count: 32), softwareVersion: software, cores: 8,
            memoryBytes: 16 << 30, datasets: datasets)
    }
}
