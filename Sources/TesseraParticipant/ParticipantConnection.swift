public import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
public import TesseraTransport

/// The site's own check of the coordinator's certificate chain (DER, leaf first) for the host
/// it dialled: the federation's chain, the coordinator's role, and the site's revocation list.
/// Throws the reason to refuse the connection.
public typealias CoordinatorCertificateCheck = @Sendable (_ chain: [[UInt8]], _ host: String) async throws -> Void

/// How a participant secures its connection to the coordinator.
public enum ClientSecurity: Sendable {
    /// mTLS: present `certificate`/`privateKey`, trust only `caCertificate` (the federation CA).
    /// With `checkCoordinator`, that check replaces the TLS library's own verification of the
    /// coordinator's certificate: the site then also refuses a certificate of the wrong role or
    /// one its revocation list names.
    case mutualTLS(
        certificate: URL, privateKey: URL, caCertificate: URL, checkCoordinator: CoordinatorCertificateCheck? = nil)
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

    func transportSecurity(host: String) -> HTTP2ClientTransport.Posix.TransportSecurity {
        switch self {
        case .mutualTLS(let certificate, let privateKey, let ca, let check):
            return FederationTLS.client(certificate: certificate, privateKey: privateKey, caCertificate: ca) { tls in
                if let check { tls.customVerificationCallback = Self.verification(check, host: host) }
            }
        case .serverAuthenticatedTLS(let ca):
            return .tls { $0.trustRoots = .certificates([.file(path: ca.path, format: .pem)]) }
        }
    }

    /// The TLS callback around `check`. NIOSSL asks for the answer on a promise from inside the
    /// handshake, so the check runs in a task of its own; the handshake waits for it.
    private static func verification(
        _ check: @escaping CoordinatorCertificateCheck, host: String
    ) -> @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
        { certificates, promise in
            let chain = certificates.compactMap { try? $0.toDERBytes() }
            Task {
                do {
                    guard chain.count == certificates.count, !certificates.isEmpty else {
                        throw TesseraRuntimeError(.sessionRefused, "the coordinator's certificate chain does not parse")
                    }
                    try await check(chain, host)
                    promise.succeed(.certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
                } catch {
                    promise.succeed(.failed)
                }
            }
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
        let keepalive = configuration.keepaliveInterval.map {
            HTTP2ClientTransport.Config.Keepalive(
                time: $0, timeout: configuration.keepaliveTimeout, allowWithoutCalls: false)
        }
        do {
            transport = try HTTP2ClientTransport.Posix(
                target: target, transportSecurity: security.transportSecurity(host: endpoint.host),
                config: .defaults { config in
                    config.http2.maxFrameSize = HTTP2Tuning.participantMaximumFrameBytes
                    config.http2.targetWindowSize = HTTP2Tuning.participantWindowBytes
                    // HTTP/2 PINGs find a dead connection (a coordinator host that vanished
                    // without a FIN) while the session waits for the next message.
                    config.connection.keepalive = keepalive
                })
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot set up the TLS connection to \(endpoint)", cause: error)
        }
        try await withBoundedShutdown(of: GRPCClient(transport: transport)) { client in
            try await run(using: client)
        }
    }

    /// Runs `body` with `client`'s connections up, then closes them gracefully, but for at most
    /// ``Configuration/shutdownGrace``: a connection stuck reconnecting to a coordinator that has
    /// gone must not keep a site that is done from exiting.
    private func withBoundedShutdown<Transport: ClientTransport>(
        of client: GRPCClient<Transport>, _ body: (GRPCClient<Transport>) async throws -> Void
    ) async throws {
        let clock = clock
        let grace = configuration.shutdownGrace
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.runConnections() }
            let failure: (any Error)?
            do {
                try await body(client)
                failure = nil
            } catch {
                failure = error
            }
            client.beginGracefulShutdown()
            group.addTask { try await clock.sleep(for: grace) }
            // The connections closed, or the grace passed (then they are cancelled).
            _ = try? await group.next()
            group.cancelAll()
            if let failure { throw failure }
        }
    }
}
