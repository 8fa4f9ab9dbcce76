import Foundation
import GRPCCore
import GRPCInProcessTransport
import Testing
import TesseraRuntime
import TesseraWire

/// Models are fetched in ranges: the store serves exactly the range asked for and refuses a
/// range that does not fit the model.
@Suite struct ModelStoreTests {
    static let parameters = (0..<100_003).map { Float($0 % 977) * 0.5 }

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

    @Test func consecutiveRangesReassembleTheModelAndMatchItsDigest() async throws {
        let total = Self.parameters.count * 4
        let (model, ranges) = try await withStore { store, digest in
            var assembler = ChunkAssembler.model(digest: digest, parameterCount: Self.parameters.count)
            var offset = 0
            var ranges = 0
            while offset < total {
                let length = min(WireProtocol.modelRangeBytes, total - offset)
                let chunks = try await store.fetchModel(Tessera_V1_FetchModelRequest(digest: digest, offset: offset, length: length)) {
                    try await $0.messages.reduce(into: [Tessera_V1_ModelChunk]()) { $0.append($1) }
                }
                #expect(chunks.first?.offset == UInt64(offset))
                #expect(chunks.reduce(0) { $0 + $1.data.count } == length)
                for chunk in chunks { try assembler.append(chunk) }
                offset += length
                ranges += 1
            }
            return (try assembler.finish(), ranges)
        }
        #expect(model == Self.parameters)
        #expect(ranges == (total + WireProtocol.modelRangeBytes - 1) / WireProtocol.modelRangeBytes)
    }

    @Test func aZeroLengthAsksForTheRestOfTheModel() async throws {
        let bytes = try await withStore { store, digest in
            try await store.fetchModel(Tessera_V1_FetchModelRequest(digest: digest, offset: 400_000, length: 0)) {
                try await $0.messages.reduce(0) { $0 + $1.data.count }
            }
        }
        #expect(bytes == Self.parameters.count * 4 - 400_000)
    }

    @Test(arguments: [
        (offset: 2, length: 8, mentions: "inside a 4-byte value"),
        (offset: 0, length: 6, mentions: "not a whole number"),
        (offset: 400_016, length: 0, mentions: "past the end"),
        (offset: 400_000, length: 16, mentions: "reach past the end"),
    ])
    func aRangeThatDoesNotFitTheModelIsRefused(offset: Int, length: Int, mentions: String) async throws {
        let error = try await withStore { store, digest in
            do {
                _ = try await store.fetchModel(Tessera_V1_FetchModelRequest(digest: digest, offset: offset, length: length)) {
                    try await $0.messages.reduce(0) { $0 + $1.data.count }
                }
                return RPCError?.none
            } catch let error as RPCError {
                return error
            }
        }
        let refused = try #require(error, "the range \(offset)+\(length) should be refused")
        #expect(refused.code == .invalidArgument)
        #expect(refused.message.contains(mentions), "\(refused.message)")
    }

    @Test func anUnknownDigestIsNotFound() async throws {
        let code = try await withStore { store, _ in
            do {
                let other = ModelDigest(parameters: [1, 2, 3])
                _ = try await store.fetchModel(Tessera_V1_FetchModelRequest(digest: other, offset: 0, length: 0)) {
                    try await $0.messages.reduce(0) { $0 + $1.data.count }
                }
                return RPCError.Code?.none
            } catch let error as RPCError {
                return error.code
            }
        }
        #expect(code == .notFound)
    }
}
