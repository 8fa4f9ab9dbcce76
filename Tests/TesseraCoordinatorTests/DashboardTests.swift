import Foundation
import TesseraFederation
import TesseraState
import TesseraTesting
import TesseraTransport
import Testing

@testable import TesseraCoordinator

/// A state folder as a coordinator leaves it: an experiment submitted and run for one round
/// (a registered model version), and a site in the participant registry.
struct DashboardFixture {
    static let hostile = "<script>alert('x')</script>"

    let folder: URL
    let state: CoordinatorState
    let experiment: ExperimentRecord

    init(experimentName: String = "trial", site: String = "clinic-a", failureReason: String? = nil) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dash-\(UUID().uuidString)")
        state = try CoordinatorState(directory: folder, now: { Date(timeIntervalSince1970: 1_800_000_000) })
        experiment = try state.submit(
            ExperimentSubmission(
                name: experimentName, configYAML: "name: x\n", configHash: UUID().uuidString,
                architecture: "logistic regression", rounds: 3, submittedBy: "local:test"))
        let run = try state.beginRun(of: experiment.id)
        try state.siteConnected(
            SiteAnnouncement(
                site: site, fingerprint: "00", softwareVersion: "tessera-participant", cores: 2,
                datasets: [DatasetOfferRecord(name: experimentName, rows: 120)]))
        let record = RoundRecord(
            round: 1, modelVersion: "1.0.1", cohortSize: 3, contributors: 3, dropouts: 0, trainLoss: 0.7,
            evalAccuracy: 0.8, seconds: 1)
        try state.commitRound(
            RoundCommit(
                experiment: experiment.id, run: run, attempt: 0, record: record,
                model: ModelArtifact(
                    version: ModelVersion(major: 1, minor: 0, patch: 1),
                    parent: ModelVersion(major: 1, minor: 0, patch: 0),
                    bytes: [1, 2, 3], strategyState: StrategyState(strategy: "fedavg", rounds: 1),
                    metrics: ["accuracy": 0.8, Self.hostile: 1]),
                siteOutcomes: [site: .contributed], logLines: [failureReason ?? "round 1 completed"]))
        if let failureReason {
            try state.commitRound(
                RoundCommit(
                    experiment: experiment.id, run: run, attempt: 0,
                    record: RoundRecord(
                        round: 2, status: .failed, failureReason: failureReason, cohortSize: 3, contributors: 0,
                        dropouts: 3, seconds: 1)))
        }
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

@Suite struct DashboardTests {
    /// Everything a site or a researcher named comes out escaped: an experiment, a site, a
    /// dataset, a metric and a failure reason named `<script>…` never reach the page as markup.
    @Test func whatSitesAndResearchersWroteIsEscapedOnEveryPage() throws {
        let hostile = DashboardFixture.hostile
        let fixture = try DashboardFixture(experimentName: hostile, site: hostile, failureReason: hostile)
        defer { fixture.remove() }
        let board = LiveRoundBoard()
        board.begin(experiment: fixture.experiment.id, name: hostile)
        let overview = DashboardHTML.overview(
            try DashboardOverview(state: fixture.state, live: board.snapshot, now: Date(), actionsEnabled: true))
        let detail = DashboardHTML.experiment(
            try DashboardExperiment(state: fixture.state, id: fixture.experiment.id, actionsEnabled: true))
        let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        for page in [overview, detail] {
            #expect(!page.contains("<script>alert"))
            #expect(!page.contains("<script>"))
            #expect(page.contains(escaped))
        }
        // The site, its dataset, the model (named after the experiment) and the metric name.
        let siteRow = overview.split(separator: "\n").first { $0.contains("class=\"site\"") }.map(String.init) ?? ""
        #expect(siteRow.contains("data-site=\"\(escaped)\""))
        #expect(siteRow.contains("\(escaped) (120)"))
        #expect(detail.contains("Experiment #\(fixture.experiment.id): \(escaped)"))
        #expect(detail.contains("\(escaped) 1"))
        // The failure reason, in the rounds table and in the log.
        #expect(detail.components(separatedBy: escaped).count > 4)
    }

