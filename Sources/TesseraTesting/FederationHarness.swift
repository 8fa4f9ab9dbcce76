public import TesseraCoordinator
public import TesseraFederation
import TesseraTensor
import TesseraTransport
public import TesseraWire

extension CoordinatorService {
    /// Runs this coordinator together with participant session loops until the experiment ends,
    /// and returns its outcome: the one way a whole federation is run in one process (in-process
    /// transport, loopback mTLS, tests). A participant loop that throws ends the run with its error.
    ///
    /// With `arrivals`, the experiment starts only once every site it expects has been welcomed
    /// (or a participant loop has ended): the first cohort is then every site, as in the
    /// in-memory driver, and not whichever sites happened to connect first. That is what makes a
    /// simulated run a function of its experiment file and seed, whatever the transport.
    ///
    /// OpenBLAS runs single-threaded for the duration: the sites train concurrently and are the
    /// parallelism (OpenBLAS's one thread pool, shared by concurrent callers, would spend its time
    /// spinning on its lock), and a product's rounding then does not depend on the core count.
    public func run(
        alongside participants: [@Sendable () async throws -> Void], startingWhenAllOf arrivals: SiteArrivals? = nil
    ) async throws -> Outcome {
        try await TensorRuntime.withThreadCount(1) {
            try await runConcurrently(with: participants, arrivals: arrivals)
        }
    }

    private func runConcurrently(
        with participants: [@Sendable () async throws -> Void], arrivals: SiteArrivals?
    ) async throws -> Outcome {
        try await withThrowingTaskGroup(of: Outcome?.self) { group in
            for participant in participants {
                group.addTask {
                    defer { arrivals?.participantEnded() }
                    try await participant()
                    return nil
                }
            }
            group.addTask {
                await arrivals?.waitForAll()
                if Task.isCancelled { return nil }
                return await self.run()
            }
            var outcome: Outcome?
            for try await result in group where result != nil {
                outcome = result
                // A coordinator that stopped before the end (a graceful stop, a failed commit)
                // leaves its sites reconnecting: their loops end with it.
                if await !self.isFinished { group.cancelAll() }
            }
            guard let outcome else {
                throw TesseraRuntimeError(
                    .invalidConfiguration, "the federation ended without the coordinator's outcome")
            }
            return outcome
        }
    }
}

/// The sites a harness waits for before its coordinator starts the experiment: each site's
/// client reports its Welcome through ``observer(for:)``. The coordinator has registered a site
/// (and its state machine counted it available) before it sends the Welcome, so once every
/// expected site is welcomed, the first round's selection sees them all.
public final class SiteArrivals: Sendable {
    private enum Event: Sendable {
        case welcomed(SiteID)
        case participantEnded
    }

    public let expected: Set<SiteID>
    private let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation

    public init(expecting sites: some Sequence<SiteID>) {
        expected = Set(sites)
        (events, continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// What `site`'s client calls with every coordinator message it accepts.
    public func observer(for site: SiteID) -> @Sendable (CoordinatorInbound) -> Void {
        let continuation = continuation
        return { inbound in
            if case .welcome = inbound { continuation.yield(.welcomed(site)) }
        }
    }

    /// A participant loop returned or threw: the wait ends, so that a site that can never be
    /// welcomed does not hold the run (its error, if any, ends the run).
    func participantEnded() {
        continuation.yield(.participantEnded)
    }

    /// Returns once every expected site was welcomed, a participant loop ended, or the task is
    /// cancelled. Only one task waits.
    func waitForAll() async {
        // Later events (a site welcomed again after a reconnect) have no one to tell.
        defer { continuation.finish() }
        var welcomed = Set<SiteID>()
        guard !expected.isEmpty else { return }
        for await event in events {
            switch event {
            case .welcomed(let site):
                welcomed.insert(site)
                if welcomed.isSuperset(of: expected) { return }
            case .participantEnded:
                return
            }
        }
    }
}
