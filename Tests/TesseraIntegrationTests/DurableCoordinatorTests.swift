import Foundation
import Synchronization
import TesseraCoordinator
import TesseraFederation
import TesseraSimulation
import TesseraState
import TesseraTesting
import Testing

/// The coordinator service with a durable state: what it commits, when, and what it does when
/// a commit fails.
@Suite struct DurableCoordinatorTests {
    /// Records every batch it is given and refuses the one that finishes `failingRound`.
    final class RecordingPersistence: RoundPersistence {
        let failingRound: Int?
        let batches = Mutex<[[CoordinatorAction]]>([])

        init(failingRound: Int?) { self.failingRound = failingRound }

        func persist(_ actions: [CoordinatorAction], now: Double) throws {
            batches.withLock { $0.append(actions) }
            for case .roundFinished(let record) in actions where record.round == failingRound {
                throw StateError(.diskFull, "the disk is full (played by the test)")
            }
        }

        func siteConnected(_ descriptor: ParticipantDescriptor, fingerprint: String?) throws {}
        func siteDisconnected(_ site: SiteID) throws {}
    }

    @Test("A round's end is committed before the next round's first message, in the same batch, ahead of it")
    func commitsBeforeTheNextRoundStarts() async throws {
        let prepared = try PreparedExperiment(
            yaml: syntheticYAML(name: "durable-order", participants: 3, rounds: 3, secure: false, evaluateEvery: 10))
        let persistence = RecordingPersistence(failingRound: nil)
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: try prepared.agents(), persistence: persistence, logger: testLogger())
        #expect(outcome.completedRounds == 3)
        let batches = persistence.batches.withLock { $0 }
        // Every batch that starts a round after the first also finishes the one before it, and
        // lists that end before the start and before any training request.
        for batch in batches {
            let finished = batch.firstIndex { if case .roundFinished = $0 { true } else { false } }
            let started = batch.firstIndex { if case .roundStarted = $0 { true } else { false } }
            let sent = batch.firstIndex { if case .send(_, .train) = $0 { true } else { false } }
            if let sent {
                let startedFirst = started.map { $0 < sent } ?? false
                #expect(startedFirst, "a training request is not preceded by its round's start: \(batch)")
            }
            if let finished, let started {
                #expect(finished < started, "the next round starts before the last one's end: \(batch)")
            }
        }
        let starts = batches.flatMap { $0 }.compactMap { action -> Int? in
            if case .roundStarted(let round, _, _) = action { round } else { nil }
        }
        #expect(starts == [1, 2, 3])
    }

    @Test("A commit that fails stops the coordinator: nothing of the next round is carried out")
    func failedCommitStops() async throws {
        let prepared = try PreparedExperiment(
            yaml: syntheticYAML(name: "durable-fail", participants: 3, rounds: 4, secure: false, evaluateEvery: 10))
        let persistence = RecordingPersistence(failingRound: 2)
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: try prepared.agents(), persistence: persistence, logger: testLogger())
        let batches = persistence.batches.withLock { $0 }
        // The refused batch is the last one the coordinator produced: it stopped there, and
        // round 3, whose start was in that batch, never reached a site.
        let last = try #require(batches.last)
        let finishesRoundTwo = last.contains {
            if case .roundFinished(let record) = $0 { record.round == 2 } else { false }
        }
        #expect(finishesRoundTwo, "\(last)")
        #expect(outcome.publishedVersions.count == 1, "versions published: \(outcome.publishedVersions)")
        #expect(outcome.completedRounds <= 2)
    }
}

/// Cancellation through the state (`tessera experiments cancel`) while the experiment runs.
@Suite struct CancellationTests {
    /// Forwards to the real recorder, and cancels the experiment (as `tessera experiments cancel`
    /// would, from another process) just as round 1 ends.
    final class CancellingAfterFirstRound: RoundPersistence {
        let recorder: ExperimentRecorder

        init(_ recorder: ExperimentRecorder) { self.recorder = recorder }

        func persist(_ actions: [CoordinatorAction], now: Double) throws {
            for case .roundFinished(let record) in actions where record.round == 1 {
                _ = try recorder.state.cancel(recorder.experiment.id, by: "local:test")
            }
            try recorder.persist(actions, now: now)
        }

        func siteConnected(_ descriptor: ParticipantDescriptor, fingerprint: String?) throws {
            try recorder.siteConnected(descriptor, fingerprint: fingerprint)
        }

        func siteDisconnected(_ site: SiteID) throws { try recorder.siteDisconnected(site) }
    }

    @Test("A running experiment cancelled in the state stops at the next round boundary and stays cancelled")
    func cancelledAtTheRoundBoundary() async throws {
        let prepared = try PreparedExperiment(
            yaml: syntheticYAML(name: "cancelled", participants: 3, rounds: 4, secure: false, evaluateEvery: 10))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-cancel-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (state, record, recorder) = try prepared.durableState(in: folder)
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: try prepared.agents(), persistence: CancellingAfterFirstRound(recorder),
            logger: testLogger())
        // Round 1 is committed (its model version too); round 2 never started, and the batch that
        // would have started it was not carried out.
        let rounds = try state.records(of: record.id).map(\.round)
        #expect(rounds == [1])
        let versions = try state.models(matching: ModelQuery(experiment: record.id)).map(\.version.patch)
        #expect(versions == [1])
        #expect(outcome.publishedVersions.isEmpty, "versions: \(outcome.publishedVersions)")
        // A coordinator that reports the experiment finished afterwards does not undo the cancellation.
        try state.finish(record.id, as: .completed, message: "1 of 4 rounds completed")
        #expect(try state.experiment(record.id).status == .cancelled)
    }
}
