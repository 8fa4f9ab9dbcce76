public import Foundation
import Synchronization
public import TesseraFederation

/// Where the coordinator publishes its ``LiveRoundStatus`` and the dashboard reads it: the
/// latest status, and a stream of changes for each event-stream client. It outlives experiments
/// (the coordinator runs them one after another); ``begin(experiment:name:)`` names the one that
/// runs.
///
/// Publishing is cheap and never waits: an unchanged status is dropped, and each subscriber
/// keeps only the newest status it has not read, so a slow browser cannot hold the coordinator.
public final class LiveRoundBoard: Sendable {
    /// What the board holds: the latest status, the experiment it belongs to, and the wall time
    /// of its clock readings.
    public struct Snapshot: Sendable, Hashable {
        public var experimentID: Int64?
        public var experimentName: String?
        public var status: LiveRoundStatus?
        /// Wall time = `wallAnchor` + (clock reading − `clockAnchor`).
        var clockAnchor: Double = 0
        var wallAnchor: Date = Date(timeIntervalSince1970: 0)
        /// Bumped on every change, so a subscriber sees each snapshot once.
        public var sequence = 0

        /// The wall time of a reading of the coordinator's clock.
        public func wallTime(_ seconds: Double) -> Date {
            wallAnchor.addingTimeInterval(seconds - clockAnchor)
        }
    }

    private struct State {
        var snapshot = Snapshot()
        var anchored = false
        var nextSubscriber = 0
        var subscribers: [Int: AsyncStream<Snapshot>.Continuation] = [:]
    }

    private let state = Mutex(State())
    private let wallClock: @Sendable () -> Date

    public init(wallClock: @escaping @Sendable () -> Date = { Date() }) {
        self.wallClock = wallClock
    }

    public var snapshot: Snapshot { state.withLock { $0.snapshot } }

    /// The experiment that runs from now on; its status comes with its first ``publish(_:now:)``.
    public func begin(experiment id: Int64, name: String) {
        change { snapshot in
            snapshot.experimentID = id
            snapshot.experimentName = name
            snapshot.status = nil
        }
    }

    /// No experiment runs (the queue is empty).
    public func endExperiment() {
        change { snapshot in
            snapshot.experimentID = nil
            snapshot.experimentName = nil
            snapshot.status = nil
        }
    }

    /// Publishes `status`, read at `now` on the coordinator's clock.
    public func publish(_ status: LiveRoundStatus, now: Double) {
        let wall = wallClock()
        change { snapshot in
            if snapshot.status == nil {
                snapshot.clockAnchor = now
                snapshot.wallAnchor = wall
            }
            snapshot.status = status
        }
    }

    /// The snapshot now, then every change, newest first when the reader falls behind. The
    /// stream ends when the task reading it is cancelled.
    public func updates() -> AsyncStream<Snapshot> {
        let (stream, continuation) = AsyncStream.makeStream(of: Snapshot.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = continuation
            continuation.yield(state.snapshot)
            return state.nextSubscriber
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// How many ``updates()`` streams are open.
    public var subscribers: Int { state.withLock { $0.subscribers.count } }

    private func change(_ body: (inout Snapshot) -> Void) {
        state.withLock { state in
            var snapshot = state.snapshot
            body(&snapshot)
            snapshot.sequence = state.snapshot.sequence
            guard snapshot != state.snapshot else { return }
            snapshot.sequence += 1
            state.snapshot = snapshot
            for subscriber in state.subscribers.values { subscriber.yield(snapshot) }
        }
    }
}
