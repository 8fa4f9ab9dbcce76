import Foundation
import HTTPTypes
import NIOCore
import TesseraFederation

/// The rules of the dashboard's state-changing actions, apart from the HTTP plumbing so they
/// are tested alone.
enum DashboardActions {
    /// The largest body an action reads.
    static let maximumBodyBytes = 4096

    /// An action refused before it changed anything, with the status and the one line to answer.
    struct Refusal: Error {
        var status: HTTPResponse.Status
        var message: String

        init(_ status: HTTPResponse.Status, _ message: String) {
            self.status = status
            self.message = message
        }

        /// The status code (200-599).
        var code: Int { status.code }
    }

    /// Admits an action, or says why not: actions must be on (a token file was given), the
    /// request must come from a page of this server (an `Origin`, when sent, naming this host,
    /// and no cross-site fetch), and it must carry the operator's bearer token.
    static func admit(
        token: OperatorToken?, origin: String?, host: String?, fetchSite: String?, authorization: String?
    ) throws(Refusal) {
        guard let token else {
            throw Refusal(
                .forbidden,
                "the dashboard is read-only: start tessera-coordinator with --dashboard-token-file to allow actions")
        }
        if let origin {
            guard let host, origin == "http://\(host)" || origin == "https://\(host)" else {
                throw Refusal(.forbidden, "refused: the request comes from another site (Origin \(origin))")
            }
        }
        if let fetchSite, fetchSite != "same-origin", fetchSite != "none" {
            throw Refusal(.forbidden, "refused: the request comes from another site (Sec-Fetch-Site \(fetchSite))")
        }
        guard authorization != nil else {
            throw Refusal(.unauthorized, "an action needs the operator token: Authorization: Bearer <token>")
        }
        guard token.accepts(authorization: authorization) else {
            throw Refusal(.unauthorized, "the operator token is wrong")
        }
    }

    /// `{"model": "NAME@VERSION", "stage": "production", "reason": "…"}`.
    struct PromoteOrder: Sendable {
        var model: ModelReference
        var stage: ModelStage
        var reason: String?

        private struct Body: Decodable {
            var model: String
            var stage: String
            var reason: String?
        }

        init(_ buffer: ByteBuffer) throws(Refusal) {
            let body: Body
            do {
                body = try JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView))
            } catch {
                throw Refusal(
                    .badRequest,
                    "a promotion is JSON {\"model\": \"NAME@VERSION\", \"stage\": \"staging|production|archived\"}")
            }
            do {
                model = try ModelReference(parsing: body.model)
                stage = try ModelStage(parsing: body.stage)
            } catch {
                throw Refusal(.badRequest, error.message)
            }
            reason = body.reason.map { String($0.prefix(200)) }
        }
    }
}
