public import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
public import TesseraTransport

extension CoordinatorService {
    /// Serves this coordinator over HTTP/2 with mTLS on `endpoint` (port 0 picks a free port)
    /// for the duration of `body`, which receives the bound port. Client certificates are
    /// required and must chain to `caCertificate`.
    public nonisolated func withServer<Result: Sendable>(
        listeningOn endpoint: TesseraTransport.Endpoint, identityDirectory: URL, caCertificate: URL,
        _ body: (_ port: Int) async throws -> Result
    ) async throws -> Result {
        let address: GRPCNIOTransportCore.SocketAddress =
            endpoint.host.contains(":")
            ? .ipv6(host: endpoint.host, port: endpoint.port) : .ipv4(host: endpoint.host, port: endpoint.port)
        let transport = HTTP2ServerTransport.Posix(
            address: address,
            transportSecurity: FederationTLS.server(identityDirectory: identityDirectory, caCertificate: caCertificate),
            config: .defaults { config in
                config.http2.maxFrameSize = HTTP2Tuning.coordinatorMaximumFrameBytes
                config.http2.targetWindowSize = HTTP2Tuning.coordinatorWindowBytes
                // The transport's hook for an accepted connection, run once gRPC has set up its
                // pipeline: the only place to reach TLS and HTTP/2 (see ConnectionBuffers).
                config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    ConnectionBuffers.install(on: channel, maximumFrameBytes: HTTP2Tuning.coordinatorMaximumFrameBytes)
                }
            })
        return try await withGRPCServer(transport: transport, services: services) { _ in
            let bound = try await transport.listeningAddress
            let port = bound.ipv4?.port ?? bound.ipv6?.port ?? endpoint.port
            return try await body(port)
        }
    }
}
