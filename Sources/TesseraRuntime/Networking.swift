import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import TesseraWire

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
            certificate: directory.appendingPathComponent("cert.pem"), privateKey: directory.appendingPathComponent("key.pem"),
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

/// A host and port, parsed from `HOST:PORT` (IPv6 in brackets: `[::1]:7070`).
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(TesseraRuntimeError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else {
            throw TesseraRuntimeError(.invalidConfiguration, "\"\(text)\" is not HOST:PORT (for example 127.0.0.1:7070).")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else {
            throw TesseraRuntimeError(.invalidConfiguration, "\"\(text)\" has no host (for example 127.0.0.1:7070).")
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    var isIPv4Literal: Bool { host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." } }
}

/// HTTP/2 settings of both ends (grpc-swift's defaults are 16 KiB frames, a 64 KiB window at
/// the server and an 8 MiB one at the client).
///
/// The coordinator's settings bound what it buffers per connected participant, which is what
/// keeps its memory flat in the number of participants (the runtime benchmark measures it);
/// the participant's favour throughput, since it has one connection.
///
/// What the bound costs, measured on the runtime benchmark with every bound lifted at once
/// (1 MiB chunks, 1 MiB frames, 4 MiB windows at the coordinator, no ``ConnectionBuffers``):
/// plain rounds of 103–108 ms against 156–183 with these settings, secure ones of 173 ms
/// against 256, but a coordinator peaking at 636 MB with 100 sites (133 MB with 10), against
/// about 114 and 89. Most of the growth is per connection, in buffers NIO, NIOSSL and gRPC keep
/// at the largest message or burst a connection has carried; 1 MiB model chunks alone took it
/// to 369 MB. So the defaults stay memory-bound.
enum HTTP2Tuning {
    /// The largest frame participants may send: the default. With ``ConnectionBuffers`` the
    /// frame decoder gets whole frames, so its buffer per connection follows the frame size. A
    /// trade-off, measured on the runtime benchmark: 64 KiB frames made rounds about 10 % faster
    /// (plain 166–181 ms, secure 249–271 ms against 186 and 289) but the coordinator's peak RSS
    /// with 100 sites about 20 MB larger (162–166 MB against 139–146); 32 KiB frames cost 7 MB.
    static let coordinatorMaximumFrameBytes = 1 << 14
    /// The coordinator's flow-control window per stream: how much a participant may have in
    /// flight to it: two chunk messages (128 KiB). It bounds what the coordinator buffers for a
    /// participant it is not reading from (an upload waiting for a slot): two chunks, not a
    /// model. With one chunk (64 KiB) a participant waited for a window update after every
    /// chunk it uploaded; measured on the runtime benchmark, secure rounds took 318–325 ms
    /// against 276–289 ms with two, for a peak RSS with 100 sites about 20 MB larger.
    static let coordinatorWindowBytes = 2 << 16
    /// The largest frame the coordinator may send a participant: a whole chunk and its envelope.
    static let participantMaximumFrameBytes = 2 * WireProtocol.defaultChunkBytes
    /// The participant's HTTP/2 window: the largest model window the store grants.
    static let participantWindowBytes = WireProtocol.maximumModelWindowBytes
}

extension CoordinatorService {
    /// Serves this coordinator over HTTP/2 with mTLS on `endpoint` (port 0 picks a free port)
    /// for the duration of `body`, which receives the bound port. Client certificates are
    /// required and must chain to `caCertificate`.
    public nonisolated func withServer<Result: Sendable>(
        listeningOn endpoint: Endpoint, identityDirectory: URL, caCertificate: URL,
        _ body: (_ port: Int) async throws -> Result
    ) async throws -> Result {
        let address: GRPCNIOTransportCore.SocketAddress =
            endpoint.host.contains(":") ? .ipv6(host: endpoint.host, port: endpoint.port) : .ipv4(host: endpoint.host, port: endpoint.port)
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

extension ParticipantClient {
    /// Connects to the coordinator at `endpoint` over HTTP/2 + TLS and runs the session loop
    /// (reconnecting as configured) until the coordinator ends it.
    public func run(connectingTo endpoint: Endpoint, security: ClientSecurity) async throws {
        if endpoint.host.contains(":") {
            try await run(target: .ipv6(address: endpoint.host, port: endpoint.port), endpoint: endpoint, security: security)
        } else if endpoint.isIPv4Literal {
            try await run(target: .ipv4(address: endpoint.host, port: endpoint.port), endpoint: endpoint, security: security)
        } else {
            try await run(target: .dns(host: endpoint.host, port: endpoint.port), endpoint: endpoint, security: security)
        }
    }

    private func run(target: some ResolvableTarget, endpoint: Endpoint, security: ClientSecurity) async throws {
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try HTTP2ClientTransport.Posix(
                target: target, transportSecurity: security.transportSecurity,
                config: .defaults { config in
                    config.http2.maxFrameSize = HTTP2Tuning.participantMaximumFrameBytes
                    config.http2.targetWindowSize = HTTP2Tuning.participantWindowBytes
                })
        } catch {
            throw TesseraRuntimeError(.invalidConfiguration, "cannot set up the TLS connection to \(endpoint)", cause: error)
        }
        try await withGRPCClient(transport: transport) { client in
            try await run(using: client)
        }
    }
}
