import Foundation
import GRPCCore
import Synchronization
import TesseraWire

/// The models a coordinator serves by digest, held in memory.
///
/// Only the most recent ``capacity`` models are kept: tasks name the current global model (and
/// evaluation the model just published), so older versions are never asked for by a correct
/// participant, and the coordinator's memory stays a few models regardless of the round count.
/// Used by the coordinator and by tests (a test double shipped as code).
public final class InMemoryModelStore: Sendable {
    private struct State {
        var models: [ModelDigest: [Float]] = [:]
        var order: [ModelDigest] = []
    }
    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int = 4) {
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
/// window of bytes is sent and not yet credited back by the receiver. The windows of all
/// fetches in progress share one budget (``maximumBytesInFlight``): a fetch gets what it asked
/// for (``ModelFetchRequest/windowBytes``) while few run, and an equal share, but never less than
/// one chunk, when many do. What the coordinator buffers for downloads therefore stays about
/// the budget, not the number of participants times a window.
public struct ModelStoreService: Tessera_V1_ModelStore.SimpleServiceProtocol {
    private let store: InMemoryModelStore
    private let chunker: ModelChunker
    private let fetches = ActiveFetches()
    public let maximumBytesInFlight: Int

    public init(
        store: InMemoryModelStore, maximumChunkBytes: Int = WireProtocol.defaultChunkBytes,
        maximumBytesInFlight: Int = 4 << 20
    ) {
        self.store = store
        self.chunker = ModelChunker(maximumChunkBytes: maximumChunkBytes)
        self.maximumBytesInFlight = maximumBytesInFlight
    }

    /// The window a fetch asking for `requested` bytes gets now.
    private func window(_ requested: Int) -> Int {
        max(chunker.maximumChunkBytes, min(requested, maximumBytesInFlight / max(1, fetches.count)))
    }

    public func fetchModel(
        request: RPCAsyncSequence<Tessera_V1_FetchModelMessage, any Error>, response: RPCWriter<Tessera_V1_ModelChunk>,
        context: ServerContext
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
        fetches.enter()
        defer { fetches.leave() }
        var credit = window(fetch.windowBytes)
        for chunk in chunker.modelChunks(of: parameters, digest: fetch.digest) {
            while credit < chunk.data.count {
                // The receiver went away: nothing more to send.
                guard let next = try await messages.next() else { return }
                do {
                    // Never more than the window in flight, whatever the receiver claims.
                    credit = min(window(fetch.windowBytes), credit + (try ModelFetchRequest.credit(of: next)))
                } catch {
                    throw RPCError(code: .invalidArgument, message: error.description)
                }
            }
            try await response.write(chunk)
            credit -= chunk.data.count
        }
    }
}

/// How many fetches are in progress.
private final class ActiveFetches: Sendable {
    private let value = Mutex(0)
    var count: Int { value.withLock { $0 } }
    func enter() { value.withLock { $0 += 1 } }
    func leave() { value.withLock { $0 -= 1 } }
}
