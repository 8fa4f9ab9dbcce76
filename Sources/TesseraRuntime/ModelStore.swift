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

/// The `tessera.v1.ModelStore` service over an ``InMemoryModelStore``: streams the requested
/// range of a model in chunks.
///
/// Receivers ask for a model in ranges of ``WireProtocol/modelRangeBytes``, one after the other
/// (``ParticipantClient`` does). A gRPC server stream's writes return before the bytes have left,
/// so what one request can make this process buffer is its range: asking in ranges is what
/// bounds the coordinator's memory per downloading participant.
public struct ModelStoreService: Tessera_V1_ModelStore.SimpleServiceProtocol {
    private let store: InMemoryModelStore
    private let chunker: ModelChunker

    public init(store: InMemoryModelStore, maximumChunkBytes: Int = WireProtocol.defaultChunkBytes) {
        self.store = store
        self.chunker = ModelChunker(maximumChunkBytes: maximumChunkBytes)
    }

    public func fetchModel(
        request: Tessera_V1_FetchModelRequest, response: RPCWriter<Tessera_V1_ModelChunk>, context: ServerContext
    ) async throws {
        let digest: ModelDigest
        let values: Range<Int>
        let parameters: [Float]
        do {
            digest = try ModelDigest(hex: request.digest)
            guard let held = store.parameters(for: digest) else {
                throw RPCError(code: .notFound, message: "no model with digest \(digest.hex) is held by this coordinator.")
            }
            parameters = held
            values = try request.requestedValues(parameterCount: parameters.count)
        } catch let error as WireError {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        for chunk in chunker.modelChunks(of: parameters, digest: digest, values: values) {
            try await response.write(chunk)
        }
    }
}
