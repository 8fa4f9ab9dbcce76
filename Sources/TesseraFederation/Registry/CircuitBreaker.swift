/// How a selected site ended a round, from the coordinator's side.
public enum SiteRoundOutcome: String, Codable, Sendable, Hashable {
    /// Its update (or masked input) is in the aggregate.
    case contributed
    /// It was selected but its update is not in the aggregate: it disconnected, timed out,
    /// reported a failure or was dropped for misbehaving.
    case failed
    /// The round failed as a whole (too few survivors, a refused aggregate) through no fault
    /// that can be put on this site; it neither trips nor resets its breaker.
    case roundFailed

    public var isFailure: Bool { self == .failed }
}

/// When a site is benched: after ``failureThreshold`` failed rounds in a row it sits out
/// ``coolDown`` seconds, then comes back on probation, where one more failure benches it again
/// for twice as long (up to ``maximumCoolDown``) and one success closes the breaker.
public struct CircuitBreakerPolicy: Sendable, Hashable, Codable {
    public var failureThreshold: Int
    public var coolDown: Double
    public var maximumCoolDown: Double

    public init(failureThreshold: Int = 3, coolDown: Double = 600, maximumCoolDown: Double = 6 * 3600) {
        self.failureThreshold = max(1, failureThreshold)
        self.coolDown = max(0, coolDown)
        self.maximumCoolDown = max(self.coolDown, maximumCoolDown)
    }
}

/// One site's breaker. A value: the coordinator keeps one per site, records each round the
/// site took part in, and asks it whether the site may be selected at a given time.
public struct CircuitBreaker: Sendable, Hashable, Codable {
    public enum State: Sendable, Hashable, Codable {
        /// Selectable.
        case closed
        /// Benched until the instant (seconds on the coordinator's wall clock).
        case open(until: Double)
        /// Selectable again after a bench; the next outcome decides.
        case probation
    }

    public private(set) var state: State = .closed
    /// Failed rounds in a row.
    public private(set) var consecutiveFailures = 0
    /// How many times it has been benched since it last closed (the cool-down doubles each time).
    public private(set) var trips = 0

    public init() {}

    public init(state: State, consecutiveFailures: Int, trips: Int) {
        self.state = state
        self.consecutiveFailures = max(0, consecutiveFailures)
        self.trips = max(0, trips)
    }

    /// Whether the site may be selected at `now`.
    public func allowsSelection(at now: Double) -> Bool {
        if case .open(let until) = state { return now >= until }
        return true
    }

    /// The state as it stands at `now`: an open breaker whose cool-down is over is on probation.
    public func current(at now: Double) -> State {
        if case .open(let until) = state, now >= until { return .probation }
        return state
    }

    /// Records a round the site was selected for; returns whether this outcome benched it.
    @discardableResult
    public mutating func record(_ outcome: SiteRoundOutcome, at now: Double, policy: CircuitBreakerPolicy) -> Bool {
        state = current(at: now)
        switch outcome {
        case .roundFailed:
            return false
        case .contributed:
            consecutiveFailures = 0
            if state == .probation {
                state = .closed
                trips = 0
            }
            return false
        case .failed:
            consecutiveFailures += 1
            guard state == .probation || consecutiveFailures >= policy.failureThreshold else { return false }
            trips += 1
            let seconds = min(policy.maximumCoolDown, policy.coolDown * Double(1 << min(trips - 1, 20)))
            state = .open(until: now + seconds)
            return true
        }
    }
}

/// A site's health as operators see it (`tessera sites list`), derived from what the
/// registry knows; never stored, so it cannot go stale.
public enum SiteHealth: String, Codable, Sendable, Hashable, CustomStringConvertible {
    /// Connected, breaker closed, and its recent rounds mostly contributed.
    case healthy
    /// Connected but benched or on probation, or failing more than half its recent rounds.
    case degraded
    /// No live session.
    case unreachable
    /// Its certificate is revoked: it can never take part again.
    case revoked

    /// - Parameter recent: the site's latest round outcomes, newest last.
    public static func derive(
        revoked: Bool, connected: Bool, breaker: CircuitBreaker, recent: [SiteRoundOutcome], now: Double
    ) -> SiteHealth {
        if revoked { return .revoked }
        if !connected { return .unreachable }
        if breaker.current(at: now) != .closed { return .degraded }
        let judged = recent.filter { $0 != .roundFailed }
        let failures = judged.filter(\.isFailure).count
        if !judged.isEmpty, failures * 2 > judged.count { return .degraded }
        return .healthy
    }

    public var description: String { rawValue }
}
