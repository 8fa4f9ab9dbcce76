import Foundation
import GRPCCore
import GRPCInProcessTransport
import Testing
import TesseraRuntime
import TesseraWire

/// A model is fetched under the receiver's flow control: the store never has more than the
/// fetch's window sent and not credited back, and refuses a fetch that does not open properly.
@Suite struct ModelStoreTests {
    static let parameters = (0..<100_003).map { Float($0 % 977) * 0.5 }
    static let chunkBytes = WireProtocol.defaultChunkBytes

    func withStore<Result: Sendable>(
        _ body: @Sendable (Tessera_V1_ModelStore.Client<InProcessTransport.Client>, ModelDigest) async throws -> Result
    ) async throws -> Result {
        let store = InMemoryModelStore()
        let digest = store.put(Self.parameters)
        let transport = InProcessTransport()
        return try await withGRPCServer(transport: transport.server, services: [ModelStoreService(store: store)]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await body(Tessera_V1_ModelStore.Client(wrapping: client), digest)
            }
        }
    }

    /// Sends `messages`, keeps the request open (sending nothing) for `quiet`, then ends it;
    /// returns the chunks received by then (the store stops when the request ends).
    func fetch(
        _ store: Tessera_V1_ModelStore.Client<InProcessTransport.Client>, sending messages: [Tessera_V1_FetchModelMessage],
        quiet: Duration = .milliseconds(300)
    ) async throws -> [Tessera_V1_ModelChunk] {
        try await store.fetchModel(
            requestProducer: { writer in
                for message in messages { try await writer.write(message) }
                try await Task.sleep(for: quiet)
            },
            onResponse: { response in
                try await response.messages.reduce(into: [Tessera_V1_ModelChunk]()) { $0.append($1) }
            })
    }

    @Test func creditsDriveTheWholeModelAcrossAndItMatchesItsDigest() async throws {
        let model = try await withStore { store, digest in
            let (credits, sink) = AsyncStream.makeStream(of: Int.self)
            return try await store.fetchModel(
                requestProducer: { writer in
                    try await writer.write(.request(digest: digest, windowBytes: 2 * Self.chunkBytes))
                    for await bytes in credits { try await writer.write(.credit(bytes)) }
                },
                onResponse: { response in
                    defer { sink.finish() }
                    var assembler = ChunkAssembler.model(digest: digest, parameterCount: Self.parameters.count)
                    for try await chunk in response.messages {
                        try assembler.append(chunk)
                        if !assembler.isComplete { sink.yield(chunk.data.count) }
                    }
                    return try assembler.finish()
                })
        }
        #expect(model == Self.parameters)
    }

    @Test func withoutCreditsTheStoreSendsOneWindowAndWaits() async throws {
        let chunks = try await withStore { store, digest in
            try await fetch(store, sending: [.request(digest: digest, windowBytes: 3 * Self.chunkBytes)])
        }
        #expect(chunks.count == 3)
        #expect(chunks.map(\.offset) == [0, 1, 2].map { UInt64($0 * Self.chunkBytes) })
    }

    /// A credit beyond the window buys only the window back.
    @Test func aReceiverCannotClaimMoreThanTheWindow() async throws {
        let chunks = try await withStore { store, digest in
            try await fetch(store, sending: [.request(digest: digest, windowBytes: 2 * Self.chunkBytes), .credit(1 << 40)])
        }
        #expect(chunks.count == 4)
    }

    /// A window smaller than a chunk is raised to one chunk, so that the stream can move.
    @Test func aTinyWindowStillMovesOneChunkAtATime() async throws {
        let chunks = try await withStore { store, digest in
            try await fetch(store, sending: [.request(digest: digest, windowBytes: 4)])
        }
        #expect(chunks.count == 1)
    }

    @Test func aFetchMustOpenWithItsRequestAndNameAKnownModel() async throws {
        let codes = try await withStore { store, digest in
            var codes: [RPCError.Code?] = []
            var badDigest = Tessera_V1_FetchModelMessage.request(digest: digest, windowBytes: 0)
            badDigest.request.digest = "not-hex"
            let firsts: [Tessera_V1_FetchModelMessage] = [
                .credit(100), badDigest, .request(digest: ModelDigest(parameters: [1, 2, 3]), windowBytes: 0),
            ]
            for first in firsts {
                do {
                    try await store.fetchModel(
                        requestProducer: { writer in try await writer.write(first) },
                        onResponse: { response in for try await _ in response.messages {} })
                    codes.append(nil)
                } catch let error as RPCError {
                    codes.append(error.code)
                }
            }
            return codes
        }
        #expect(codes == [.invalidArgument, .invalidArgument, .notFound])
    }
}
