import Foundation
public import GRPCCore
import Synchronization
public import TesseraTransport
public import TesseraWire

/// The models a coordinator serves by digest.
public protocol ModelStore: Sendable {
    /// Stores `parameters` and returns the digest that names them.
    @discardableResult
    func put(_ parameters: [Float]) -> ModelDigest

    /// The model named by `digest`, if this store still holds it.
    func parameters(for digest: ModelDigest) -> [Float]?
}

/// The coordinator's model store: the most recent ``capacity`` models, in memory.
///
/// Two by default: tasks name the current global model (training, and evaluation of the model
/// just published), and the one before it serves a fetch still running when a round ends. A
/// correct participant never asks for an older version (the coordinator puts a version back if a
/// task ever names one that was dropped), so memory is two models whatever the round count.
public final class BoundedModelStore: ModelStore {
    private struct State {
        var models: [ModelDigest: [Float]] = [:]
        var order: [ModelDigest] = []
    }
    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int = 2) {
        self.capacity = max(1, capacity)
    }

    @discardableResult
    public func put(_ parameters: [Float]) -> ModelDigest {
        let digest = ModelDigest(parameters: parameters)
        state.withLock { state in
            if state.models[digest] == nil {
                state.models[digest] = parameters
                state.order.append(digest)
                while state.order.count > capacity {
                    state.models[state.order.removeFirst()] = nil
                }
            }
        }
        return digest
    }

    public func parameters(for digest: ModelDigest) -> [Float]? {
        state.withLock { $0.models[digest] }
    }

    public var count: Int { state.withLock { $0.models.count } }
}

/// The `tessera.v1.ModelStore` service over a ``ModelStore``: streams a model in chunks under
/// the receiver's flow control.
///
/// A gRPC server stream's writes return before the bytes have left, so a handler that wrote
/// the whole model would make this process hold it for every slow receiver. Instead, at most a
/// window of bytes is sent and not yet credited back by the receiver: what it asked for, at
/// most ``maximumWindowBytes`` (granted in the first chunk). Fetches are admitted in arrival
/// order while their windows fit in one budget (``maximumBytesInFlight``); the others wait for
/// a running fetch to end. What the coordinator buffers for downloads is therefore the budget,
/// whatever the number of participants, and the first sites to ask get the whole model first
/// (they can train and upload while the others still download) instead of every site
/// finishing last. An admitted fetch must keep the rate of ``progress`` (bytes sent, which
/// past the first window follow the receiver's credits): one that stops crediting, or credits
/// a chunk now and then, loses its fetch, so it cannot keep a place in the budget from the
/// others. A fetch that waits longer than ``admissionTimeout`` to be admitted fails with
/// RESOURCE_EXHAUSTED.
///
/// The window trades a site's download speed (about window ÷ round-trip time) against the
/// coordinator's memory: TLS keeps, per connection, an output buffer as large as the largest
/// burst it ever encrypted, and a fetch's first burst is its whole window. Raise the window for
/// sites behind long links.
public struct ModelStoreService: Tessera_V1_ModelStore.SimpleServiceProtocol {
    private let store: any ModelStore
    private let chunker: ModelChunker
    let admission: FetchAdmission
    /// The largest window a fetch is granted.
    public let maximumWindowBytes: Int
    /// How many bytes all fetches together may have sent and not yet had credited back.
    public let maximumBytesInFlight: Int
    /// The rate an admitted fetch must keep.
    public let progress: TransferProgress
    /// How long a fetch may wait to be admitted.
    public let admissionTimeout: Duration
    private let clock: any ServiceClock
    /// Counts fetches in flight and the model bytes sent.
    public var metrics: CoordinatorMetrics?

    /// The default window: 4 chunks.
    public static let defaultMaximumWindowBytes = 4 * WireProtocol.defaultChunkBytes

    /// How many whole windows the default budget holds: ten fetches run at once, so a ten-site
    /// round fetches in one wave; the connections' own buffers are bounded by
    /// ``ConnectionBuffers`` whatever the window count.
    public static let defaultWindowsInFlight = 10

