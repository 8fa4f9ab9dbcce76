import Foundation
import Synchronization
import TesseraFederation
import TesseraState
import TesseraTesting
import TesseraTransport
import Testing

@testable import TesseraCoordinator

/// The HTTP port over real loopback (127.0.0.1, port 0): probes, `/metrics`, the dashboard's
/// pages, its event stream and its operator actions, and the bounds a stranger meets.
@Suite struct DashboardServerTests {
    static let exposition = "# TYPE tessera_rounds_completed_total counter\ntessera_rounds_completed_total 1\n"

    struct Running {
        var port: Int
        var fixture: DashboardFixture
        var board: LiveRoundBoard
        var ready: Ready

        func get(_ path: String, headers: [(String, String)] = []) async throws -> LoopbackHTTPResponse {
            try await LoopbackHTTPConnection.with(port: port) { connection in
                try await connection.send("GET", path, headers: headers)
                return try await connection.response()
            }
        }

        func post(_ path: String, headers: [(String, String)] = [], body: String) async throws -> LoopbackHTTPResponse {
            try await LoopbackHTTPConnection.with(port: port) { connection in
                try await connection.send(
                    "POST", path, headers: [("Content-Type", "application/json")] + headers, body: body)
                return try await connection.response()
            }
        }
    }

    final class Ready: Sendable {
        let value = Mutex(false)
    }

    func withDashboard(
        token: OperatorToken? = nil, _ body: (Running) async throws -> Void
    ) async throws {
        let fixture = try DashboardFixture()
        defer { fixture.remove() }
        let board = LiveRoundBoard()
        let ready = Ready()
        let dashboard = Dashboard(state: fixture.state, board: board, token: token, logger: testLogger())
        let server = ObservabilityServer(
            endpoint: Endpoint(host: "127.0.0.1", port: 0), metrics: { Self.exposition },
            readiness: { ready.value.withLock { $0 } ? .ready : .notReady("no gRPC server\nis listening") },
            routes: dashboard.routes)
        try await server.run(logger: testLogger()) { port in
            try await body(Running(port: port, fixture: fixture, board: board, ready: ready))
        }
    }

