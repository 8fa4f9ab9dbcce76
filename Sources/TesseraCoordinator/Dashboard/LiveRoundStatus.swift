public import TesseraFederation

/// Where the running experiment is, as the dashboard shows it live: a read-only snapshot the
/// ``CoordinatorService`` publishes to a ``LiveRoundBoard`` after every event it handles.
/// Times are on the coordinator's clock (seconds); the board maps them to wall time.
public struct LiveRoundStatus: Sendable, Hashable {
    public enum Phase: String, Sendable, Hashable, Codable {
        /// Waiting for enough eligible sites to start the next round.
        case waiting
        /// A round runs: see ``LiveRoundStatus/stage``.
        case running
        /// The experiment is over.
        case finished
    }

    public var phase: Phase
    /// The round in progress, or the last one started (0 before the first).
    public var round: Int
    public var completedRounds: Int
    public var roundsPlanned: Int
    /// The global model's version.
    public var modelVersion: ModelVersion
    /// Sites with a live session.
    public var connectedSites: Int
    /// The current stage of the round in progress, and those it has closed; `nil` unless
    /// ``phase`` is `running`.
    public var stage: StageProgress?
    /// Since when the coordinator waits for sites (``phase`` `waiting`).
    public var waitingSince: Double?

    public init(
        phase: Phase, round: Int, completedRounds: Int, roundsPlanned: Int, modelVersion: ModelVersion,
        connectedSites: Int, stage: StageProgress? = nil, waitingSince: Double? = nil
    ) {
        self.phase = phase
        self.round = round
        self.completedRounds = completedRounds
        self.roundsPlanned = roundsPlanned
        self.modelVersion = modelVersion
        self.connectedSites = connectedSites
        self.stage = stage
        self.waitingSince = waitingSince
    }

    /// The status of `machine` once it has handled an event.
    public init(_ machine: CoordinatorStateMachine, connectedSites: Int) {
        let stage = machine.stageProgress
        let phase: Phase =
            machine.isFinished ? .finished : stage != nil ? .running : .waiting
        self.init(
            phase: phase, round: stage?.round ?? machine.round, completedRounds: machine.completedRounds,
            roundsPlanned: machine.plan.rounds, modelVersion: machine.version, connectedSites: connectedSites,
            stage: stage, waitingSince: machine.waitingForParticipantsSince)
    }
}
