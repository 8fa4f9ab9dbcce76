public import Foundation
import GRPCCore
public import GRPCNIOTransportHTTP2

/// TLS settings for the federation: both ends present a certificate from the federation CA and
/// trust only that CA.
public enum FederationTLS {
    /// The coordinator's listener: its certificate and key from `identityDirectory` (`cert.pem`,
    /// `key.pem`), client certificates **required** and verified against `caCertificate`.
    public static func server(
        identityDirectory: URL, caCertificate: URL
    ) -> HTTP2ServerTransport.Posix.TransportSecurity {
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
    ///
    /// - Parameter configure: further settings (a site's own check of the coordinator's
    ///   certificate goes in here).
    public static func client(
        certificate: URL, privateKey: URL, caCertificate: URL,
        configure: (inout HTTP2ClientTransport.Posix.TransportSecurity.TLS) -> Void = { _ in }
    ) -> HTTP2ClientTransport.Posix.TransportSecurity {
        .mTLS(
            certificateChain: [.file(path: certificate.path, format: .pem)],
            privateKey: .file(path: privateKey.path, format: .pem)
        ) { tls in
            tls.trustRoots = .certificates([.file(path: caCertificate.path, format: .pem)])
            tls.serverCertificateVerification = .fullVerification
            configure(&tls)
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