    public init(
        store: any ModelStore, maximumChunkBytes: Int = WireProtocol.defaultChunkBytes,
        maximumWindowBytes: Int = Self.defaultMaximumWindowBytes,
        maximumBytesInFlight: Int = Self.defaultWindowsInFlight * Self.defaultMaximumWindowBytes,
        progress: TransferProgress = TransferProgress(), admissionTimeout: Duration = .seconds(60),
        clock: any ServiceClock
    ) {
        self.clock = clock
        self.store = store
        self.chunker = ModelChunker(maximumChunkBytes: maximumChunkBytes)
        self.maximumWindowBytes = max(chunker.maximumChunkBytes, maximumWindowBytes)
        // Never below one window: every fetch can be admitted.
        self.maximumBytesInFlight = max(self.maximumWindowBytes, maximumBytesInFlight)
        self.admission = FetchAdmission(budget: self.maximumBytesInFlight)
        self.progress = progress
        self.admissionTimeout = admissionTimeout
    }

    public func fetchModel(
        request: RPCAsyncSequence<Tessera_V1_FetchModelMessage, any Error>, response: RPCWriter<Tessera_V1_ModelChunk>,
        context: ServerContext
    ) async throws {
        let watch = ProgressWatch(progress: progress, clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serve(request, into: response, watch: watch) }
            group.addTask { try await watch.run() }
            // The fetch ends, or the watch fires first (which cancels the fetch).
            try await group.next()
            group.cancelAll()
        }
    }

    private func serve(
        _ request: RPCAsyncSequence<Tessera_V1_FetchModelMessage, any Error>,
        into response: RPCWriter<Tessera_V1_ModelChunk>,
        watch: ProgressWatch
    ) async throws {
        var messages = request.makeAsyncIterator()
        guard let first = try await messages.next() else {
            throw RPCError(code: .invalidArgument, message: "the model fetch ended before its request.")
        }
        let fetch: ModelFetchRequest
        do {
            fetch = try ModelFetchRequest(first, maximumChunkBytes: chunker.maximumChunkBytes)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        guard let parameters = store.parameters(for: fetch.digest) else {
            throw RPCError(
                code: .notFound, message: "no model with digest \(fetch.digest.hex) is held by this coordinator.")
        }
        let window = min(fetch.windowBytes, maximumWindowBytes)
        try await admission.acquire(window, timeout: admissionTimeout, clock: clock)
        metrics?.fetch(admitted: true)
        defer {
            admission.release(window)
            metrics?.fetch(admitted: false)
        }
        watch.begin()
        // Sent and not credited back yet.
        var outstanding = 0
        for (index, var chunk) in chunker.modelChunks(of: parameters, digest: fetch.digest).enumerated() {
            if index == 0 { chunk.windowBytes = UInt64(window) }
            while outstanding + chunk.data.count > window {
                // The receiver went away: nothing more to send.
                guard let next = try await messages.next() else { return }
                do {
                    // A credit beyond what is outstanding buys nothing: never more than the window in flight.
                    outstanding -= min(outstanding, try ModelFetchRequest.credit(of: next))
                } catch {
                    throw RPCError(code: .invalidArgument, message: error.description)
                }
            }
            try await response.write(chunk)
            outstanding += chunk.data.count
            watch.record(chunk.data.count)
            metrics?.bytes(chunk.data.count, .sent, .model)
        }
    }
}

/// Fetch admission: a fetch takes its window out of a byte budget before it sends anything and
/// gives it back when it ends; fetches that do not fit wait, and are admitted strictly in
/// arrival order (a large window is not overtaken forever by small ones).
final class FetchAdmission: Sendable {
    private struct Waiter {
        let id: UInt64
        let bytes: Int
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var available: Int
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
    }
    private let state: Mutex<State>
    let budget: Int

    init(budget: Int) {
        self.budget = max(1, budget)
        state = Mutex(State(available: self.budget))
    }

