import HTTPTypes
public import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
import ServiceLifecycle

/// The plain-HTTP port both service programs open with `--http HOST:PORT`: `GET /metrics` for
/// Prometheus, `GET /healthz` and `GET /readyz` for probes, and whatever routes the program adds
/// (the coordinator's dashboard).
///
/// It carries no identity and no secret, and strangers may reach it, so everything a request can
/// make the process hold is bounded by ``Limits``: connections, header bytes, body bytes, idle
/// time and server-sent-event streams.
public struct ObservabilityServer: Sendable {
    /// What a stranger can make the server hold. The defaults suit a scraper, two probes and a few
    /// browsers.
    public struct Limits: Sendable, Hashable {
        /// Open connections at once; more wait in the listen backlog.
        public var maximumConnections: Int
        /// Bytes of one request header field, and of all of them together.
        public var maximumHeaderFieldBytes: Int
        public var maximumHeaderBytes: Int
        /// Header fields of one request.
        public var maximumHeaderFields: Int
        /// Bytes of a request body: only the POST actions read one.
        public var maximumBodyBytes: Int
        /// Server-sent-event streams at once; one more is answered 503.
        public var maximumEventStreams: Int
        /// How often an idle event stream gets a comment line, so proxies keep it open and a
        /// client that went away is noticed.
        public var eventStreamKeepalive: Duration
        /// A connection with no request in progress for this long is closed (a header sent slowly
        /// counts as no request).
        public var idleTimeout: Duration

        public init(
            maximumConnections: Int = 64, maximumHeaderFieldBytes: Int = 8 << 10, maximumHeaderBytes: Int = 16 << 10,
            maximumHeaderFields: Int = 64, maximumBodyBytes: Int = 4 << 10, maximumEventStreams: Int = 32,
            eventStreamKeepalive: Duration = .seconds(15), idleTimeout: Duration = .seconds(30)
        ) {
            self.maximumConnections = maximumConnections
            self.maximumHeaderFieldBytes = maximumHeaderFieldBytes
            self.maximumHeaderBytes = maximumHeaderBytes
            self.maximumHeaderFields = maximumHeaderFields
            self.maximumBodyBytes = maximumBodyBytes
            self.maximumEventStreams = maximumEventStreams
            self.eventStreamKeepalive = eventStreamKeepalive
            self.idleTimeout = idleTimeout
        }
    }

    /// What `GET /readyz` answers.
    public enum Readiness: Sendable, Hashable {
        case ready
        /// Not ready, with a one-line reason for the operator.
        case notReady(String)
    }

    /// Adds routes to the server's router: the coordinator's dashboard. `events` serves
    /// server-sent events within ``Limits/maximumEventStreams``.
    public typealias Routes = @Sendable (_ router: Router<BasicRequestContext>, _ events: EventStreams) -> Void

    /// The Prometheus text exposition format, version 0.0.4.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    public var endpoint: Endpoint
    public var limits: Limits
    /// The Prometheus exposition `/metrics` serves, read at each scrape.
    public var metrics: @Sendable () -> String
    /// What `/readyz` answers, asked at each probe.
    public var readiness: @Sendable () -> Readiness
    public var routes: Routes

    public init(
        endpoint: Endpoint, limits: Limits = Limits(), metrics: @escaping @Sendable () -> String = { "" },
        readiness: @escaping @Sendable () -> Readiness = { .ready },
        routes: @escaping Routes = { _, _ in }
    ) {
        self.endpoint = endpoint
        self.limits = limits
        self.metrics = metrics
        self.readiness = readiness
        self.routes = routes
    }

    /// Serves on ``endpoint`` (port 0 picks a free port) for the duration of `body`, which
    /// receives the bound port. When `body` returns or throws, open event streams end and the
    /// server stops gracefully: it accepts nothing more and lets requests in progress finish.
    public func run<Result: Sendable>(
        logger: Logger, _ body: (_ port: Int) async throws -> Result
    ) async throws -> Result {
        let events = EventStreams(maximum: limits.maximumEventStreams, keepalive: limits.eventStreamKeepalive)
        // HEAD is answered wherever GET is: some probes and uptime checkers send it.
        let router = Router(options: .autoGenerateHeadEndpoints)
        installProbes(on: router)
        routes(router, events)
        let decoder = HTTP1Channel.Configuration.DecoderConfiguration(
            maxHeaderFieldSize: limits.maximumHeaderFieldBytes, maxHeaderListSize: limits.maximumHeaderBytes,
            maxHeaderFieldCount: limits.maximumHeaderFields)
        let (bound, boundContinuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router,
            server: .http1(
                configuration: .init(
                    idleTimeout: TimeAmount.nanoseconds(Int64(limits.idleTimeout.inSeconds * 1e9)),
                    httpDecoderConfiguration: decoder)),
            configuration: ApplicationConfiguration(
                address: .hostname(endpoint.host, port: endpoint.port), backlog: 64,
                availableConnectionsDelegate: MaximumAvailableConnections(limits.maximumConnections)),
            onServerRunning: { channel in
                boundContinuation.yield(channel.localAddress?.port ?? -1)
                boundContinuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: application, serviceName: "http")], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // A bind that fails ends the group before the port is known: `bound` finishes empty.
                defer { boundContinuation.finish() }
                try await group.run()
            }
            var ports = bound.makeAsyncIterator()
            guard let port = await ports.next(), port >= 0 else {
                _ = try await tasks.next()
                throw TesseraRuntimeError(.transport, "the HTTP server on \(endpoint) stopped before it listened")
            }
            logger.info("HTTP listening on \(Endpoint(host: endpoint.host, port: port)) (/metrics, /healthz, /readyz)")
            let result: Result
            do {
                result = try await body(port)
            } catch {
                events.close()
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            events.close()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        }
    }

    private func installProbes(on router: Router<BasicRequestContext>) {
        let metrics = metrics
        let readiness = readiness
        router.get("metrics") { _, _ in
            Self.text(metrics(), status: .ok, contentType: Self.metricsContentType)
        }
        router.get("healthz") { _, _ in
            Self.text("ok\n", status: .ok)
        }
        router.get("readyz") { _, _ in
            switch readiness() {
            case .ready: Self.text("ready\n", status: .ok)
            case .notReady(let reason): Self.text(Self.oneLine(reason) + "\n", status: .serviceUnavailable)
            }
        }
    }

    /// A complete text response.
    public static func text(
        _ text: String, status: HTTPResponse.Status, contentType: String = "text/plain; charset=utf-8"
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// `text` on one line: a probe's reason is read by people in one-line tools.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
