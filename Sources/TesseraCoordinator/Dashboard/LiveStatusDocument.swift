import Foundation
import TesseraFederation

/// The live status as JSON: what `/api/status` answers and each `status` event of `/events`
/// carries. Wall times are milliseconds since 1970, as the browser's `Date` takes them.
/// JSONEncoder escapes every string, so a name a researcher chose cannot break out of it.
struct LiveStatusDocument: Encodable, Sendable {
    struct Stage: Encodable, Sendable {
        var stage: String
        var answered: Int
        var asked: Int
    }

    var sequence: Int
    var experimentID: Int64?
    var experimentName: String?
    /// `idle` (no experiment), `starting` (no status yet), or the status's phase.
    var phase: String
    var round: Int?
    var attempt: Int?
    var completedRounds: Int?
    var roundsPlanned: Int?
    var modelVersion: String?
    var connectedSites: Int?
    var stage: String?
    var cohortSize: Int?
    var answered: Int?
    var asked: Int?
    var dropouts: Int?
    var stageStartedAtMs: Double?
    var stageDeadlineMs: Double?
    var waitingSinceMs: Double?
    var finishedStages: [Stage]

    init(_ snapshot: LiveRoundBoard.Snapshot) {
        sequence = snapshot.sequence
        experimentID = snapshot.experimentID
        experimentName = snapshot.experimentName
        finishedStages = []
        guard let status = snapshot.status else {
            phase = snapshot.experimentID == nil ? "idle" : "starting"
            return
        }
        func milliseconds(_ seconds: Double) -> Double {
            (snapshot.wallTime(seconds).timeIntervalSince1970 * 1000).rounded()
        }
        phase = status.phase.rawValue
        round = status.round
        completedRounds = status.completedRounds
        roundsPlanned = status.roundsPlanned
        modelVersion = status.modelVersion.description
        connectedSites = status.connectedSites
        waitingSinceMs = status.waitingSince.map(milliseconds)
        finishedStages = (status.stage?.finishedStages ?? []).map {
            Stage(stage: $0.stage.rawValue, answered: $0.answered, asked: $0.asked)
        }
        if let stage = status.stage {
            attempt = stage.attempt
            self.stage = stage.stage.rawValue
            cohortSize = stage.cohortSize
            answered = stage.answered
            asked = stage.asked
            dropouts = stage.dropouts
            stageStartedAtMs = milliseconds(stage.stageStartedAt)
            stageDeadlineMs = milliseconds(stage.stageDeadline)
        }
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain strings and numbers cannot fail.
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }
}
