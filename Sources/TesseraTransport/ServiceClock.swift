import NIOCore
import NIOPosix
import Synchronization

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
///
/// Its sleeps are timers on a NIO event loop rather than `Task.sleep`: a cancelled `Task.sleep`
/// keeps its timer and a task alive until its deadline passes, and the services cancel most of
/// their waits early (a stage's deadline once the stage is complete, a fetch's timeout once it
/// is admitted). At a few rounds a second, the waits of the last five minutes held megabytes.
/// A cancelled timer here is taken off its event loop at once.
public struct MonotonicClock: ServiceClock {
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    public init() {
        origin = clock.now
    }

    public var now: Duration { clock.now - origin }

    public func sleep(until deadline: Duration) async throws {
        try Task.checkCancellation()
        let remaining = deadline - now
        guard remaining > .zero else { return }
        let timer = CancellableTimer()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                timer.start(continuation, after: remaining, on: MultiThreadedEventLoopGroup.singleton.any())
            }
        } onCancel: {
            timer.cancel()
        }
    }
}

/// One sleep of ``MonotonicClock``: a task scheduled on an event loop that resumes the sleeper,
/// or is cancelled together with it. Exactly one of firing and cancelling resumes the sleeper,
/// whichever comes first, including before ``start(_:after:on:)`` has armed it.
private final class CancellableTimer: Sendable {
    private enum State {
        case idle
        case armed(Scheduled<Void>, CheckedContinuation<Void, any Error>)
        case fired
        case cancelled
    }

    private let state = Mutex(State.idle)

    func start(_ continuation: CheckedContinuation<Void, any Error>, after delay: Duration, on loop: any EventLoop) {
        let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        let scheduled = loop.scheduleTask(in: .nanoseconds(max(0, nanoseconds))) { self.fire() }
        let early = state.withLock { state -> State? in
            guard case .idle = state else { return state }
            state = .armed(scheduled, continuation)
            return nil
        }
        switch early {
        case .fired?:
            continuation.resume()
        case .cancelled?:
            scheduled.cancel()
            continuation.resume(throwing: CancellationError())
        case .idle?, .armed?, nil:
            break
        }
    }

    private func fire() {
        let sleeper = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            switch state {
            case .armed(_, let continuation):
                state = .fired
                return continuation
            case .idle:
                state = .fired
                return nil
            case .fired, .cancelled:
                return nil
            }
        }
        sleeper?.resume()
    }

    func cancel() {
        let armed = state.withLock { state -> (Scheduled<Void>, CheckedContinuation<Void, any Error>)? in
            switch state {
            case .armed(let scheduled, let continuation):
                state = .cancelled
                return (scheduled, continuation)
            case .idle:
                state = .cancelled
                return nil
            case .fired, .cancelled:
                return nil
            }
        }
        guard let (scheduled, continuation) = armed else { return }
        scheduled.cancel()
        continuation.resume(throwing: CancellationError())
    }
}

extension Duration {
    /// The duration in seconds, as a `Double` (for the round state machine and for logs).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
