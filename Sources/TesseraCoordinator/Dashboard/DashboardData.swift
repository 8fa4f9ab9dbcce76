import Foundation
import TesseraFederation
import TesseraState

/// What the overview page shows, read from the state folder in one go.
struct DashboardOverview: Sendable {
    var experiments: [ExperimentRecord]
    var sites: [SiteRecord]
    var models: [RegisteredModel]
    var live: LiveRoundBoard.Snapshot
    var now: Date
    /// Whether the operator actions are on (a token file was given).
    var actionsEnabled: Bool

    /// The newest this many experiments and model versions are listed: a page's cost must not
    /// grow with the registry.
    static let listLimit = 50

    init(
        state: CoordinatorState, live: LiveRoundBoard.Snapshot, now: Date, actionsEnabled: Bool
    ) throws {
        experiments = Array(try state.experiments().suffix(Self.listLimit).reversed())
        sites = try state.sites()
        models = try state.models(matching: ModelQuery(limit: Self.listLimit))
        self.live = live
        self.now = now
        self.actionsEnabled = actionsEnabled
    }
}

/// What an experiment's page shows.
struct DashboardExperiment: Sendable {
    var checkpoint: ExperimentCheckpoint
    var models: [RegisteredModel]
    var log: [(at: Date, line: String)]
    var actionsEnabled: Bool

    /// The latest this many log lines are shown.
    static let logLines = 50

    init(state: CoordinatorState, id: Int64, actionsEnabled: Bool) throws {
        checkpoint = try state.checkpoint(of: id)
        models = try state.models(matching: ModelQuery(experiment: id, limit: DashboardOverview.listLimit))
        log = try state.logs(of: id, limit: Self.logLines)
        self.actionsEnabled = actionsEnabled
    }
}
