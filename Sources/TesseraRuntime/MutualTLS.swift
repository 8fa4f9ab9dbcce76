import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import TesseraFederation
import TesseraPKI
import X509

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
            let ca = try PEMFile.loadCertificate(from: caDirectory.appendingPathComponent(FederationCA.certificateFileName))
            self.validator = PeerValidator(
                caCertificate: ca, revocationList: caDirectory.appendingPathComponent(FederationCA.revokedFileName))
        } catch {
            throw TesseraRuntimeError(.invalidConfiguration, "cannot load the federation CA from \(caDirectory.path)", cause: error)
        }
    }

    public func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID {
        guard let tls = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let certificate = tls.peerCertificate
        else {
            throw TesseraRuntimeError(.unauthenticated, "the peer presented no client certificate; sessions require mTLS.")
        }
        do {
            // In a child task: path validation's async frames take about 36 KB, and a task keeps
            // the memory its frames once took until it ends, which for the session's task is the
            // session's whole life (3.6 MB with 100 sites, heaptrack on the runtime benchmark).
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

/// TLS settings for the federation: both ends present a certificate from the federation CA and
/// trust only that CA.
public enum FederationTLS {
    /// The coordinator's listener: its certificate and key from `identityDirectory` (`cert.pem`,
    /// `key.pem`), client certificates **required** and verified against `caCertificate`.
    public static func server(identityDirectory: URL, caCertificate: URL) -> HTTP2ServerTransport.Posix.TransportSecurity {
        .mTLS(
            certificateChain: [.file(path: identityDirectory.appendingPathComponent("cert.pem").path, format: .pem)],
            privateKey: .file(path: identityDirectory.appendingPathComponent("key.pem").path, format: .pem)
        ) { tls in
            tls.trustRoots = .certificates([.file(path: caCertificate.path, format: .pem)])
            // Verifies the chain and fails the handshake when the client sends no certificate.
            tls.clientCertificateVerification = .noHostnameVerification
        }
    }

    /// A site's connection: its certificate and key, and the federation CA as the only trust
    /// root; the coordinator's certificate must name the address dialled.
    public static func client(certificate: URL, privateKey: URL, caCertificate: URL) -> HTTP2ClientTransport.Posix.TransportSecurity {
        .mTLS(
            certificateChain: [.file(path: certificate.path, format: .pem)],
            privateKey: .file(path: privateKey.path, format: .pem)
        ) { tls in
            tls.trustRoots = .certificates([.file(path: caCertificate.path, format: .pem)])
            tls.serverCertificateVerification = .fullVerification
        }
    }

    /// A site's connection from an identity directory (`cert.pem`, `key.pem`, `ca.pem`).
    public static func client(identityDirectory: URL) -> HTTP2ClientTransport.Posix.TransportSecurity {
        client(
            certificate: identityDirectory.appendingPathComponent("cert.pem"),
            privateKey: identityDirectory.appendingPathComponent("key.pem"),
            caCertificate: identityDirectory.appendingPathComponent("ca.pem"))
    }
}