    @Test func theProbesAnswerAndMetricsComeInThePrometheusTextFormat() async throws {
        try await withDashboard { server in
            let health = try await server.get("/healthz")
            #expect(health.status == 200)
            #expect(health.body == "ok\n")

            let unready = try await server.get("/readyz")
            #expect(unready.status == 503)
            #expect(unready.body == "no gRPC server is listening\n")
            server.ready.value.withLock { $0 = true }
            let ready = try await server.get("/readyz")
            #expect(ready.status == 200)

            let metrics = try await server.get("/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(metrics.body == Self.exposition)

            let unknown = try await server.get("/nothing-here")
            #expect(unknown.status == 404)
            let head = try await LoopbackHTTPConnection.with(port: server.port) { connection in
                try await connection.send("HEAD", "/healthz")
                try await connection.read(until: { _ in false })
                return connection.received
            }
            #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
            #expect(!head.contains("\r\n\r\nok"), "\(head)")
        }
    }

    @Test func thePagesAreServedWithAPolicyThatForbidsInlineScripts() async throws {
        try await withDashboard { server in
            let page = try await server.get("/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.headers["content-security-policy"]?.contains("script-src 'self'") == true)
            #expect(page.headers["x-frame-options"] == "DENY")
            #expect(page.body.contains("data-site=\"clinic-a\""))
            #expect(page.body.contains("trial@1.0.1"))

            let experiment = try await server.get("/experiments/\(server.fixture.experiment.id)")
            #expect(experiment.status == 200)
            #expect(experiment.body.contains("<svg"))
            let missing = try await server.get("/experiments/999")
            #expect(missing.status == 404)
            let notANumber = try await server.get("/experiments/abc")
            #expect(notANumber.status == 400)

            let script = try await server.get("/assets/dashboard.js")
            #expect(script.headers["content-type"] == "text/javascript; charset=utf-8")
            #expect(script.body.contains("new EventSource(\"/events\")"))
            let status = try await server.get("/api/status")
            #expect(status.body.contains("\"phase\":\"idle\""))
        }
    }

    @Test func aStrangerMeetsBoundsOnHeadersAndBodies() async throws {
        try await withDashboard(token: try OperatorToken("right")) { server in
            let big = String(repeating: "a", count: 20_000)
            let header = try await LoopbackHTTPConnection.with(port: server.port) { connection in
                try await connection.send("GET", "/healthz", headers: [("X-Big", big)])
                try await connection.read(until: { _ in false })
                return connection.received
            }
            // Refused before any route runs: an error status, or the connection closed at once.
            #expect(!header.contains("\r\n\r\nok"))
            let body = try await server.post(
                "/api/models/promote", headers: [("Authorization", "Bearer right")],
                body: String(repeating: "x", count: 5000))
            #expect(body.status == 413)
        }
    }

    @Test func actionsAreForbiddenWhenNoTokenFileWasGiven() async throws {
        try await withDashboard { server in
            let promote = try await server.post(
                "/api/models/promote", headers: [("Authorization", "Bearer anything")],
                body: #"{"model": "trial@1.0.1", "stage": "production"}"#)
            #expect(promote.status == 403)
            #expect(promote.body.contains("read-only"))
            let cancel = try await server.post(
                "/api/experiments/\(server.fixture.experiment.id)/cancel", headers: [("Authorization", "Bearer x")],
                body: "{}")
            #expect(cancel.status == 403)
            let model = try server.fixture.state.model(try ModelReference(parsing: "trial@1.0.1"))
            #expect(model.stage == .candidate)
            #expect(try server.fixture.state.experiment(server.fixture.experiment.id).status == .running)
        }
    }

    @Test func theOperatorTokenPromotesAndCancelsAndTheAuditTrailNamesTheDashboard() async throws {
        try await withDashboard(token: try OperatorToken("the-operator-token")) { server in
            let order = #"{"model": "trial@1.0.1", "stage": "production", "reason": "best so far"}"#
            let missing = try await server.post("/api/models/promote", body: order)
            #expect(missing.status == 401)
            #expect(missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            let wrong = try await server.post(
                "/api/models/promote", headers: [("Authorization", "Bearer the-operator-tokeX")], body: order)
            #expect(wrong.status == 401)
            let crossSite = try await server.post(
                "/api/models/promote",
                headers: [("Authorization", "Bearer the-operator-token"), ("Origin", "http://evil.example")],
                body: order)
            #expect(crossSite.status == 403)
            let reference = try ModelReference(parsing: "trial@1.0.1")
            #expect(try server.fixture.state.model(reference).stage == .candidate)

            let promoted = try await server.post(
                "/api/models/promote",
                headers: [
                    ("Authorization", "Bearer the-operator-token"), ("Origin", "http://127.0.0.1"),
                ],
                body: order)
            #expect(promoted.status == 200, "\(promoted.body)")
            #expect(try server.fixture.state.model(reference).stage == .production)
            let trail = try server.fixture.state.transitions(of: reference)
            #expect(trail.last?.actor == "operator:dashboard")
            #expect(trail.last?.reason == "best so far")

            let again = try await server.post(
                "/api/models/promote", headers: [("Authorization", "Bearer the-operator-token")], body: order)
            #expect(again.status == 409)
            let garbage = try await server.post(
                "/api/models/promote", headers: [("Authorization", "Bearer the-operator-token")], body: "{")
            #expect(garbage.status == 400)

            let id = server.fixture.experiment.id
            let cancelled = try await server.post(
                "/api/experiments/\(id)/cancel", headers: [("Authorization", "Bearer the-operator-token")], body: "{}")
            #expect(cancelled.status == 200, "\(cancelled.body)")
            #expect(try server.fixture.state.experiment(id).status == .cancelled)
            let log = try server.fixture.state.logs(of: id).map(\.line)
            #expect(log.contains { $0.contains("cancelled by operator:dashboard") })
        }
    }

    /// A change of the live status reaches an open `/events` stream as a `status` event, its
    /// strings JSON-escaped.
    @Test func theEventStreamDeliversEachChangeOfTheLiveStatus() async throws {
        try await withDashboard { server in
            try await LoopbackHTTPConnection.with(port: server.port) { connection in
                try await connection.send("GET", "/events")
                // The snapshot at subscription comes first.
                try await connection.read { $0.contains("\"phase\":\"idle\"") }
                #expect(connection.received.lowercased().contains("content-type: text/event-stream"))
                server.board.begin(experiment: 3, name: "quote\" <b>")
                let status = LiveRoundStatus(
                    phase: .running, round: 4, completedRounds: 3, roundsPlanned: 9,
                    modelVersion: ModelVersion(major: 1, minor: 0, patch: 3), connectedSites: 5,
                    stage: StageProgress(
                        round: 4, attempt: 0, stage: .maskedInput, cohortSize: 5, asked: 5, answered: 2, dropouts: 1,
                        stageStartedAt: 10, stageDeadline: 70))
                server.board.publish(status, now: 12)
                let arrived = try await connection.read { $0.contains("\"stage\":\"masked_input\"") }
                #expect(arrived)
                let received = connection.received
                #expect(received.contains("event: status\ndata: {"))
                #expect(received.contains("\"answered\":2"))
                #expect(received.contains("\"experiment_name\":\"quote\\\" <b>\""))
            }
        }
    }

    @Test func oneEventStreamMoreThanTheCapIsRefused() async throws {
        try await withDashboard { server in
            let maximum = ObservabilityServer.Limits().maximumEventStreams
            #expect(maximum == 32)
            func hold(_ open: Int) async throws -> LoopbackHTTPResponse {
                guard open < maximum else {
                    return try await server.get("/events")
                }
                return try await LoopbackHTTPConnection.with(port: server.port) { connection in
                    try await connection.send("GET", "/events")
                    try await connection.read { $0.contains(": open") }
                    return try await hold(open + 1)
                }
            }
            let refused = try await hold(0)
            #expect(refused.status == 503)
            #expect(refused.body.contains("at most 32"))
            // Once those streams are closed, their slots free (as the server sees each close).
            var admitted = false
            for _ in 0..<500 where !admitted {
                admitted = try await LoopbackHTTPConnection.with(port: server.port) { connection in
                    try await connection.send("GET", "/events")
                    try await connection.read { $0.contains(": open") || $0.contains(" 503 ") }
                    return connection.received.contains(" 200 ")
                }
                await Task.yield()
            }
            #expect(admitted)
        }
    }

    @Test func theCoordinatorIsReadyWhileAGRPCServerListens() {
        let readiness = CoordinatorReadiness()
        #expect(readiness.readiness != .ready)
        readiness.participantsListening(true)
        #expect(readiness.readiness == .ready)
        readiness.participantsListening(false)
        readiness.researchersListening(true)
        #expect(readiness.readiness == .ready)
    }
}
