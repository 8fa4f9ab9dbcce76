import Foundation
import TesseraFederation
import TesseraState
import Testing

@Suite("The participant registry: sessions, datasets, revocation, breakers, recent outcomes, health")
struct ParticipantTests {
    @Test("First seen stays; last seen, software, cores, memory and datasets follow the latest Hello and disconnect")
    func connectAndDisconnect() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        let first = fixture.clock.now
        try state.siteConnected(StateFixture.announcement("site-a"))
        fixture.clock.advance(100)
        let datasets = [
            DatasetOfferRecord(name: "clinical-risk", rows: 1500, features: 12, schemaHash: "f00d"),
            DatasetOfferRecord(name: "imaging", rows: 40),
        ]
        try state.siteConnected(StateFixture.announcement("site-a", software: "0.2.0", datasets: datasets))
        let reconnected = try state.site("site-a")
        #expect(reconnected.firstSeen == first)
        #expect(reconnected.lastSeen == fixture.clock.now)
        #expect(reconnected.softwareVersion == "0.2.0")
        #expect(reconnected.cores == 8)
        #expect(reconnected.memoryBytes == 16 << 30)
        #expect(reconnected.datasets == datasets)
        #expect(reconnected.connected)
        #expect(reconnected.health(at: fixture.clock.now) == .healthy)

        fixture.clock.advance(50)
        try state.siteDisconnected("site-a")
        let gone = try state.site("site-a")
        #expect(!gone.connected)
        #expect(gone.lastSeen == fixture.clock.now)
        #expect(gone.firstSeen == first)
        #expect(gone.health(at: fixture.clock.now) == .unreachable)
    }

    @Test("Every site by name; a restart marks all disconnected; an unknown site is a clear notFound")
    func listing() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        for site in ["site-c", "site-a", "site-b"] { try state.siteConnected(StateFixture.announcement(site)) }
        let names = try state.sites().map(\.site)
        #expect(names == ["site-a", "site-b", "site-c"])
        try state.markAllDisconnected()
        let connected = try state.sites().filter(\.connected)
        #expect(connected.isEmpty)

        let unknown = #expect(throws: StateError.self) { try state.site("ghost") }
        #expect(unknown?.code == .notFound)
        #expect(unknown?.message == "no site ghost has ever connected to this coordinator")
    }

    @Test("A revoked site stays revoked when it reconnects")
    func revoked() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        try state.siteConnected(StateFixture.announcement("site-a"))
        try state.siteConnected(StateFixture.announcement("site-b"))
        try state.markRevoked(["site-a"])
        let revoked = try state.site("site-a")
        #expect(revoked.revoked)
        #expect(!revoked.connected)
        try state.siteConnected(StateFixture.announcement("site-a"))
        let back = try state.site("site-a")
        #expect(back.revoked)
        #expect(back.health(at: fixture.clock.now) == .revoked)
        let other = try state.site("site-b")
        #expect(!other.revoked)
    }

    @Test("Breakers committed with a round are persisted and reread after reopening")
    func breakersPersist() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        try state.siteConnected(StateFixture.announcement("site-a"))
        try state.siteConnected(StateFixture.announcement("site-b"))
        let experiment = try state.submit(StateFixture.submission(name: "trial"))
        let run = try state.beginRun(of: experiment.id)
        let policy = CircuitBreakerPolicy(failureThreshold: 1, coolDown: 600)
        var breaker = CircuitBreaker()
        breaker.record(.failed, at: fixture.clock.now.timeIntervalSince1970, policy: policy)
        try fixture.commit(
            experiment, run: run, round: 1, outcomes: ["site-a": .failed, "site-b": .contributed],
            breakers: ["site-a": breaker, "site-b": CircuitBreaker()])

        let reopened = try CoordinatorState(directory: fixture.folder)
        let breakers = try reopened.breakers()
        #expect(breakers["site-a"] == breaker)
        #expect(breakers["site-b"] == CircuitBreaker())
        let site = try reopened.site("site-a")
        let benchedUntil = fixture.clock.now.timeIntervalSince1970 + 600
        #expect(site.breaker.state == .open(until: benchedUntil))
        #expect(site.health(at: fixture.clock.now) == .degraded)
    }

    @Test("Recent outcomes keep the latest ten, newest last; the round history names experiment and round")
    func recentOutcomes() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        try state.siteConnected(StateFixture.announcement("site-a"))
        let experiment = try state.submit(StateFixture.submission(name: "trial", rounds: 12))
        let run = try state.beginRun(of: experiment.id)
        // Rounds 1–10 contribute, 11 fails as a whole, 12 fails for the site.
        for round in 1...12 {
            fixture.clock.advance(60)
            let outcome: SiteRoundOutcome = round <= 10 ? .contributed : round == 11 ? .roundFailed : .failed
            try fixture.commit(experiment, run: run, round: round, outcomes: ["site-a": outcome])
        }
        let site = try state.site("site-a")
        #expect(site.recent.count == CoordinatorState.recentOutcomes)
        #expect(site.recent.suffix(3) == [.contributed, .roundFailed, .failed])
        #expect(site.health(at: fixture.clock.now) == .healthy)

        let history = try state.roundHistory(of: "site-a", limit: 3)
        let rounds = history.map(\.round)
        #expect(rounds == [12, 11, 10])
        #expect(history.first?.experiment == experiment.id)
        #expect(history.first?.outcome == .failed)
        #expect(history.first?.at == fixture.clock.now)
    }

    @Test("Health: a connected site failing more than half its judged rounds is degraded")
    func degradedByFailures() throws {
        let fixture = try StateFixture()
        defer { fixture.remove() }
        let state = fixture.state
        try state.siteConnected(StateFixture.announcement("site-a"))
        let experiment = try state.submit(StateFixture.submission(name: "trial", rounds: 3))
        let run = try state.beginRun(of: experiment.id)
        let outcomes: [SiteRoundOutcome] = [.failed, .contributed, .failed]
        for (index, outcome) in outcomes.enumerated() {
            fixture.clock.advance(60)
            try fixture.commit(experiment, run: run, round: index + 1, outcomes: ["site-a": outcome])
        }
        let site = try state.site("site-a")
        #expect(site.breaker == CircuitBreaker())
        #expect(site.health(at: fixture.clock.now) == .degraded)
    }
}
