import Foundation
import TesseraFederation
import TesseraState
import Testing

/// What `tessera models|sites|experiments` print, run against a populated state folder.
@Suite("The state commands' output and errors")
struct StateReportTests {
    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    // MARK: models

    @Test("models list: a table newest first, with stage, round, contributors/cohort, metrics and time")
    func modelsList() throws {
        let (fixture, _, _) = try RegistryTests.populated()
        defer { fixture.remove() }
        let lines = Self.lines(try StateReport.listModels(in: fixture.state))
        #expect(lines.count == 5)
        #expect(lines[0] == "MODEL        STAGE      ROUND  CONTRIBUTORS/COHORT  ACCURACY    LOSS  TRAIN LOSS  CREATED")
        #expect(
            lines[1]
                == "other@1.0.1  candidate      1                  2/3    0.7000  0.6000           -  2026-01-01T00:04:00Z"
        )
        #expect(lines[2].hasPrefix("trial@1.0.3  candidate      3 "))
        #expect(lines[4].hasSuffix("2026-01-01T00:01:00Z"))

        let filtered = Self.lines(
            try StateReport.listModels(in: fixture.state, name: "trial", stage: "candidate", where: ["accuracy>=0.9"]))
        let references = filtered.dropFirst().map { String($0.prefix(11)) }
        #expect(references == ["trial@1.0.3", "trial@1.0.2"])
        let none = try StateReport.listModels(in: fixture.state, where: ["accuracy>1"])
        #expect(none == "no model versions match")
    }

    @Test("models list --json: model cards without stage history")
    func modelsListJSON() throws {
        let (fixture, _, other) = try RegistryTests.populated()
        defer { fixture.remove() }
        let text = try StateReport.listModels(in: fixture.state, experiment: other.id, json: true)
        #expect(!text.contains("stage_history"))
        let cards = try ModelCard.decoder().decode([ModelCard].self, from: Data(text.utf8))
        #expect(cards.map(\.name) == ["other"])
        #expect(cards.first?.metrics["accuracy"] == 0.7)
    }

    @Test("models list: a bad --where or --stage is refused with what to type instead")
    func modelsListErrors() throws {
        let (fixture, _, _) = try RegistryTests.populated()
        defer { fixture.remove() }
        let condition = #expect(throws: RegistryError.self) {
            try StateReport.listModels(in: fixture.state, where: ["accuracy=>0.9"])
        }
        #expect(condition?.message == "'accuracy=>0.9': '>0.9' is not a number")
        let stage = #expect(throws: RegistryError.self) {
            try StateReport.listModels(in: fixture.state, stage: "prod")
        }
        #expect(stage?.message == "'prod' is not a stage: use one of candidate, staging, production, archived")
    }

    @Test("models show: every field, the lineage and the stage history")
    func modelsShow() throws {
        let (fixture, _, _) = try RegistryTests.populated()
        defer { fixture.remove() }
        try fixture.state.promote(
            try ModelReference(parsing: "trial@1.0.2"), to: .staging, by: "local:alice", reason: "canary")
        let model = try fixture.state.model(try ModelReference(parsing: "trial@1.0.2"))
        let lines = Self.lines(try StateReport.showModel("trial@1.0.2", in: fixture.state))
        let expected = [
            "trial@1.0.2  (staging)",
            "  digest        \(model.digest)",
            "  parent        trial@1.0.1",
            "  experiment    1, run 1, round 2",
            "  cohort        2 of 3 selected sites contributed",
            "  metrics       accuracy 0.9000, loss 0.3000",
            "  config hash   hash-trial",
            "  architecture  logistic 4→2",
            "  created       2026-01-01T00:02:00Z",
            "  artifact      \(fixture.state.blobs.url(of: model.digest).path)",
            "lineage (newest first)",
            "  trial@1.0.2  round 2, staging",
            "  trial@1.0.1  round 1, candidate",
            "  trial@1.0.0  (not in the registry: the experiment's starting model)",
            "stage history",
            "  2026-01-01T00:04:00Z  candidate → staging  by local:alice: canary",
        ]
        #expect(lines == expected)
    }

    @Test("models show: a malformed, unknown or ambiguous reference is a clear error")
    func modelsShowErrors() throws {
        let (fixture, _, _) = try RegistryTests.populated()
        defer { fixture.remove() }
        let malformed = #expect(throws: RegistryError.self) {
            try StateReport.showModel("trial@1.0", in: fixture.state)
        }
        #expect(malformed?.code == .invalidReference)
        let unknown = #expect(throws: RegistryError.self) { try StateReport.showModel("nope@1.0.1", in: fixture.state) }
        #expect(unknown?.message == "no model version nope@1.0.1 in \(fixture.folder.path)")
        let ambiguous = #expect(throws: RegistryError.self) { try StateReport.showModel("1.0.1", in: fixture.state) }
        #expect(ambiguous?.code == .ambiguous)
    }

    @Test("models promote: prints every move, the archived production version included")
    func modelsPromote() throws {
        let (fixture, _, _) = try RegistryTests.populated()
        defer { fixture.remove() }
        _ = try StateReport.promoteModel(
            "trial@1.0.2", to: "production", reason: nil, actor: "local:alice", in: fixture.state)
        let text = try StateReport.promoteModel(
            "1.0.3", to: "production", reason: "better", actor: "local:bob", in: fixture.state)
        #expect(
            text == """
                trial@1.0.2: production → archived by local:bob: replaced in production by 1.0.3
                trial@1.0.3: candidate → production by local:bob: better
                """)
        let refused = #expect(throws: RegistryError.self) {
            try StateReport.promoteModel(
                "trial@1.0.2", to: "staging", reason: nil, actor: "local:bob", in: fixture.state)
        }
        #expect(refused?.message == "trial@1.0.2 cannot move from archived to staging: archived is final")
    }

    @Test("models export and diff print what they wrote and the distances")
    func modelsExportAndDiff() throws {
        let (fixture, _, _) = try RegistryTests.populated()
        defer { fixture.remove() }
        let out = fixture.folder.appendingPathComponent("out")
        let exported = Self.lines(try StateReport.exportModel("trial@1.0.1", to: out, in: fixture.state))
        #expect(exported.count == 3)
        #expect(exported[0].hasPrefix("exported trial@1.0.1 (candidate, sha256 "))
        #expect(exported[1] == "  " + out.appendingPathComponent("trial-1.0.1.safetensors").path)
        #expect(exported[2] == "  " + out.appendingPathComponent("trial-1.0.1.model-card.json").path)

        let diff = try StateReport.diffModels("trial@1.0.1", "trial@1.0.3", in: fixture.state)
        #expect(
            diff == """
                L2 distance from trial@1.0.1 to trial@1.0.3
                TENSOR  SHAPE       L2
                b       2            2
                w       2×2          4
                total          4.47214
                """)
    }

    // MARK: sites

    /// `site-a` healthy, `site-b` benched until 00:10, `site-c` gone, `site-d` revoked.
    static func sites() throws -> StateFixture {
        let fixture = try StateFixture()
        let state = fixture.state
        for site in ["site-a", "site-b", "site-c", "site-d"] {
            try state.siteConnected(StateFixture.announcement(site))
        }
        try state.siteDisconnected("site-c")
        try state.markRevoked(["site-d"])
        let experiment = try state.submit(StateFixture.submission(name: "trial", rounds: 3))
        let run = try state.beginRun(of: experiment.id)
        var breaker = CircuitBreaker()
        let policy = CircuitBreakerPolicy(failureThreshold: 3, coolDown: 600)
        for round in 1...3 {
            fixture.clock.advance(60)
            breaker.record(.failed, at: fixture.clock.now.timeIntervalSince1970, policy: policy)
            try fixture.commit(
                experiment, run: run, round: round, outcomes: ["site-a": .contributed, "site-b": .failed],
                breakers: ["site-b": breaker])
        }
        return fixture
    }

    @Test("sites list: health, session, breaker, recent rounds and datasets of every site")
    func sitesList() throws {
        let fixture = try Self.sites()
        defer { fixture.remove() }
        let lines = Self.lines(try StateReport.listSites(in: fixture.state, now: fixture.clock.now))
        #expect(lines.count == 5)
        #expect(lines[0].hasPrefix("SITE    HEALTH       SESSION    LAST SEEN             BREAKER"))
        let columns = lines.dropFirst().map { $0.split(separator: " ", maxSplits: 2).prefix(2).joined(separator: " ") }
        #expect(columns == ["site-a healthy", "site-b degraded", "site-c unreachable", "site-d revoked"])
        #expect(lines[1].contains("3 of 3 contributed"))
        #expect(lines[2].contains("benched until 2026-01-01T00:13:00Z"))
        #expect(lines[2].contains("0 of 3 contributed"))
        #expect(lines[1].hasSuffix("clinical-risk (1200 rows)"))
    }

    @Test("sites list --json: one object per site with its health and breaker")
    func sitesListJSON() throws {
        let fixture = try Self.sites()
        defer { fixture.remove() }
        let text = try StateReport.listSites(in: fixture.state, now: fixture.clock.now, json: true)
        #expect(text.contains("\"benched_until\" : \"2026-01-01T00:13:00Z\""))
        let sites = try ModelCard.decoder().decode([StateReport.SiteSummary].self, from: Data(text.utf8))
        let health = sites.map(\.health)
        #expect(health == [.healthy, .degraded, .unreachable, .revoked])
        #expect(sites[1].breaker.state == "open")
        #expect(sites[1].recent == [.failed, .failed, .failed])
        // Once the cool-down is over the same site reads as on probation.
        let later = try StateReport.listSites(in: fixture.state, now: fixture.clock.now + 601, json: true)
        let probation = try ModelCard.decoder().decode([StateReport.SiteSummary].self, from: Data(later.utf8))
        #expect(probation[1].breaker.state == "probation")
        #expect(probation[1].breaker.benchedUntil == nil)
    }

    @Test("sites show: identity, datasets, breaker and round outcomes; an unknown site is a clear error")
    func sitesShow() throws {
        let fixture = try Self.sites()
        defer { fixture.remove() }
        let lines = Self.lines(try StateReport.showSite("site-b", in: fixture.state, now: fixture.clock.now))
        #expect(lines[0] == "site-b  (degraded)")
        #expect(lines.contains("  fingerprint   " + String(repeating: "ab", count: 32)))
        #expect(lines.contains("  first seen    2026-01-01T00:00:00Z"))
        #expect(lines.contains("  memory        16.0 GiB"))
        #expect(
            lines.contains(
                "  breaker       benched until 2026-01-01T00:13:00Z, 3 failed in a row, benched 1 times since it last closed"
            ))
        #expect(lines.contains("  NAME           ROWS  FEATURES  SCHEMA HASH"))
        #expect(lines.contains("  clinical-risk  1200        12  f00d"))
        #expect(lines.contains("           1      3        0  failed   2026-01-01T00:03:00Z"))

        let unknown = #expect(throws: StateError.self) {
            try StateReport.showSite("ghost", in: fixture.state, now: fixture.clock.now)
        }
        #expect(unknown?.code == .notFound)
        #expect(unknown?.message == "no site ghost has ever connected to this coordinator")
    }

    // MARK: experiments

    @Test("experiments list, show and logs")
    func experiments() throws {
        let (fixture, trial, other) = try RegistryTests.populated()
        defer { fixture.remove() }
        let state = fixture.state
        try state.finish(trial.id, as: .completed)
        let list = Self.lines(try StateReport.listExperiments(in: state))
        #expect(list.count == 3)
        #expect(list[0].hasPrefix("ID  NAME   STATUS     ROUNDS  VERSIONS  SUBMITTED BY  SUBMITTED"))
        #expect(list[1].hasPrefix(" 1  trial  completed     3/3  1.0.x     local:test"))
        #expect(list[2].hasPrefix(" 2  other  running       1/1  1.0.x"))
        let running = Self.lines(try StateReport.listExperiments(in: state, status: "running"))
        #expect(running.count == 2)
        #expect(try StateReport.listExperiments(in: state, status: "queued") == "no queued experiments")
        let badStatus = #expect(throws: StateError.self) { try StateReport.listExperiments(in: state, status: "done") }
        #expect(
            badStatus?.message
                == "'done' is not an experiment status: use one of queued, running, completed, failed, cancelled")

        let show = Self.lines(try StateReport.showExperiment(other.id, in: state, configuration: true))
        #expect(show[0] == "experiment 2: other  (running)")
        #expect(show.contains("  config hash   hash-other"))
        #expect(show.contains("  rounds        1 of 1 done, over 1 coordinator runs"))
        #expect(show.contains("  submitted     by local:test at 2026-01-01T00:03:00Z"))
        #expect(show.contains { $0.hasPrefix("  other@1.0.1  candidate") })
        #expect(show.suffix(3) == ["configuration as submitted", "  name: other", "  rounds: 1"])

        let logs = Self.lines(try StateReport.experimentLogs(trial.id, in: state, tail: 2))
        #expect(logs.count == 2)
        #expect(logs.last == "2026-01-01T00:04:00Z  completed")

        let unknown = #expect(throws: StateError.self) { try StateReport.showExperiment(99, in: state) }
        #expect(unknown?.code == .notFound)
        #expect(unknown?.message == "no experiment 99 in \(fixture.folder.path)")
        let unknownLogs = #expect(throws: StateError.self) { try StateReport.experimentLogs(99, in: state, tail: 10) }
        #expect(unknownLogs?.code == .notFound)
    }

    @Test("experiments cancel marks it cancelled once; a finished experiment cannot be")
    func cancel() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        let queued = try state.submit(StateFixture.submission(name: "trial"))
        let text = try StateReport.cancelExperiment(queued.id, in: state, actor: "local:alice")
        #expect(text == "cancelled experiment 1 (trial); a running coordinator stops it at its next round boundary")
        let record = try state.experiment(queued.id)
        #expect(record.status == .cancelled)
        #expect(record.message == "cancelled by local:alice")
        let again = #expect(throws: StateError.self) {
            try StateReport.cancelExperiment(queued.id, in: state, actor: "local:alice")
        }
        #expect(again?.code == .conflict)
        #expect(again?.message == "experiment 1 (trial) is already cancelled")
        let unfinished = try state.unfinishedExperiments()
        #expect(unfinished.isEmpty)
    }
}