    @Test func theOverviewListsExperimentsSitesAndModelVersionsWithTheirLineage() throws {
        let fixture = try DashboardFixture()
        defer { fixture.remove() }
        let page = DashboardHTML.overview(
            try DashboardOverview(
                state: fixture.state, live: LiveRoundBoard().snapshot, now: Date(timeIntervalSince1970: 1_800_000_000),
                actionsEnabled: false))
        #expect(page.contains("<tr class=\"experiment\" data-id=\"\(fixture.experiment.id)\">"))
        #expect(
            page.contains(
                "<tr class=\"site\" data-site=\"clinic-a\"><td>clinic-a</td><td class=\"health-healthy\">healthy"))
        #expect(
            page.contains(
                "<tr class=\"model\" data-model=\"trial@1.0.1\"><td class=\"version nowrap\">trial@1.0.1</td>"))
        #expect(page.contains("<td class=\"nowrap\">trial@1.0.0</td>"))
        #expect(page.contains("accuracy 0.8"))
        // Read-only: no action buttons without a token.
        #expect(!page.contains("data-action="))
        #expect(page.contains("id=\"live-phase\">idle<"))
    }

    @Test func theExperimentPageDrawsTheReportsCurvesAndOffersCancelOnlyToOperators() throws {
        let fixture = try DashboardFixture()
        defer { fixture.remove() }
        let readOnly = DashboardHTML.experiment(
            try DashboardExperiment(state: fixture.state, id: fixture.experiment.id, actionsEnabled: false))
        #expect(readOnly.contains("<svg"))
        #expect(readOnly.contains("Accuracy per round"))
        #expect(readOnly.contains("Participants per round"))
        #expect(readOnly.contains("<dt>Runs</dt><dd>1</dd>"))
        #expect(!readOnly.contains("data-action=\"cancel\""))
        let operated = DashboardHTML.experiment(
            try DashboardExperiment(state: fixture.state, id: fixture.experiment.id, actionsEnabled: true))
        #expect(operated.contains("data-action=\"cancel\" data-experiment=\"\(fixture.experiment.id)\""))
        #expect(operated.contains("data-action=\"promote\" data-model=\"trial@1.0.1\" data-stage=\"production\""))
    }

    /// The live section shows the round, the stage, how many answered it, the stages the round
    /// has closed, and the deadline in wall time.
    @Test func theLiveSectionShowsTheStageItsAnswersAndTheClosedStages() {
        let board = LiveRoundBoard(wallClock: { Date(timeIntervalSince1970: 1_800_000_000) })
        board.begin(experiment: 7, name: "trial")
        func status(
            _ stage: RoundStage, answered: Int, at: Double, closed: [StageProgress.FinishedStage] = []
        )
            -> LiveRoundStatus
        {
            LiveRoundStatus(
                phase: .running, round: 2, completedRounds: 1, roundsPlanned: 5,
                modelVersion: ModelVersion(major: 1, minor: 0, patch: 1), connectedSites: 3,
                stage: StageProgress(
                    round: 2, attempt: 0, stage: stage, cohortSize: 3, asked: 3, answered: answered, dropouts: 0,
                    stageStartedAt: at, stageDeadline: at + 60, finishedStages: closed))
        }
        board.publish(status(.training, answered: 1, at: 100), now: 100)
        let training = [StageProgress.FinishedStage(stage: .training, answered: 3, asked: 3)]
        board.publish(status(.shareKeys, answered: 1, at: 102, closed: training), now: 102)
        let snapshot = board.snapshot
        let html = DashboardHTML.live(snapshot)
        #expect(html.contains("id=\"live-round\" data-round=\"2\">2 of 5<"))
        #expect(html.contains("id=\"live-stage\">share_keys<"))
        #expect(html.contains("1 of 3 answered"))
        #expect(html.contains("<li class=\"done\">training 3/3</li><li class=\"current\">share_keys</li>"))
        // The deadline is 60 s after the stage began, in wall time (the clock anchored at 100).
        let document = LiveStatusDocument(snapshot)
        let deadline: Double = (1_800_000_000 + 62) * 1000
        #expect(document.stageDeadlineMs == deadline)
        // Publishing the same status again changes nothing.
        let sequence = board.snapshot.sequence
        board.publish(status(.shareKeys, answered: 1, at: 102, closed: training), now: 103)
        #expect(board.snapshot.sequence == sequence)
    }

    /// The machine's read-only view: a round in training with its cohort, none answered yet.
    @Test func theStatusOfAMachineInTrainingNamesTheStageTheCohortAndTheDeadline() throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "live", participants: 3, rounds: 2, secure: false, evaluateEvery: 1))
        var machine = CoordinatorStateMachine(
            plan: experiment.plan, initialModel: experiment.initialModel, strategy: try experiment.config.makeStrategy()
        )
        _ = machine.handle(.start, now: 10)
        let waiting = LiveRoundStatus(machine, connectedSites: 0)
        #expect(waiting.phase == .waiting)
        #expect(waiting.round == 1)
        #expect(waiting.waitingSince == 10)
        for agent in try experiment.agents() {
            _ = machine.handle(.participantAvailable(agent.descriptor), now: 11)
        }
        let running = LiveRoundStatus(machine, connectedSites: 3)
        let stage = try #require(running.stage)
        #expect(running.phase == .running)
        #expect(stage.stage == .training)
        #expect(stage.cohortSize == 3)
        #expect(stage.asked == 3)
        #expect(stage.answered == 0)
        #expect(stage.stageDeadline == 11 + experiment.plan.deadlines.training)
        #expect(stage.finishedStages == [])
        #expect(running.roundsPlanned == 2)
        // Every site answers: training closes with its count, and evaluation is asked of all.
        let zero = [Float](repeating: 0, count: experiment.initialModel.count)
        for agent in try experiment.agents() {
            let report = TrainingReport(sampleCount: 10, loss: 0.5, steps: 1)
            _ = machine.handle(.message(from: agent.site, .update(round: 1, delta: zero, report: report)), now: 12)
        }
        let evaluating = try #require(LiveRoundStatus(machine, connectedSites: 3).stage)
        #expect(evaluating.finishedStages.first == .init(stage: .training, answered: 3, asked: 3))
    }

    @Test func anActionNeedsTheTokenTheSameOriginAndABearer() throws {
        let token = try OperatorToken("s3cret-token")
        func refusal(
            token: OperatorToken?, origin: String? = nil, fetchSite: String? = nil, authorization: String?
        ) -> Int? {
            do {
                try DashboardActions.admit(
                    token: token, origin: origin, host: "127.0.0.1:9464", fetchSite: fetchSite,
                    authorization: authorization)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(refusal(token: nil, authorization: "Bearer s3cret-token") == 403)
        #expect(refusal(token: token, authorization: nil) == 401)
        #expect(refusal(token: token, authorization: "Bearer s3cret-tokeN") == 401)
        #expect(refusal(token: token, authorization: "Bearer s3cret-token-and-more") == 401)
        #expect(refusal(token: token, authorization: "Basic s3cret-token") == 401)
        #expect(refusal(token: token, origin: "http://evil.example", authorization: "Bearer s3cret-token") == 403)
        #expect(refusal(token: token, fetchSite: "cross-site", authorization: "Bearer s3cret-token") == 403)
        #expect(refusal(token: token, origin: "http://127.0.0.1:9464", authorization: "Bearer s3cret-token") == nil)
        #expect(refusal(token: token, authorization: "bearer s3cret-token") == nil)
    }

    @Test func aTokenFileMustExistHoldATokenAndBeReadableByItsOwnerOnly() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func write(_ name: String, _ text: String, mode: Int) throws -> URL {
            let url = folder.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
            return url
        }
        func message(_ url: URL) -> String? {
            do {
                _ = try OperatorToken(file: url)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(message(folder.appendingPathComponent("missing"))?.contains("does not exist") == true)
        #expect(message(try write("empty", " \n", mode: 0o600))?.contains("is empty") == true)
        #expect(message(try write("shared", "token\n", mode: 0o640))?.contains("chmod 600") == true)
        #expect(message(try write("world", "token\n", mode: 0o604))?.contains("chmod 600") == true)
        let good = try OperatorToken(file: try write("good", "token\n", mode: 0o600))
        #expect(good.accepts(authorization: "Bearer token"))
        // A symbolic link (how a Kubernetes Secret volume mounts a file) is judged by its target.
        let link = folder.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: folder.appendingPathComponent("good"))
        #expect(try OperatorToken(file: link).accepts(authorization: "Bearer token"))
        let sharedLink = folder.appendingPathComponent("shared-link")
        try FileManager.default.createSymbolicLink(
            at: sharedLink, withDestinationURL: folder.appendingPathComponent("shared"))
        #expect(message(sharedLink)?.contains("chmod 600") == true)
    }
}
