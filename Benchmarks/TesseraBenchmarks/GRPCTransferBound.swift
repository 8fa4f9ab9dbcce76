import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import TesseraCoordinator
import TesseraParticipant
import TesseraTesting
import TesseraTransport

/// A second reference for the runtime benchmark's round time: grpc-swift's HTTP/2 transport
/// over mTLS (the runtime's transport and TLS settings) moving one plain round's bytes in
/// chunk-sized messages of raw bytes, and nothing else: no protobuf, no envelopes or checks, no
/// reassembly, digests, training or aggregation.
///
/// Both ends use HTTP/2's largest frames and 8 MiB windows, the most favourable settings, so the
/// bound is a floor for the transport. The messages keep the wire's chunk size, because the
/// message size changes the time (Benchmarks/RESULTS.md has the settings compared).
///
/// Each site keeps one bidirectional stream open. A round: the server writes `bytes` to every
/// stream in `chunkBytes` messages; each site, once it has all of them, writes as many bytes
/// back in the same messages; the round ends when the server has every upload. The first round
/// is not timed.
enum GRPCTransferBound {
    static func run(sites: Int, bytes: Int, chunkBytes: Int, rounds: Int) async throws -> [Double] {
        let pki = try ThrowawayPKI(purpose: "grpc-bound")
        defer { pki.remove() }

        // HTTP/2's largest frame (2^24 − 1 bytes).
        let largestFrame = (1 << 24) - 1
        let chunks = stride(from: 0, to: bytes, by: chunkBytes).map {
            [UInt8](repeating: 0x5A, count: min(chunkBytes, bytes - $0))
        }
        let hub = RoundHub(sites: sites, bytes: bytes)
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: 0),
            transportSecurity: FederationTLS.server(
                identityDirectory: pki.coordinatorIdentity, caCertificate: pki.caCertificate),
            config: .defaults { config in
                config.http2.maxFrameSize = largestFrame
                config.http2.targetWindowSize = 8 << 20
            })
        return try await withGRPCServer(transport: transport, services: [BroadcastService(hub: hub, chunks: chunks)]) {
            _ in
            let bound = try await transport.listeningAddress
            guard let port = bound.ipv4?.port else { throw BenchmarkError("the gRPC bound's listener has no port") }
            return try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<sites {
                    group.addTask {
                        let client = try HTTP2ClientTransport.Posix(
                            target: .ipv4(address: "127.0.0.1", port: port),
                            transportSecurity: FederationTLS.client(identityDirectory: pki.siteIdentity),
                            config: .defaults { config in
                                config.http2.maxFrameSize = largestFrame
                                config.http2.targetWindowSize = 8 << 20
                            })
                        do {
                            try await withGRPCClient(transport: client) { client in
                                try await Self.site(client, chunks: chunks, bytes: bytes)
                            }
                        } catch {
                            hub.fail(error)
                            throw error
                        }
                    }
                }
                var seconds: [Double] = []
                do {
                    try await hub.waitForSites()
                    for round in 0..<rounds {
                        let start = ContinuousClock.now
                        try await hub.runRound()
                        let elapsed = ContinuousClock.now - start
                        if round > 0 {
                            seconds.append(
                                Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
                        }
                    }
                } catch {
                    hub.finish()
                    throw BenchmarkError("the gRPC bound failed: \(error)")
                }
                // Ending the server's streams ends every RPC, then the clients.
                hub.finish()
                try await group.waitForAll()
                return seconds
            }
        }
    }

    static let method = MethodDescriptor(fullyQualifiedService: "tessera.bench.Broadcast", method: "Round")

    /// A site: counts what arrives and sends a whole payload back for every whole payload received.
    private static func site(
        _ client: GRPCClient<HTTP2ClientTransport.Posix>, chunks: [[UInt8]], bytes: Int
    ) async throws {
        let (uploads, uploadSink) = AsyncStream.makeStream(of: Void.self)
        let request = StreamingClientRequest<[UInt8]>(producer: { writer in
            for await _ in uploads {
                for chunk in chunks { try await writer.write(chunk) }
            }
        })
        try await client.bidirectionalStreaming(
            request: request, descriptor: method, serializer: RawBytes(), deserializer: ByteCount(), options: .defaults
        ) { response in
            defer { uploadSink.finish() }
            var received = 0
            for try await count in response.messages {
                received += count

                while received >= bytes {
                    received -= bytes
                    uploadSink.yield()
                }
            }
        }
    }
}

/// Starts rounds on every connected stream and waits for every upload; a site that fails ends
/// the wait with its error.
private final class RoundHub: Sendable {
    private struct State {
        var streams: [AsyncStream<Void>.Continuation] = []
        var uploadsLeft = 0
        /// The driver, waiting for every site to connect or for a round's uploads.
        var waiter: CheckedContinuation<Void, any Error>?
        var failure: (any Error)?
    }
    private let state = Mutex(State())
    let sites: Int
    let bytes: Int

    init(sites: Int, bytes: Int) {
        self.sites = sites
        self.bytes = bytes
    }

    func connect() -> AsyncStream<Void> {
        let (rounds, continuation) = AsyncStream.makeStream(of: Void.self)
        let waiter = state.withLock { state in
            state.streams.append(continuation)
            return state.streams.count == sites ? state.waiter.take() : nil
        }
        waiter?.resume()
        return rounds
    }

    func waitForSites() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result: Result<Void, any Error>? = state.withLock { state in
                if let failure = state.failure { return .failure(failure) }
                if state.streams.count >= sites { return .success(()) }
                state.waiter = continuation
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    func runRound() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let streams: Result<[AsyncStream<Void>.Continuation], any Error> = state.withLock { state in
                if let failure = state.failure { return .failure(failure) }
                state.uploadsLeft = state.streams.count
                state.waiter = continuation
                return .success(state.streams)
            }
            switch streams {
            case .success(let streams): for stream in streams { stream.yield() }
            case .failure(let failure): continuation.resume(throwing: failure)
            }
        }
    }

    func uploaded() {
        let waiter = state.withLock { state in
            state.uploadsLeft -= 1
            return state.uploadsLeft == 0 ? state.waiter.take() : nil
        }
        waiter?.resume()
    }

    func fail(_ error: any Error) {
        let waiter = state.withLock { state in
            state.failure = state.failure ?? error
            return state.waiter.take()
        }
        waiter?.resume(throwing: error)
    }

    /// Ends every stream's rounds, and so every RPC.
    func finish() {
        for stream in state.withLock({ $0.streams }) { stream.finish() }
    }
}

private struct BroadcastService: RegistrableRPCService {
    let hub: RoundHub
    let chunks: [[UInt8]]

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let hub = hub
        let chunks = chunks
        router.registerHandler(
            forMethod: GRPCTransferBound.method, deserializer: ByteCount(), serializer: RawBytes()
        ) { request, _ in
            let rounds = hub.connect()
            return StreamingServerResponse { writer in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var received = 0
                        for try await count in request.messages {
                            received += count
                            while received >= hub.bytes {
                                received -= hub.bytes
                                hub.uploaded()
                            }
                        }
                    }
                    for await _ in rounds {
                        for chunk in chunks { try await writer.write(chunk) }
                    }
                    group.cancelAll()
                }
                return [:]
            }
        }
    }
}

/// Messages are raw bytes: serialising copies them into the transport's buffer once.
private struct RawBytes: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

/// Receiving only counts the bytes.
private struct ByteCount: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Int {
        serializedMessageBytes.withUnsafeBytes { $0.count }
    }
}
