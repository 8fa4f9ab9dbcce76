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
/// finishing last. A receiver whose window stays full for ``stallTimeout`` (it stopped
/// crediting) loses its fetch, so it cannot keep a place in the budget from the others.
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
    public let stallTimeout: Duration
    private let clock: any ServiceClock

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
        stallTimeout: Duration = .seconds(30), clock: any ServiceClock
    ) {
        self.clock = clock
        self.store = store
        self.chunker = ModelChunker(maximumChunkBytes: maximumChunkBytes)
        self.maximumWindowBytes = max(chunker.maximumChunkBytes, maximumWindowBytes)
        // Never below one window: every fetch can be admitted.
        self.maximumBytesInFlight = max(self.maximumWindowBytes, maximumBytesInFlight)
        self.admission = FetchAdmission(budget: self.maximumBytesInFlight)
        self.stallTimeout = stallTimeout
    }

    public func fetchModel(
        request: RPCAsyncSequence<Tessera_V1_FetchModelMessage, any Error>, response: RPCWriter<Tessera_V1_ModelChunk>,
        context: ServerContext
    ) async throws {
        let watch = StallWatch(clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serve(request, into: response, watch: watch) }
            group.addTask { try await watch.run(timeout: stallTimeout) }
            // The fetch ends, or the watch fires first (which cancels the fetch).
            try await group.next()
            group.cancelAll()
        }
    }

    private func serve(
        _ request: RPCAsyncSequence<Tessera_V1_FetchModelMessage, any Error>,
        into response: RPCWriter<Tessera_V1_ModelChunk>,
        watch: StallWatch
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
        try await admission.acquire(window)
        defer { admission.release(window) }
        // Sent and not credited back yet.
        var outstanding = 0
        for (index, var chunk) in chunker.modelChunks(of: parameters, digest: fetch.digest).enumerated() {
            if index == 0 { chunk.windowBytes = UInt64(window) }
            while outstanding + chunk.data.count > window {
                watch.arm()
                // The receiver went away: nothing more to send.
                guard let next = try await messages.next() else { return }
                watch.disarm()
                do {
                    // A credit beyond what is outstanding buys nothing: never more than the window in flight.
                    outstanding -= min(outstanding, try ModelFetchRequest.credit(of: next))
                } catch {
                    throw RPCError(code: .invalidArgument, message: error.description)
                }
            }
            try await response.write(chunk)
            outstanding += chunk.data.count
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

/// Fires when a fetch has waited for credits longer than a timeout: it sleeps only while the
/// fetch is armed (waiting for a credit), until the instant the wait would become a stall.
private final class StallWatch: Sendable {
    private struct State {
        /// Since when the fetch waits for a credit (nil while it is sending).
        var armedAt: Duration?
        /// Counts arm and disarm calls: a wake-up for an older arming is not a stall.
        var epoch: UInt64 = 0
        var sleeper: CheckedContinuation<Void, Never>?
    }
    private let clock: any ServiceClock
    private let state = Mutex(State())

    init(clock: any ServiceClock) {
        self.clock = clock
    }

    func arm() { set(armedAt: clock.now) }
    func disarm() { set(armedAt: nil) }

    private func set(armedAt: Duration?) {
        let sleeper = state.withLock { state in
            state.armedAt = armedAt
            state.epoch += 1
            defer { state.sleeper = nil }
            return state.sleeper
        }
        sleeper?.resume()
    }

    /// Returns only by throwing: an RPC error when the fetch stalled, or cancellation.
    func run(timeout: Duration) async throws {
        while true {
            let (epoch, since) = try await nextArming()
            try await clock.sleep(until: since + timeout)
            if state.withLock({ $0.epoch == epoch }) {
                throw RPCError(
                    code: .deadlineExceeded,
                    message:
                        "the model fetch sent no credit for \(timeout) with its window full; the fetch is ended so that others can use its share of the budget."
                )
            }
        }
    }

    /// The current arming, once the fetch is armed.
    private func nextArming() async throws -> (epoch: UInt64, since: Duration) {
        while true {
            try Task.checkCancellation()
            if let armed = state.withLock({ state in state.armedAt.map { (state.epoch, $0) } }) { return armed }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state in
                        if state.armedAt != nil || Task.isCancelled { return true }
                        state.sleeper = continuation
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
}
