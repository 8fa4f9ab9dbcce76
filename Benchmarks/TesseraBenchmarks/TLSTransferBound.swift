import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// The physical reference for the runtime benchmark's round time: the TLS stack the runtime uses
/// (NIOSSL over BoringSSL, mutual TLS with federation certificates, on the same shared event-loop
/// threads) moving exactly the bytes of one plain round over 127.0.0.1, and nothing else: no
/// HTTP/2, gRPC, protobuf, chunking, flow-control credits, training or aggregation.
///
/// A round: the server writes `bytes` to each of `sites` connections (the model broadcast); each
/// client, once it has all of them, writes `bytes` back (its update); the round ends when the
/// server has every upload. Connections and handshakes are set up before the first round, and the
/// first round is not timed, as in the runtime benchmark.
enum TLSTransferBound {
    /// The duration of each timed round, in seconds.
    static func run(sites: Int, bytes: Int, rounds: Int) async throws -> [Double] {
        let pki = try ThrowawayPKI(purpose: "tls-bound")
        defer { pki.remove() }
        let caCertificates = try NIOSSLCertificate.fromPEMFile(pki.caCertificate.path)

        func identity(_ directory: URL) throws -> ([NIOSSLCertificateSource], NIOSSLPrivateKeySource) {
            let chain = try NIOSSLCertificate.fromPEMFile(directory.appendingPathComponent("cert.pem").path)
            let key = try NIOSSLPrivateKey(file: directory.appendingPathComponent("key.pem").path, format: .pem)
            return (chain.map { .certificate($0) }, .privateKey(key))
        }
        let (serverChain, serverKey) = try identity(pki.coordinatorIdentity)
        var serverTLS = TLSConfiguration.makeServerConfiguration(certificateChain: serverChain, privateKey: serverKey)
        serverTLS.trustRoots = .certificates(caCertificates)
        serverTLS.certificateVerification = .noHostnameVerification
        let serverContext = try NIOSSLContext(configuration: serverTLS)
        let (siteChain, siteKey) = try identity(pki.siteIdentity)
        var clientTLS = TLSConfiguration.makeClientConfiguration()
        clientTLS.certificateChain = siteChain
        clientTLS.privateKey = siteKey
        clientTLS.trustRoots = .certificates(caCertificates)
        clientTLS.certificateVerification = .noHostnameVerification
        let clientContext = try NIOSSLContext(configuration: clientTLS)

        // gRPC's transports run on this group too.
        let group = MultiThreadedEventLoopGroup.singleton
        let payload = ByteBuffer(repeating: 0x5A, count: bytes)
        let accepted = Mutex<[any Channel]>([])
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
                    try channel.pipeline.syncOperations.addHandler(BroadcastEnd(payload: payload))
                    accepted.withLock { $0.append(channel) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = server.localAddress?.port else { throw BenchmarkError("the TLS bound's listener has no port") }

        var clients: [any Channel] = []
        defer {
            for channel in clients { channel.close(promise: nil) }
            server.close(promise: nil)
        }
        var handshakes: [EventLoopFuture<Void>] = []
        for _ in 0..<sites {
            let loop = group.next()
            let handshake = loop.makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: clientContext, serverHostname: nil))
                        try channel.pipeline.syncOperations.addHandler(
                            UploadEnd(payload: payload, handshake: handshake))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            clients.append(channel)
            handshakes.append(handshake.futureResult)
        }
        try await EventLoopFuture.andAllSucceed(handshakes, on: group.any()).get()
        let servers = accepted.withLock { $0 }
        guard servers.count == sites else {
            throw BenchmarkError("the TLS bound's server accepted \(servers.count) of \(sites) connections")
        }

        var seconds: [Double] = []
        for round in 0..<rounds {
            let start = ContinuousClock.now
            let uploads = servers.map { channel in
                let received = channel.eventLoop.makePromise(of: Void.self)
                channel.pipeline.fireUserInboundEventTriggered(BroadcastEnd.Round(uploadsReceived: received))
                return received.futureResult
            }
            try await EventLoopFuture.andAllSucceed(uploads, on: group.any()).get()
            let elapsed = ContinuousClock.now - start
            if round > 0 {
                seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
            }
        }
        return seconds
    }
}

/// The server's end of one connection: on ``Round`` it writes the payload and completes the
/// round's promise once as many bytes have come back.
private final class BroadcastEnd: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Round: Sendable {
        let uploadsReceived: EventLoopPromise<Void>
    }

    private let payload: ByteBuffer
    private var received = 0
    private var pending: EventLoopPromise<Void>?

    init(payload: ByteBuffer) { self.payload = payload }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let round = event as? Round else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        received = 0
        pending = round.uploadsReceived
        context.writeAndFlush(wrapOutboundOut(payload), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        if received >= payload.readableBytes, let pending {
            self.pending = nil
            pending.succeed()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pending?.fail(error)
        pending = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.fail(BenchmarkError("a TLS bound connection closed mid-round"))
        pending = nil
        context.fireChannelInactive()
    }
}

/// A client's end: sends the payload back each time a whole payload has arrived.
private final class UploadEnd: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let payload: ByteBuffer
    private let handshake: EventLoopPromise<Void>
    private var received = 0

    init(payload: ByteBuffer, handshake: EventLoopPromise<Void>) {
        self.payload = payload
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { handshake.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        while received >= payload.readableBytes {
            received -= payload.readableBytes
            context.writeAndFlush(wrapOutboundOut(payload), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handshake.fail(error)
        context.close(promise: nil)
    }
}
