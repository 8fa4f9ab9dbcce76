public import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
public import TesseraTransport

extension CoordinatorService {
    /// Serves this coordinator over HTTP/2 with mTLS on `endpoint` (port 0 picks a free port)
    /// for the duration of `body`, which receives the bound port. Client certificates are
    /// required and must chain to `caCertificate`. Every accepted connection passes
    /// ``connections`` first, and HTTP/2 holds the limits of ``Configuration/limits``.
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
                config.apply(configuration.limits, maximumChunkBytes: configuration.maximumChunkBytes)
                // The transport's hook for an accepted connection, run once gRPC has set up its
                // pipeline: the only place to reach TLS and HTTP/2 (see ConnectionBuffers). The
                // gate goes first, so a refused connection is closed before it costs more.
                let gate = connections
                config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    gate.install(on: channel).flatMap {
                        ConnectionBuffers.install(
                            on: channel, maximumFrameBytes: HTTP2Tuning.coordinatorMaximumFrameBytes)
                    }
                }
            })
        return try await withGRPCServer(transport: transport, services: services) { _ in
            let bound = try await transport.listeningAddress
            let port = bound.ipv4?.port ?? bound.ipv6?.port ?? endpoint.port
            return try await body(port)
        }
    }
}

extension HTTP2ServerTransport.Posix.Config {
    /// The coordinator's HTTP/2 settings: its memory-bound frame and window sizes
    /// (``HTTP2Tuning``) and the connection, stream and message limits of `limits`.
    mutating func apply(_ limits: CoordinatorLimits, maximumChunkBytes: Int) {
        http2.maxFrameSize = HTTP2Tuning.coordinatorMaximumFrameBytes
        http2.targetWindowSize = HTTP2Tuning.coordinatorWindowBytes
        http2.maxConcurrentStreams = limits.maximumStreamsPerConnection
        rpc.maxRequestPayloadSize = limits.effectiveMaximumMessageBytes(maximumChunkBytes: maximumChunkBytes)
        connection.maxIdleTime = limits.idleTimeout
        // Sessions live as long as the experiment: no maximum age.
        connection.maxAge = nil
        connection.keepalive = .init(
            time: limits.keepaliveInterval, timeout: limits.keepaliveTimeout,
            clientBehavior: .init(
                minPingIntervalWithoutCalls: limits.minimumClientPingInterval, allowWithoutCalls: true))
    }
}