    /// Takes `bytes` (at most the whole budget) once they are free and every earlier waiter has
    /// been admitted. Throws `CancellationError` if the task is cancelled while waiting.
    func acquire(_ bytes: Int) async throws {
        let bytes = min(bytes, budget)
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let admitted: Bool? = state.withLock { state in
                    if Task.isCancelled { return false }
                    if state.waiters.isEmpty, state.available >= bytes {
                        state.available -= bytes
                        return true
                    }
                    state.waiters.append(Waiter(id: id, bytes: bytes, continuation: continuation))
                    return nil
                }
                switch admitted {
                case true?: continuation.resume()
                case false?: continuation.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0) }
            }
            waiter?.continuation.resume(throwing: CancellationError())
            // The head of the queue may have left: the next ones may fit now.
            admitWaiters()
        }
    }

    /// Takes `bytes` like ``acquire(_:)``, but fails with RESOURCE_EXHAUSTED if they are not
    /// granted within `timeout` of `clock`.
    func acquire(_ bytes: Int, timeout: Duration, clock: any ServiceClock) async throws {
        let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await self.acquire(bytes)
                return true
            }
            group.addTask {
                try await clock.sleep(for: timeout)
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            if first { return true }
            // The waiter may have been admitted as the timeout fired: then give the bytes back.
            while let admitted = try? await group.next() {
                if admitted { release(bytes) }
            }
            return false
        }
        guard granted else {
            throw RPCError(
                code: .resourceExhausted,
                message:
                    "the coordinator is serving as many model fetches as its budget allows, and this one waited \(timeout) for its turn; retry later"
            )
        }
    }

    /// Gives back `bytes` taken by ``acquire(_:)``.
    func release(_ bytes: Int) {
        let bytes = min(bytes, budget)
        state.withLock { $0.available += bytes }
        admitWaiters()
    }

    private func admitWaiters() {
        let admitted = state.withLock { state in
            var admitted: [Waiter] = []
            while let first = state.waiters.first, state.available >= first.bytes {
                state.available -= first.bytes
                admitted.append(state.waiters.removeFirst())
            }
            return admitted
        }
        for waiter in admitted { waiter.continuation.resume() }
    }

    /// Bytes of the budget not taken (for tests).
    var available: Int { state.withLock { $0.available } }

    /// How many fetches wait to be admitted (for tests).
    var waiting: Int { state.withLock { $0.waiters.count } }
}

/// Ends a fetch that moves too little: from when it is admitted (``begin()``), it wakes every
/// third of the window and throws once the fetch's ``ProgressMeter`` says that the last whole
/// window carried less than the rate asks.
private final class ProgressWatch: Sendable {
    private struct State {
        var meter: ProgressMeter?
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let progress: TransferProgress
    private let clock: any ServiceClock
    private let state = Mutex(State())

    init(progress: TransferProgress, clock: any ServiceClock) {
        self.progress = progress
        self.clock = clock
    }

    /// The fetch was admitted: its window starts now.
    func begin() {
        let now = clock.now
        let waiter = state.withLock { state in
            state.meter = progress.meter(startingAt: now)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// `bytes` were sent.
    func record(_ bytes: Int) {
        let now = clock.now
        state.withLock { $0.meter?.record(bytes, now: now) }
    }

    /// Returns only by throwing: an RPC error when the fetch is too slow, or cancellation.
    func run() async throws {
        let start = try await started()
        // No rate to keep: wait for the fetch to end.
        while progress.minimumBytesPerSecond == 0 { try await clock.sleep(for: .seconds(3600)) }
        var check = start + progress.window
        while true {
            try await clock.sleep(until: check)
            let now = clock.now
            if let verdict = state.withLock({ state in
                state.meter.flatMap { $0.isTooSlow(now: now) ? $0.verdict(now: now) : nil }
            }) {
                throw RPCError(
                    code: .deadlineExceeded,
                    message:
                        "the model fetch is too slow: \(verdict); it is ended so that others can use its share of the budget."
                )
            }
            check = max(check, now) + progress.window / 3
        }
    }

    /// When the fetch was admitted, once it is.
    private func started() async throws -> Duration {
        while true {
            try Task.checkCancellation()
            if let start = state.withLock({ $0.meter?.started }) { return start }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state in
                        if state.meter != nil || Task.isCancelled { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { state in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
    }
}
