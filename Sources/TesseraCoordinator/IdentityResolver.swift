public import Foundation
public import GRPCCore
import GRPCNIOTransportHTTP2
public import TesseraFederation
public import TesseraPKI
public import TesseraTransport

/// Establishes which site opened a session stream.
///
/// The site is a property of the *connection*, never of a message: with mTLS it is the name in
/// the verified client certificate (see ``PeerCertificateIdentityResolver``). A resolver that
/// throws refuses the stream before any message is read.
public protocol IdentityResolver: Sendable {
    func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID
}

/// Identifies a site by the client certificate it presented in the mTLS handshake.
///
/// The TLS layer has already checked the chain against the federation CA; this checks it again
/// with TesseraPKI's ``PeerValidator`` (issuer, validity, client-auth usage) and, on every new
/// stream, against the CA's current revocation list, so a revocation takes effect on the next
/// connection without restarting the coordinator. The site name comes from the certificate.
public struct PeerCertificateIdentityResolver: IdentityResolver {
    public let validator: PeerValidator

    public init(validator: PeerValidator) {
        self.validator = validator
    }

    /// A resolver for the federation CA in `caDirectory` (`ca.pem`, `revoked.json`); the
    /// revocation list is re-read for every new stream.
    public init(caDirectory: URL) throws(TesseraRuntimeError) {
        do {
            let ca = try PEMFile.loadCertificate(
                from: caDirectory.appendingPathComponent(FederationCA.certificateFileName))
            self.validator = PeerValidator(
                caCertificate: ca, revocationList: caDirectory.appendingPathComponent(FederationCA.revokedFileName))
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot load the federation CA from \(caDirectory.path)", cause: error)
        }
    }

    public func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID {
        guard let tls = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let certificate = tls.peerCertificate
        else {
            throw TesseraRuntimeError(
                .unauthenticated, "the peer presented no client certificate; sessions require mTLS.")
        }
        do {
            // In a child task: a task keeps the memory its frames once took until it ends, and the
            // session's task lives as long as the session.
            let validator = validator
            return try await withThrowingTaskGroup(of: SiteID.self) { group in
                group.addTask { try await validator.validate(leaf: certificate) }
                return try await group.next()!
            }
        } catch {
            throw TesseraRuntimeError(.unauthenticated, "the client certificate was refused: \(error)")
        }
    }
}
