import HTTPTypes
public import Hummingbird
import NIOCore
import Synchronization

/// One server-sent event: an optional event name and its data (several `data:` lines when it
/// has several lines).
public struct ServerSentEvent: Sendable, Hashable {
    public var name: String?
    public var data: String

    public init(name: String? = nil, data: String) {
        self.name = name
        self.data = data
    }

    /// The event on the wire. A carriage return or line feed in the name or the data cannot end
    /// the event early or start a field of its own: the name loses them, the data is split on them.
    public var encoded: String {
        var text = ""
        if let name {
            text += "event: " + String(name.filter { !$0.isNewline }) + "\n"
        }
        for line in data.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            text += "data: " + line + "\n"
        }
        return text + "\n"
    }
}

/// The server-sent-event streams of an ``ObservabilityServer``: at most ``maximum`` at once (one
/// more is answered 503, so browsers left open cannot exhaust the process), each with a comment
/// line every ``keepalive``, all ended when the server stops.
public final class EventStreams: Sendable {
    public let maximum: Int
    public let keepalive: Duration

    private struct State {
        var open = 0
        var closed = false
        var nextID = 0
        /// What ends each open stream when the server stops.
        var stops: [Int: AsyncStream<Item>.Continuation] = [:]
    }

    private enum Item: Sendable {
        case event(ServerSentEvent)
        case keepalive
    }

    private let state = Mutex(State())

    public init(maximum: Int, keepalive: Duration) {
        self.maximum = max(0, maximum)
        self.keepalive = keepalive
    }

    /// How many streams are open.
    public var openStreams: Int { state.withLock { $0.open } }

    /// A `text/event-stream` response that writes the events of `subscribe()` as they come, or
    /// 503 when ``maximum`` streams are open. `subscribe` is called once the response is being
    /// written, and its sequence is iterated in a task cancelled when the stream ends. The slot
    /// is held until the response is written to its end or dropped (its client went away, or
    /// the server stopped).
    public func response<Events: AsyncSequence<ServerSentEvent, Never>>(
        to request: Request, _ subscribe: @escaping @Sendable () -> Events
    ) -> Response {
        let admitted = state.withLock { state -> Bool in
            guard !state.closed, state.open < maximum else { return false }
            state.open += 1
            return true
        }
        guard admitted else {
            var response = ObservabilityServer.text(
                "too many event streams are open (at most \(maximum)); retry later\n", status: .serviceUnavailable)
            response.headers[.retryAfter] = "10"
            return response
        }
        let slot = Slot { [weak self] in self?.state.withLock { $0.open -= 1 } }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { [self] writer in
                // The slot lives as long as this closure: released when the body is written to
                // its end, or when a response never written is dropped.
                _ = slot
                try await stream(subscribe, to: &writer, request: request)
            })
    }

    /// Ends every open stream and refuses new ones (the server is stopping).
    public func close() {
        let stops = state.withLock { state in
            state.closed = true
            defer { state.stops = [:] }
            return Array(state.stops.values)
        }
        for stop in stops { stop.finish() }
    }

    private func stream<Events: AsyncSequence<ServerSentEvent, Never>>(
        _ subscribe: @escaping @Sendable () -> Events, to writer: inout any ResponseBodyWriter, request: Request
    ) async throws {
        let (merged, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingNewest(64))
        let id = state.withLock { state -> Int? in
            guard !state.closed else { return nil }
            state.nextID += 1
            state.stops[state.nextID] = continuation
            return state.nextID
        }
        guard let id else { return try await writer.finish(nil) }
        defer { _ = state.withLock { $0.stops.removeValue(forKey: id) } }
        let keepalive = keepalive
        // A client that closes its side ends the stream at once, not at the next write.
        try await request.body.consumeWithInboundCloseHandler { _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in subscribe() { continuation.yield(.event(event)) }
                    continuation.finish()
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: keepalive)
                        continuation.yield(.keepalive)
                    }
                }
                // A comment first: the client sees the stream open before the first event.
                try await writer.write(ByteBuffer(string: ": open\n\n"))
                for await item in merged {
                    switch item {
                    case .event(let event): try await writer.write(ByteBuffer(string: event.encoded))
                    case .keepalive: try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
                    }
                }
                group.cancelAll()
            }
        } onInboundClosed: {
            continuation.finish()
        }
        try await writer.finish(nil)
    }
}

/// Runs `release` once, when the last reference goes.
private final class Slot: Sendable {
    let release: @Sendable () -> Void

    init(_ release: @escaping @Sendable () -> Void) {
        self.release = release
    }

    deinit { release() }
}
