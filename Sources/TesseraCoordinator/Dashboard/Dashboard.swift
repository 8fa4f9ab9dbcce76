public import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
import TesseraFederation
public import TesseraState
public import TesseraTransport

/// The coordinator's HTTP dashboard, served on the ``ObservabilityServer``'s port: the
/// experiments and their runs, the live round (pushed on `/events`), the sites, the metric curves
/// and the model registry, all read from the state folder and the ``LiveRoundBoard``.
///
/// Read-only unless an ``OperatorToken`` is given: then `POST /api/models/promote` and
/// `POST /api/experiments/{id}/cancel` make the same state changes as `tessera models promote`
/// and `tessera experiments cancel`, recorded as ``actor``. An action needs the bearer token,
/// and a request whose `Origin` is not this server is refused whatever it carries (CSRF).
public struct Dashboard: Sendable {
    public var state: CoordinatorState
    public var board: LiveRoundBoard
    public var token: OperatorToken?
    public var logger: Logger
    /// The wall clock (site health and breakers are judged at its time).
    public var now: @Sendable () -> Date
    /// Told of an experiment an action changed (the coordinator wakes its queue on it).
    public var onChange: @Sendable (ExperimentRecord) -> Void

    /// Who the audit trail names for an action taken here.
    public static let actor = "operator:dashboard"

    public init(
        state: CoordinatorState, board: LiveRoundBoard, token: OperatorToken? = nil, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() },
        onChange: @escaping @Sendable (ExperimentRecord) -> Void = { _ in }
    ) {
        self.state = state
        self.board = board
        self.token = token
        self.logger = logger
        self.now = now
        self.onChange = onChange
    }

    /// The routes to give ``ObservabilityServer/init(endpoint:limits:metrics:readiness:routes:)``.
    public var routes: ObservabilityServer.Routes {
        { router, events in install(on: router, events: events) }
    }

    /// What the pages allow: scripts and styles from this server only, nothing inline, no
    /// framing (a framed page could be clicked through), no form posts.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func install(on router: Router<BasicRequestContext>, events: EventStreams) {
        router.get("/") { _, _ in
            try render { Self.html(DashboardHTML.overview(try overview())) }
        }
        router.get("experiments/:id") { _, context in
            guard let id = context.parameters.get("id").flatMap(Int64.init) else {
                return ObservabilityServer.text("an experiment id is a number\n", status: .badRequest)
            }
            return try render {
                let detail = try DashboardExperiment(state: state, id: id, actionsEnabled: token != nil)
                return Self.html(DashboardHTML.experiment(detail))
            }
        }
        router.get("assets/dashboard.css") { _, _ in
            Self.asset(DashboardAssets.stylesheet, contentType: "text/css; charset=utf-8")
        }
        router.get("assets/dashboard.js") { _, _ in
            Self.asset(DashboardAssets.script, contentType: "text/javascript; charset=utf-8")
        }
        router.get("api/status") { _, _ in
            ObservabilityServer.text(
                LiveStatusDocument(board.snapshot).json(), status: .ok, contentType: "application/json")
        }
        router.get("events") { request, _ in
            events.response(to: request) {
                board.updates().map { ServerSentEvent(name: "status", data: LiveStatusDocument($0).json()) }
            }
        }
        router.post("api/models/promote") { request, context in
            try await action(request, context) { body in
                let order = try DashboardActions.PromoteOrder(body)
                let transitions = try state.promote(
                    order.model, to: order.stage, by: Self.actor, reason: order.reason ?? "promoted on the dashboard")
                logger.notice("\(Self.actor) promoted \(order.model) to \(order.stage)")
                return transitions.map { "\($0.model) \($0.from) → \($0.to)" }.joined(separator: "; ")
            }
        }
        router.post("api/experiments/:id/cancel") { request, context in
            try await action(request, context) { _ in
                guard let id = context.parameters.get("id").flatMap(Int64.init) else {
                    throw DashboardActions.Refusal(.badRequest, "an experiment id is a number")
                }
                let record = try state.cancel(id, by: Self.actor)
                onChange(record)
                logger.notice("\(Self.actor) cancelled experiment \(record.id) (\(record.name))")
                return "experiment \(record.id) (\(record.name)) is \(record.status)"
            }
        }
    }

    private func overview() throws -> DashboardOverview {
        try DashboardOverview(state: state, live: board.snapshot, now: now(), actionsEnabled: token != nil)
    }

    /// A page, or 404 for an unknown experiment, or 500 (logged) when the state cannot be read.
    private func render(_ body: () throws -> Response) throws -> Response {
        do {
            return try body()
        } catch let error as StateError where error.code == .notFound {
            // The state's message names its folder, which a reader of the dashboard need not know.
            return ObservabilityServer.text("not found\n", status: .notFound)
        } catch {
            logger.error("dashboard: cannot read the state: \(error)")
            return ObservabilityServer.text("cannot read the coordinator's state\n", status: .internalServerError)
        }
    }

    /// Runs an operator action once the request passed every check, in this order: actions on
    /// (403), same origin (403), the token (401), a bounded body (413). The answer is one line.
    private func action(
        _ request: Request, _ context: BasicRequestContext, _ perform: (ByteBuffer) throws -> String
    ) async throws -> Response {
        do {
            try DashboardActions.admit(
                token: token, origin: request.headers[.origin], host: request.head.authority,
                fetchSite: request.headers[HTTPField.Name("Sec-Fetch-Site")!],
                authorization: request.headers[.authorization])
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: DashboardActions.maximumBodyBytes)
            } catch {
                throw DashboardActions.Refusal(
                    .contentTooLarge, "an action's body has at most \(DashboardActions.maximumBodyBytes) bytes")
            }
            return ObservabilityServer.text(try perform(body) + "\n", status: .ok)
        } catch let refusal as DashboardActions.Refusal {
            var response = ObservabilityServer.text(refusal.message + "\n", status: refusal.status)
            if refusal.status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer realm=\"tessera\"" }
            return response
        } catch let error as StateError {
            let status: HTTPResponse.Status = error.code == .notFound ? .notFound : .conflict
            return ObservabilityServer.text(error.message + "\n", status: status)
        } catch let error as RegistryError {
            let status: HTTPResponse.Status = error.code == .notFound ? .notFound : .conflict
            return ObservabilityServer.text(error.message + "\n", status: status)
        }
    }

    static func html(_ text: String) -> Response {
        var response = ObservabilityServer.text(text, status: .ok, contentType: "text/html; charset=utf-8")
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return response
    }

    static func asset(_ text: String, contentType: String) -> Response {
        var response = ObservabilityServer.text(text, status: .ok, contentType: contentType)
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return response
    }
}
