import Synchronization
public import TesseraCoordinator
public import TesseraWire

/// A ``ModelStore`` for tests: it keeps every model it is given and counts the lookups, so a
/// test can serve fixed models and check what was asked for.
public final class InMemoryModelStore: ModelStore {
    private struct State {
        var models: [ModelDigest: [Float]] = [:]
        var lookups: [ModelDigest: Int] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    @discardableResult
    public func put(_ parameters: [Float]) -> ModelDigest {
        let digest = ModelDigest(parameters: parameters)
        state.withLock { $0.models[digest] = parameters }
        return digest
    }

    public func parameters(for digest: ModelDigest) -> [Float]? {
        state.withLock { state in
            state.lookups[digest, default: 0] += 1
            return state.models[digest]
        }
    }

    /// How many times the model named by `digest` was looked up.
    public func lookups(of digest: ModelDigest) -> Int {
        state.withLock { $0.lookups[digest] ?? 0 }
    }

    public var count: Int { state.withLock { $0.models.count } }
}
