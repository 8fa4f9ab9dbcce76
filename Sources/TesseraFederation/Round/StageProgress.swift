/// What a dashboard shows of the round in progress: a read-only snapshot of
/// ``CoordinatorStateMachine``, taken after an event. Times are on the machine's clock
/// (the `now` it is handed), so the caller maps them to wall time.
public struct StageProgress: Sendable, Hashable {
    /// A stage of the round that is over, with how many of those it waited for answered it.
    public struct FinishedStage: Sendable, Hashable, Codable {
        public var stage: RoundStage
        public var answered: Int
        public var asked: Int

        public init(stage: RoundStage, answered: Int, asked: Int) {
            self.stage = stage
            self.answered = answered
            self.asked = asked
        }
    }

    public var round: Int
    /// The attempt of this round: 0, or more for a round a restart runs again.
    public var attempt: Int
    public var stage: RoundStage
    /// The sites selected for the round.
    public var cohortSize: Int
    /// How many sites the current stage waits for, and how many of them have answered it.
    public var asked: Int
    public var answered: Int
    /// The round's dropouts so far: sites gone or dropped in any of its stages.
    public var dropouts: Int
    /// When the current stage started and when its deadline passes, on the machine's clock.
    public var stageStartedAt: Double
    public var stageDeadline: Double
    /// The stages of this round already closed, in order (a secure evaluation runs its own
    /// SecAgg stages after `evaluation`).
    public var finishedStages: [FinishedStage]

    public init(
        round: Int, attempt: Int, stage: RoundStage, cohortSize: Int, asked: Int, answered: Int, dropouts: Int,
        stageStartedAt: Double, stageDeadline: Double, finishedStages: [FinishedStage] = []
    ) {
        self.finishedStages = finishedStages
        self.round = round
        self.attempt = attempt
        self.stage = stage
        self.cohortSize = cohortSize
        self.asked = asked
        self.answered = answered
        self.dropouts = dropouts
        self.stageStartedAt = stageStartedAt
        self.stageDeadline = stageDeadline
    }
}
