public import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
public import TesseraTransport

/// How a participant secures its connection to the coordinator.
public enum ClientSecurity: Sendable {
    /// mTLS: present `certificate`/`privateKey`, trust only `caCertificate` (the federation CA).
    case mutualTLS(certificate: URL, privateKey: URL, caCertificate: URL)
    /// TLS without a client certificate. The coordinator refuses such sessions; this exists so
    /// tests and diagnostics can show that it does.
    case serverAuthenticatedTLS(caCertificate: URL)

    /// mTLS from an identity directory (`cert.pem`, `key.pem`, `ca.pem`).
    public static func identityDirectory(_ directory: URL) -> ClientSecurity {
        .mutualTLS(
            certificate: directory.appendingPathComponent("cert.pem"),
            privateKey: directory.appendingPathComponent("key.pem"),
            caCertificate: directory.appendingPathComponent("ca.pem"))
    }

    var transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity {
        switch self {
        case .mutualTLS(let certificate, let privateKey, let ca):
            FederationTLS.client(certificate: certificate, privateKey: privateKey, caCertificate: ca)
        case .serverAuthenticatedTLS(let ca):
            .tls { $0.trustRoots = .certificates([.file(path: ca.path, format: .pem)]) }
        }
    }
}

extension ParticipantClient {
    /// Connects to the coordinator at `endpoint` over HTTP/2 + TLS and runs the session loop
    /// (reconnecting as configured) until the coordinator ends it.
    public func run(connectingTo endpoint: TesseraTransport.Endpoint, security: ClientSecurity) async throws {
        if endpoint.isIPv6Literal {
            try await run(
                target: .ipv6(address: endpoint.host, port: endpoint.port), endpoint: endpoint, security: security)
        } else if endpoint.isIPv4Literal {
            try await run(
                target: .ipv4(address: endpoint.host, port: endpoint.port), endpoint: endpoint, security: security)
        } else {
            try await run(
                target: .dns(host: endpoint.host, port: endpoint.port), endpoint: endpoint, security: security)
        }
    }

    private func run(
        target: some ResolvableTarget, endpoint: TesseraTransport.Endpoint, security: ClientSecurity
    ) async throws {
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try HTTP2ClientTransport.Posix(
                target: target, transportSecurity: security.transportSecurity,
                config: .defaults { config in
                    config.http2.maxFrameSize = HTTP2Tuning.participantMaximumFrameBytes
                    config.http2.targetWindowSize = HTTP2Tuning.participantWindowBytes
                })
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot set up the TLS connection to \(endpoint)", cause: error)
        }
        try await withGRPCClient(transport: transport) { client in
            try await run(using: client)
        }
    }
}
