import Foundation
import GRPCCore
import Synchronization
import TesseraWire

/// The models a coordinator serves by digest, held in memory.
///
/// Only the most recent ``capacity`` models are kept, two by default: tasks name the current
/// global model (training, and evaluation of the model just published), and the one before it
/// serves a fetch still running when a round ends. Older versions are never asked for by a
/// correct participant (the coordinator puts a version back if a task ever names one that was
/// dropped), so the coordinator holds two models whatever the round count; with a 400 MB model,
/// each version kept is 400 MB. Used by the coordinator and by tests (a test double shipped as
/// code).
public final class InMemoryModelStore: Sendable {
    private struct State {
        var models: [ModelDigest: [Float]] = [:]
        var order: [ModelDigest] = []
    }
    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int = 2) {
        self.capacity = max(1, capacity)
    }

    /// Stores `parameters` and returns the digest that names them.
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

/// The `tessera.v1.ModelStore` service over an ``InMemoryModelStore``: streams a model in chunks
/// under the receiver's flow control.
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
/// The window is a trade-off between a site's download speed (about window ÷ round-trip time)
/// and the coordinator's memory: TLS keeps, per connection, an output buffer as large as the
/// largest burst it ever encrypted, and a fetch's first burst is its whole window. Measured on
/// the runtime benchmark (4 MB model, loopback): windows of 16 chunks and a 4 MiB budget made the
/// coordinator's peak RSS with 100 sites about 30 MB larger than the default 4 chunks and 1 MiB,
/// for plain rounds 10–15 ms faster. Measured again with ``ConnectionBuffers`` (ten sites'
/// rounds, medians of alternating runs): 255 KiB chunks in windows of 4 and a 4 MiB budget gave
/// plain rounds of 165 ms against 185 and secure ones of 259 against 283, for about 9 MB more
/// with 100 sites (139 against 130 MB); with the 1 MiB budget kept (one such window at a time)
/// rounds were no faster. (Those comparisons were against a budget of four windows, 1 MiB, the
/// default before ``defaultWindowsInFlight``.) Raise the window for sites behind long links.
public struct ModelStoreService: Tessera_V1_ModelStore.SimpleServiceProtocol {
    private let store: InMemoryModelStore
    private let chunker: ModelChunker
    private let admission: FetchAdmission
    /// The largest window a fetch is granted.
    public let maximumWindowBytes: Int
    /// How many bytes all fetches together may have sent and not yet had credited back.
    public let maximumBytesInFlight: Int
    public let stallTimeout: Duration

    /// The default window: 4 chunks.
    public static let defaultMaximumWindowBytes = 4 * WireProtocol.defaultChunkBytes

    /// How many whole windows the default budget holds: ten fetches run at once.
    ///
    /// Measured on the runtime benchmark (ten sites; alternating runs, medians of rounds 2…8):
    /// with four windows (1 MiB) the sites fetched four at a time and the last one had its model
    /// 90–145 ms into the round; with ten, plain rounds took 164, 171 and 195 ms against 191, 181
    /// and 206, and secure ones 261, 282 and 264 against 278, 297 and 297. The coordinator's peak
    /// RSS with 100 sites moved by about 2 MB (113.6–117.3 against 111.1–115.4 MB over four
    /// runs each), within its run-to-run spread: what a fetch holds is its window, and the
    /// connection's own buffers are bounded by ``ConnectionBuffers`` whatever the window count.
    public static let defaultWindowsInFlight = 10

    public init(
        store: InMemoryModelStore, maximumChunkBytes: Int = WireProtocol.defaultChunkBytes,
        maximumWindowBytes: Int = Self.defaultMaximumWindowBytes,
        maximumBytesInFlight: Int = Self.defaultWindowsInFlight * Self.defaultMaximumWindowBytes,
        stallTimeout: Duration = .seconds(30)
    ) {
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
        let watch = StallWatch()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serve(request, into: response, watch: watch) }
            group.addTask { try await watch.run(timeout: stallTimeout) }
            // The fetch ends, or the watch fires first (which cancels the fetch).
            try await group.next()
            group.cancelAll()
        }
    }

    private func serve(
        _ request: RPCAsyncSequence<Tessera_V1_FetchModelMessage, any Error>, into response: RPCWriter<Tessera_V1_ModelChunk>,
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
            throw RPCError(code: .notFound, message: "no model with digest \(fetch.digest.hex) is held by this coordinator.")
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
}

/// Fires when a fetch has waited for credits longer than a timeout.
private final class StallWatch: Sendable {
    /// Since when the fetch waits for a credit (nil while it is sending).
    private let waitingSince = Mutex<ContinuousClock.Instant?>(nil)

    func arm() { waitingSince.withLock { $0 = .now } }
    func disarm() { waitingSince.withLock { $0 = nil } }

    /// Returns only by throwing: an RPC error when the fetch stalled, or cancellation.
    func run(timeout: Duration) async throws {
        while true {
            try await Task.sleep(for: timeout / 4)
            if let since = waitingSince.withLock({ $0 }), ContinuousClock.now - since >= timeout {
                throw RPCError(
                    code: .deadlineExceeded,
                    message: "the model fetch sent no credit for \(timeout) with its window full; the fetch is ended so that others can use its share of the budget.")
            }
        }
    }
}
