public import GRPCCore
import GRPCInProcessTransport
import Synchronization

/// A participant's in-process transport to a coordinator that stops and starts again: the
/// test double for a coordinator restart, or for a coordinator that runs one experiment after
/// another, in front of the same long-running participant clients.
///
/// Each ``serving(_:_:)`` call is one coordinator's lifetime, on a fresh in-process server. While
/// none is serving, every new stream fails with UNAVAILABLE, as a dial to a coordinator that is
/// down does, and is counted (``refusedStreams``); when one stops, its open streams end as a
/// dropped connection's do. The participants' clients never see the switch otherwise.
///
/// ```swift
/// let link = RestartableInProcessTransport()
/// try await withGRPCClient(transport: link) { client in   // the participants' loops use `client`
///     _ = try await link.serving(first.services) { await first.run() }
///     _ = try await link.serving(second.services) { await second.run() }
/// }
/// ```
public final class RestartableInProcessTransport: ClientTransport {
    public typealias Bytes = [UInt8]

    private struct State {
        var current: InProcessTransport.Client?
        var refused = 0
        var watchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())
    private let closed: AsyncStream<Void>
    private let closing: AsyncStream<Void>.Continuation

    public let retryThrottle: RetryThrottle? = nil

    public init() {
        (closed, closing) = AsyncStream.makeStream(of: Void.self)
    }

    /// How many streams were refused because no coordinator was serving.
    public var refusedStreams: Int { state.withLock { $0.refused } }

    /// Returns once at least `count` streams have been refused (at once if they have).
    public func waitForRefusedStreams(atLeast count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if state.refused >= count { return true }
                state.watchers.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Serves `services` (one coordinator's) to this transport's clients until `body` returns,
    /// then stops that server: its open streams end and new ones are refused until the next call.
    public func serving<Value: Sendable>(
        _ services: [any RegistrableRPCService], _ body: () async throws -> Value
    ) async throws -> Value {
        let transport = InProcessTransport()
        return try await withGRPCServer(transport: transport.server, services: services) { _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await transport.client.connect() }
                state.withLock { $0.current = transport.client }
                let outcome: Result<Value, any Error>
                do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
                state.withLock { $0.current = nil }
                transport.client.beginGracefulShutdown()
                // Streams still open end as on a dropped connection.
                group.cancelAll()
                return try outcome.get()
            }
        }
    }

    public func connect() async throws {
        for await _ in closed {}
    }

    public func beginGracefulShutdown() {
        closing.finish()
    }

    public func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? { nil }

    public func withStream<T: Sendable>(
        descriptor: MethodDescriptor, options: CallOptions,
        _ closure: (_ stream: RPCStream<Inbound, Outbound>, _ context: ClientContext) async throws -> T
    ) async throws -> T {
        guard let client = state.withLock({ $0.current }) else { throw refuse() }
        var opened = false
        do {
            return try await client.withStream(descriptor: descriptor, options: options) { stream, context in
                opened = true
                return try await closure(stream, context)
            }
        } catch let error as RPCError where !opened {
            // The coordinator stopped between the lookup and the stream: it is down.
            throw refuse(error.message)
        }
    }

    private func refuse(_ detail: String = "no coordinator is running") -> RPCError {
        let woken = state.withLock { state in
            state.refused += 1
            let refused = state.refused
            let woken = state.watchers.filter { $0.count <= refused }
            state.watchers.removeAll { $0.count <= refused }
            return woken
        }
        for watcher in woken { watcher.continuation.resume() }
        return RPCError(code: .unavailable, message: "test transport: \(detail)")
    }
}
