import Foundation
import TesseraFederation
import Testing

@Suite("The circuit breaker benches a failing site, and health is derived from it")
struct CircuitBreakerTests {
    static let policy = CircuitBreakerPolicy(failureThreshold: 3, coolDown: 600, maximumCoolDown: 2000)

    /// A breaker benched once at t = 1000 (three failures), so it is open until 1600.
    static func benched() -> CircuitBreaker {
        var breaker = CircuitBreaker()
        for _ in 0..<3 { breaker.record(.failed, at: 1000, policy: policy) }
        return breaker
    }

    @Test("K failures in a row bench the site for the cool-down; before K it stays selectable")
    func tripsAfterThreshold() {
        var breaker = CircuitBreaker()
        let first = breaker.record(.failed, at: 1000, policy: Self.policy)
        let second = breaker.record(.failed, at: 1000, policy: Self.policy)
        #expect(!first && !second)
        #expect(breaker.state == .closed)
        #expect(breaker.allowsSelection(at: 1000))
        let third = breaker.record(.failed, at: 1000, policy: Self.policy)
        #expect(third)
        #expect(breaker.state == .open(until: 1600))
        #expect(breaker.trips == 1)
        #expect(!breaker.allowsSelection(at: 1599.9))
        #expect(breaker.allowsSelection(at: 1600))
    }

    @Test("A success in between resets the count of failures in a row")
    func successResets() {
        var breaker = CircuitBreaker()
        let outcomes: [SiteRoundOutcome] = [.failed, .failed, .contributed, .failed, .failed]
        for outcome in outcomes { breaker.record(outcome, at: 1000, policy: Self.policy) }
        #expect(breaker.state == .closed)
        #expect(breaker.consecutiveFailures == 2)
    }

    @Test("After the cool-down the site is on probation; one success closes the breaker")
    func probationSuccessCloses() {
        var breaker = Self.benched()
        #expect(breaker.current(at: 1599) == .open(until: 1600))
        #expect(breaker.current(at: 1600) == .probation)
        breaker.record(.contributed, at: 1700, policy: Self.policy)
        #expect(breaker.state == .closed)
        #expect(breaker.trips == 0)
        #expect(breaker.consecutiveFailures == 0)
        // Closed again: it takes K failures, not one, to bench it.
        breaker.record(.failed, at: 1800, policy: Self.policy)
        #expect(breaker.state == .closed)
    }

    @Test("One failure on probation benches again for twice as long, capped at the maximum")
    func probationFailureDoubles() {
        var breaker = Self.benched()
        let again = breaker.record(.failed, at: 1700, policy: Self.policy)
        #expect(again)
        #expect(breaker.state == .open(until: 1700 + 1200))
        #expect(breaker.trips == 2)
        breaker.record(.failed, at: 3000, policy: Self.policy)
        // 600 × 4 = 2400 is above the 2000 cap.
        #expect(breaker.state == .open(until: 3000 + 2000))
        #expect(breaker.trips == 3)
    }

    @Test("A round that failed as a whole neither trips nor resets the breaker")
    func roundFailedIsNeutral() {
        var breaker = CircuitBreaker()
        breaker.record(.failed, at: 1000, policy: Self.policy)
        breaker.record(.failed, at: 1000, policy: Self.policy)
        for _ in 0..<5 {
            let tripped = breaker.record(.roundFailed, at: 1000, policy: Self.policy)
            #expect(!tripped)
        }
        #expect(breaker.consecutiveFailures == 2)
        #expect(breaker.state == .closed)
        breaker.record(.failed, at: 1000, policy: Self.policy)
        #expect(breaker.state == .open(until: 1600))

        // On probation it decides nothing either.
        breaker.record(.roundFailed, at: 1650, policy: Self.policy)
        #expect(breaker.state == .probation)
        #expect(breaker.trips == 1)
    }

    @Test("The policy keeps its numbers sane, and a breaker round-trips through JSON")
    func policyAndCoding() throws {
        let policy = CircuitBreakerPolicy(failureThreshold: 0, coolDown: -5, maximumCoolDown: -1)
        #expect(policy.failureThreshold == 1)
        #expect(policy.coolDown == 0)
        #expect(policy.maximumCoolDown == 0)
        let breaker = Self.benched()
        let decoded = try JSONDecoder().decode(CircuitBreaker.self, from: try JSONEncoder().encode(breaker))
        #expect(decoded == breaker)
    }

    @Test(
        "Health: revoked, then unreachable, then degraded (benched, probation, mostly failing), else healthy",
        arguments: [
            (true, true, CircuitBreaker(), [SiteRoundOutcome](), SiteHealth.revoked),
            (false, false, CircuitBreaker(), [], .unreachable),
            (false, true, CircuitBreaker(), [], .healthy),
            (false, true, CircuitBreakerTests.benched(), [], .degraded),
            (false, true, CircuitBreaker(state: .probation, consecutiveFailures: 3, trips: 1), [], .degraded),
            (false, true, CircuitBreaker(), [.failed, .failed, .contributed], .degraded),
            (false, true, CircuitBreaker(), [.failed, .contributed], .healthy),
            (false, true, CircuitBreaker(), [.failed, .roundFailed, .roundFailed, .contributed], .healthy),
            (false, true, CircuitBreaker(), [.roundFailed, .roundFailed, .failed], .degraded),
        ])
    func health(
        revoked: Bool, connected: Bool, breaker: CircuitBreaker, recent: [SiteRoundOutcome], expected: SiteHealth
    ) {
        let health = SiteHealth.derive(
            revoked: revoked, connected: connected, breaker: breaker, recent: recent, now: 1200)
        #expect(health == expected)
    }

    @Test("A benched site's health comes back once its cool-down is over and it contributes")
    func healthOverTime() {
        var breaker = Self.benched()
        let benched = SiteHealth.derive(revoked: false, connected: true, breaker: breaker, recent: [], now: 1599)
        #expect(benched == .degraded)
        breaker.record(.contributed, at: 1700, policy: Self.policy)
        let recovered = SiteHealth.derive(revoked: false, connected: true, breaker: breaker, recent: [], now: 1700)
        #expect(recovered == .healthy)
    }
}
