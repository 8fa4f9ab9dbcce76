import Synchronization
public import TesseraTransport

/// A ``ServiceClock`` that moves only when a test advances it.
///
/// ``advance(by:)`` moves time and resumes the sleepers it reached, earliest deadline first. A
/// woken task runs after that, at the new time: a test that needs a timer's effect before the
/// next one steps time to each instant and waits for the effect (or for the timer to be armed
/// again, with ``waitForSleepers(_:)``) instead of sleeping and hoping it happened.
public final class ManualClock: ServiceClock {
    private struct Sleeper {
        let id: UInt64
        let deadline: Duration
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct Watcher {
        let id: UInt64
        let condition: @Sendable ([Duration]) -> Bool
        let continuation: CheckedContinuation<Void, Never>
    }
    private struct State {
        var now: Duration = .zero
        var lastID: UInt64 = 0
        var sleepers: [Sleeper] = []
        var watchers: [Watcher] = []
    }
    private let state = Mutex(State())

    public init(now: Duration = .zero) {
        state.withLock { $0.now = now }
    }

    public var now: Duration { state.withLock { $0.now } }

    /// The deadlines of the tasks asleep on this clock, earliest first.
    public var pendingDeadlines: [Duration] { state.withLock { $0.sleepers.map(\.deadline).sorted() } }

    public func sleep(until deadline: Duration) async throws {
        let id = state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (ready, watchers) = state.withLock { state -> (Bool?, [Watcher]) in
                    if Task.isCancelled { return (false, []) }
                    if deadline <= state.now { return (true, []) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return (nil, Self.satisfiedWatchers(&state))
                }
                switch ready {
                case true?: continuation.resume()
                case false?: continuation.resume(throwing: CancellationError())
                case nil: break
                }
                for watcher in watchers { watcher.continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state in
                state.sleepers.firstIndex { $0.id == id }.map { state.sleepers.remove(at: $0) }
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward by `duration` and wakes the sleepers whose deadline it reached.
    public func advance(by duration: Duration) {
        advance(to: now + duration)
    }

    /// Moves time forward to `instant` (never back) and wakes the sleepers whose deadline it
    /// reached, earliest deadline first.
    public func advance(to instant: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = max(state.now, instant)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted {
                ($0.deadline, $0.id) < ($1.deadline, $1.id)
            }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Returns once the pending deadlines satisfy `condition` (at once if they do).
    public func waitForSleepers(_ condition: @escaping @Sendable (_ deadlines: [Duration]) -> Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if condition(state.sleepers.map(\.deadline).sorted()) { return true }
                state.lastID += 1
                state.watchers.append(Watcher(id: state.lastID, condition: condition, continuation: continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Returns once a task sleeps until `deadline` or later.
    public func waitForSleeper(until deadline: Duration) async {
        await waitForSleepers { $0.contains { $0 >= deadline } }
    }

    private static func satisfiedWatchers(_ state: inout State) -> [Watcher] {
        let deadlines = state.sleepers.map(\.deadline).sorted()
        let satisfied = state.watchers.filter { $0.condition(deadlines) }
        let ids = Set(satisfied.map(\.id))
        state.watchers.removeAll { ids.contains($0.id) }
        return satisfied
    }
}

/// Suspends until the task is cancelled: a test's stand-in for a peer that keeps its stream
/// open and says nothing more.
public func suspendUntilCancelled() async {
    let (stream, continuation) = AsyncStream.makeStream(of: Never.self)
    await withTaskCancellationHandler {
        for await _ in stream {}
    } onCancel: {
        continuation.finish()
    }
}
