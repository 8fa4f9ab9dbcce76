import Foundation
import Synchronization
import TesseraCoordinator
import TesseraState
import Testing

/// `tessera submit --follow`: every log line once, in order, until the experiment finishes.
@Suite struct ExperimentFollowerTests {
    static func record(_ status: ExperimentStatus) -> ExperimentRecord {
        ExperimentRecord(
            id: 7, name: "study", configYAML: "name: study\n", configHash: "h", source: nil, status: status,
            submittedBy: "researcher:alice", submittedAt: Date(timeIntervalSince1970: 0), startedAt: nil,
            finishedAt: nil, versionMajor: 1, versionMinor: 0, architecture: "LR", roundsPlanned: 2, message: nil)
    }

    static func line(_ second: Double, _ text: String) -> (at: Date, line: String) {
        (Date(timeIntervalSince1970: second), text)
    }

    @Test func eachLineIsShownOnceAndTheFollowerStopsWhenTheExperimentFinishes() async throws {
        // Three answers: the log grows, overlapping what was already shown, then the run ends.
        let answers: [ExperimentFollower.Snapshot] = [
            (Self.record(.queued), []),
            (Self.record(.running), [Self.line(1, "round 1: selected 3 of 3"), Self.line(2, "round 1: completed, …")]),
            (
                Self.record(.completed),
                [
                    Self.line(2, "round 1: completed, …"), Self.line(3, "round 2: selected 3 of 3"),
                    Self.line(4, "round 2: completed, …"),
                ]
            ),
        ]
        let calls = Mutex(0)
        let waits = Mutex<[Duration]>([])
        let follower = ExperimentFollower(
            interval: .seconds(2),
            fetch: {
                let index = calls.withLock { count in
                    defer { count += 1 }
                    return count
                }
                return answers[min(index, answers.count - 1)]
            },
            wait: { duration in waits.withLock { $0.append(duration) } })
        var shown: [String] = []
        let final = try await follower.run { _, line in shown.append(line) }
        #expect(final.status == .completed)
        #expect(
            shown == [
                "round 1: selected 3 of 3", "round 1: completed, …", "round 2: selected 3 of 3",
                "round 2: completed, …",
            ])
        #expect(calls.withLock { $0 } == 3)
        // It waited between answers, never after the last.
        #expect(waits.withLock { $0 } == [.seconds(2), .seconds(2)])
    }

    @Test func aCancelledExperimentEndsTheFollowerWithItsRecord() async throws {
        let follower = ExperimentFollower(
            fetch: { (Self.record(.cancelled), [Self.line(1, "cancelled by researcher:alice")]) },
            wait: { _ in Issue.record("a finished experiment is not waited on") })
        var shown: [String] = []
        let final = try await follower.run { _, line in shown.append(line) }
        #expect(final.status == .cancelled && shown == ["cancelled by researcher:alice"])
    }
}
