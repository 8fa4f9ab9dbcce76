/// The time source of the coordinator and participant services.
///
/// Services read time and wait only through this protocol, so tests drive them with a manual
/// clock (`TesseraTesting.ManualClock`): a 30 s stall is 30 s of manual time, taken at once and
/// in an exact order. Instants are durations since the clock's origin, which keeps the protocol
/// free of associated types (an `any Clock<Duration>` cannot subtract its own instants).
public protocol ServiceClock: Sendable {
    /// The time elapsed since this clock's origin.
    var now: Duration { get }

    /// Returns once ``now`` has reached `deadline` (at once if it has); throws
    /// `CancellationError` when the task is cancelled first.
    func sleep(until deadline: Duration) async throws
}

extension ServiceClock {
    /// Waits `duration` from now.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now + duration)
    }
}

/// The production clock: monotonic time (`ContinuousClock`), counted from the clock's creation.
public struct MonotonicClock: ServiceClock {
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    public init() {
        origin = clock.now
    }

    public var now: Duration { clock.now - origin }

    public func sleep(until deadline: Duration) async throws {
        try await clock.sleep(until: origin + deadline, tolerance: nil)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double` (for the round state machine and for logs).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
