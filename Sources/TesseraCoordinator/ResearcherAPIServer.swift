public import Foundation
public import GRPCCore
import GRPCNIOTransportHTTP2
public import Logging
public import TesseraFederation
public import TesseraPKI
public import TesseraState
public import TesseraTransport
import TesseraWire

/// Reads a researcher's or operator's identity from its client certificate (chain to the
/// federation CA, dates, revocation, then the role marks): the researcher API's only source of
/// who is asking. The identity is `ROLE:NAME`; a site or coordinator certificate gets
/// `site:NAME` / `coordinator:NAME`, which ``authorize(_:)`` refuses.
public struct RoleIdentityResolver: IdentityResolver {
    public let validator: PeerValidator

    public init(validator: PeerValidator) {
        self.validator = validator
    }

    public func site(metadata: Metadata, context: ServerContext) async throws(TesseraRuntimeError) -> SiteID {
        try await peer(metadata: metadata, context: context).site
    }

    public func peer(
        metadata: Metadata, context: ServerContext
    ) async throws(TesseraRuntimeError) -> TesseraCoordinator.PeerIdentity {
        guard let tls = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let certificate = tls.peerCertificate
        else {
            throw TesseraRuntimeError(
                .unauthenticated, "the peer presented no client certificate; the API requires mTLS.")
        }
        do {
            let peer = try await validator.identify(chain: [certificate])
            return TesseraCoordinator.PeerIdentity(site: "\(peer.role.rawValue):\(peer.name)")
        } catch {
            throw TesseraRuntimeError(.unauthenticated, "the client certificate was refused: \(error)")
        }
    }

    /// The role an identity from ``peer(metadata:context:)`` has in the researcher API: only
    /// researcher and operator certificates get one.
    public static func authorize(_ peer: TesseraCoordinator.PeerIdentity) -> ExperimentsRole? {
        let parts = peer.site.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty else { return nil }
        switch parts[0] {
        case PeerRole.researcher.rawValue: return .researcher(parts[1])
        case PeerRole.operator.rawValue: return .operator(parts[1])
        default: return nil
        }
    }
}

/// The researcher API (`tessera submit`, `tessera experiments … --coordinator`) served on its
/// own port for the coordinator's whole lifetime, apart from the sites' sessions: it stays up
/// between experiments, and an operator can expose it to researchers without exposing the
/// session port, or the reverse.
public enum ResearcherAPIServer {
    /// Serves the API on `endpoint` with mTLS for the duration of `body`, which receives the
    /// bound port. `onChange` hears every experiment queued or cancelled through it.
    public static func with<Result: Sendable>(
        listeningOn endpoint: TesseraTransport.Endpoint, identityDirectory: URL, trust: TrustFolder,
        state: CoordinatorState, logger: Logger, onChange: @escaping @Sendable (ExperimentRecord) -> Void,
        _ body: (_ port: Int) async throws -> Result
    ) async throws -> Result {
        let service = ExperimentsAPIService(
            state: state, identity: RoleIdentityResolver(validator: trust.peerValidator()),
            authorize: RoleIdentityResolver.authorize, logger: logger, onChange: onChange)
        let address: GRPCNIOTransportCore.SocketAddress =
            endpoint.host.contains(":")
            ? .ipv6(host: endpoint.host, port: endpoint.port) : .ipv4(host: endpoint.host, port: endpoint.port)
        let transport = HTTP2ServerTransport.Posix(
            address: address,
            transportSecurity: FederationTLS.server(
                identityDirectory: identityDirectory, caCertificate: trust.caCertificateURL),
            config: .defaults { config in
                // Room for the largest experiment file and its framing.
                config.rpc.maxRequestPayloadSize = ExperimentsAPILimits.maximumConfigBytes + 64 * 1024
                config.connection.maxIdleTime = .seconds(60)
            })
        return try await withGRPCServer(transport: transport, services: [service]) { _ in
            let bound = try await transport.listeningAddress
            let port = bound.ipv4?.port ?? bound.ipv6?.port ?? endpoint.port
            return try await body(port)
        }
    }
}
