import Foundation
import Logging
import Synchronization
import TesseraState
public import TesseraTransport

/// What `/readyz` of the coordinator answers: ready while the state is open and a gRPC server
/// listens, for the sites (an experiment runs) or for researchers (`--api-listen`, waiting for
/// submissions). Between the two, and before either, it is not ready.
public final class CoordinatorReadiness: Sendable {
    private let listening = Mutex((participants: false, researchers: false))

    public init() {}

    func participantsListening(_ value: Bool) { listening.withLock { $0.participants = value } }
    func researchersListening(_ value: Bool) { listening.withLock { $0.researchers = value } }

    public var readiness: ObservabilityServer.Readiness {
        let now = listening.withLock { $0 }
        if now.participants || now.researchers { return .ready }
        return .notReady("no gRPC server is listening yet: the coordinator is starting, or between experiments")
    }
}

extension CoordinatorProgram {
    /// Runs `body` with the HTTP port (`--http`) open around it when one is given: `/metrics`,
    /// the probes and the dashboard over `state`. The port stays open across experiments.
    func withHTTP<Result: Sendable>(
        state: CoordinatorState, token: OperatorToken?, logger: Logger, _ body: () async throws -> Result
    ) async throws -> Result {
        guard let httpListen else { return try await body() }
        let dashboard = Dashboard(state: state, board: liveBoard, token: token, logger: logger)
        let readiness = readiness
        let server = ObservabilityServer(
            endpoint: httpListen, metrics: metrics.exposition, readiness: { readiness.readiness },
            routes: dashboard.routes)
        logger.info(
            "dashboard: \(token == nil ? "read-only (no --dashboard-token-file)" : "actions allowed with the operator token")"
        )
        return try await server.run(logger: logger) { port in
            onHTTPListening(port)
            return try await body()
        }
    }

    /// The operator token of `--dashboard-token-file`, read before anything starts.
    func loadDashboardToken() throws -> OperatorToken? {
        guard let dashboardTokenFile else { return nil }
        guard httpListen != nil else {
            throw TesseraRuntimeError(
                .invalidConfiguration, "--dashboard-token-file needs --http: the dashboard is served on that port")
        }
        return try OperatorToken(file: dashboardTokenFile)
    }
}
