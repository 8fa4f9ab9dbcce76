import Synchronization
import TesseraTransport

/// Decides when the coordinator has gone silent: nothing (no message, not even a heartbeat)
/// arrived for ``limit`` while the site was waiting to read.
///
/// While the site works on a message (training, fetching a model) it reads nothing, so silence
/// is not counted then; the count starts again from zero when the work ends. Before the Welcome
/// the limit is the welcome timeout; the Welcome sets it to missed heartbeats × its interval.
final class SilenceWatch: Sendable {
    private struct State {
        var limit: Duration
        var lastHeard: Duration
        var busy = false
        /// The watch, waiting for the site to read again or for its deadline to move earlier.
        var sleeper: CheckedContinuation<Void, Never>?
    }
    private let state: Mutex<State>

    init(limit: Duration, now: Duration) {
        state = Mutex(State(limit: limit, lastHeard: now))
    }

    var limit: Duration { state.withLock { $0.limit } }

    /// Sets the limit (the Welcome names the heartbeat interval); a watch asleep until the old
    /// deadline wakes to take the new one.
    func setLimit(_ limit: Duration) {
        let sleeper = state.withLock { state in
            state.limit = limit
            defer { state.sleeper = nil }
            return state.sleeper
        }
        sleeper?.resume()
    }

    /// An envelope arrived at `now`; the site works on it until ``idle(at:)``.
    func heard(at now: Duration) {
        state.withLock { state in
            state.lastHeard = now
            state.busy = true
        }
    }

    /// The site is waiting to read again, from `now`.
    func idle(at now: Duration) {
        let sleeper = state.withLock { state in
            state.lastHeard = now
            state.busy = false
            defer { state.sleeper = nil }
            return state.sleeper
        }
        sleeper?.resume()
    }

    /// Returns only by throwing: a `transport` error once the coordinator has been silent for
    /// the limit, or `CancellationError`.
    func run(clock: any ServiceClock) async throws {
        while true {
            let deadline = try await nextDeadline()
            // Until the deadline, or until the limit changes (then the deadline is taken again).
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await clock.sleep(until: deadline) }
                group.addTask { await self.wake(busy: nil) }
                try await group.next()
                group.cancelAll()
            }
            let silent = state.withLock { state in
                !state.busy && clock.now - state.lastHeard >= state.limit ? state.limit : nil
            }
            if let silent {
                throw TesseraRuntimeError(
                    .transport,
                    "the coordinator sent nothing (no message, no heartbeat) for \(silent); closing the session to reconnect"
                )
            }
        }
    }

    /// When the current silence would reach the limit, once the site is waiting to read.
    private func nextDeadline() async throws -> Duration {
        while true {
            try Task.checkCancellation()
            if let deadline = state.withLock({ $0.busy ? nil : $0.lastHeard + $0.limit }) { return deadline }
            await wake(busy: true)
        }
    }

    /// Returns at the next ``idle(at:)`` or ``setLimit(_:)`` (at once if `busy` is given and
    /// the site's state is not that), or when the task is cancelled.
    private func wake(busy: Bool?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if Task.isCancelled || busy.map({ $0 != state.busy }) == true { return true }
                    let previous = state.sleeper
                    state.sleeper = continuation
                    previous?.resume()
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state in
                defer { state.sleeper = nil }
                return state.sleeper
            }
            sleeper?.resume()
        }
    }
}

/// Fails a model fetch that moves too slowly: fewer than `minimumBytesPerSecond` × `window`
/// bytes arrived in one window (consecutive windows from the start of the fetch). A fetch is
/// judged by its progress, not by its length: a large model on a slow but steady link is fine.
final class FetchProgressWatch: Sendable {
    let minimumBytes: Int
    let window: Duration
    private let received = Mutex(0)

    init(minimumBytesPerSecond: Int, window: Duration) {
        self.window = max(.milliseconds(1), window)
        let bytes = Double(max(0, minimumBytesPerSecond)) * self.window.inSeconds
        minimumBytes = max(1, Int(min(bytes, Double(Int.max / 2))))
    }

    /// `bytes` more arrived.
    func add(_ bytes: Int) {
        received.withLock { $0 = $0 &+ max(0, bytes) }
    }

    /// Returns only by throwing: a `modelUnavailable` error at the end of the first window that
    /// brought fewer than ``minimumBytes``, or `CancellationError`.
    func run(clock: any ServiceClock, what: String) async throws {
        var tick = clock.now
        while true {
            tick += window
            try await clock.sleep(until: tick)
            let bytes = received.withLock { value in
                defer { value = 0 }
                return value
            }
            if bytes < minimumBytes {
                throw TesseraRuntimeError(
                    .modelUnavailable,
                    "\(what) made too little progress: \(bytes) bytes in \(window), at least \(minimumBytes) expected; the fetch is abandoned"
                )
            }
        }
    }
}
