import Synchronization
public import TesseraCoordinator
public import TesseraWire

/// A ``ModelStore`` for tests: it keeps every model it is given, so a test can serve fixed models
/// whatever it stores after them.
public final class InMemoryModelStore: ModelStore {
    private struct State {
        var models: [ModelDigest: [Float]] = [:]
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
        state.withLock { $0.models[digest] }
    }

    public var count: Int { state.withLock { $0.models.count } }
}
