import Foundation
import TesseraFederation
import TesseraState
import Testing

@Suite("The coordinator state: commit, reopen, resume")
struct CheckpointTests {
    static func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tessera-state-\(UUID().uuidString)")
    }

    static func submission(name: String = "trial", architecture: String = "logistic 4→2") -> ExperimentSubmission {
        ExperimentSubmission(
            name: name, configYAML: "name: \(name)\n", configHash: "abc", architecture: architecture, rounds: 3,
            submittedBy: "local:test")
    }

    @Test("A committed round survives reopening; a started one is abandoned and its round runs as a new attempt")
    func resumeAfterReopen() throws {
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let experimentID: Int64
        do {
            let state = try CoordinatorState(directory: folder)
            let experiment = try state.submit(Self.submission())
            experimentID = experiment.id
            let run = try state.beginRun(of: experiment.id)
            try state.recordRoundStart(experiment: experiment.id, run: run, round: 1, attempt: 0, publicSeed: "00")
            let record = RoundRecord(
                round: 1, modelVersion: "1.0.1", cohortSize: 2, contributors: 2, dropouts: 0, seconds: 1)
            let model = ModelArtifact(
                version: ModelVersion(major: 1, minor: 0, patch: 1), parent: ModelVersion(major: 1, minor: 0, patch: 0),
                bytes: [1, 2, 3],
                strategyState: StrategyState(strategy: "fedadam", rounds: 1, vectors: ["m": [0.5, 1]]),
                metrics: ["accuracy": 0.75])
            try state.commitRound(
                RoundCommit(experiment: experiment.id, run: run, attempt: 0, record: record, model: model))
            try state.recordRoundStart(experiment: experiment.id, run: run, round: 2, attempt: 0, publicSeed: "01")
        }
        let reopened = try CoordinatorState(directory: folder)
        _ = try reopened.beginRun(of: experimentID)
        let checkpoint = try reopened.checkpoint(of: experimentID)
        let rounds = checkpoint.records.map(\.round)
        #expect(rounds == [1])
        #expect(checkpoint.nextAttempt == 1)
        #expect(checkpoint.latestModel?.version == ModelVersion(major: 1, minor: 0, patch: 1))
        #expect(checkpoint.strategyState?.vectors["m"] == [0.5, 1])
        #expect(checkpoint.strategyState?.rounds == 1)
        let integrity = try reopened.integrityCheck()
        #expect(integrity == ["ok"])
    }

    @Test("MAJOR.MINOR: same name and architecture is the next MINOR, a new architecture the next MAJOR")
    func versionLines() throws {
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = try CoordinatorState(directory: folder)
        let first = try state.submit(Self.submission())
        let second = try state.submit(Self.submission())
        let third = try state.submit(Self.submission(architecture: "mlp 4→8→2"))
        let other = try state.submit(Self.submission(name: "other"))
        let lines = [first, second, third, other].map { "\($0.versionMajor).\($0.versionMinor)" }
        #expect(lines == ["1.0", "1.1", "2.0", "1.0"])
    }
}
