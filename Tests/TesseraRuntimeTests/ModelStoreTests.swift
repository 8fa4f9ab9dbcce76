import Foundation
import GRPCCore
import GRPCInProcessTransport
import Synchronization
import Testing
@testable import TesseraRuntime
import TesseraWire

/// A model is fetched under the receiver's flow control: the store never has more than the
/// fetch's window sent and not credited back, and refuses a fetch that does not open properly.
@Suite struct ModelStoreTests {
    /// About 25 chunks: more than the largest window.
    static let parameters = (0..<400_003).map { Float($0 % 977) * 0.5 }
    static let chunkBytes = WireProtocol.defaultChunkBytes

    func withStore<Result: Sendable>(
        budget: Int = 4 << 20, stallTimeout: Duration = .seconds(30),
        _ body: @Sendable (Tessera_V1_ModelStore.Client<InProcessTransport.Client>, ModelDigest) async throws -> Result
    ) async throws -> Result {
        let store = InMemoryModelStore()
        let digest = store.put(Self.parameters)
        let transport = InProcessTransport()
        let service = ModelStoreService(store: store, maximumBytesInFlight: budget, stallTimeout: stallTimeout)
        return try await withGRPCServer(transport: transport.server, services: [service]) { _ in
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

    /// The first chunk says which window was granted: what was asked, within the store's
    /// maximum; the later chunks carry 0.
    @Test func theFirstChunkCarriesTheGrantedWindow() async throws {
        let grants = try await withStore { store, digest in
            var grants: [[UInt64]] = []
            for asked in [2 * Self.chunkBytes, WireProtocol.maximumModelWindowBytes] {
                let chunks = try await fetch(store, sending: [.request(digest: digest, windowBytes: asked)])
                grants.append(chunks.map(\.windowBytes))
            }
            return grants
        }
        let maximum = UInt64(ModelStoreService.defaultMaximumWindowBytes)
        #expect(grants[0] == [UInt64(2 * Self.chunkBytes), 0])
        #expect(grants[1] == [maximum] + [UInt64](repeating: 0, count: Int(maximum) / Self.chunkBytes - 1))
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

    /// Fetches share one budget of bytes in flight: a fetch whose window does not fit waits,
    /// sending nothing, until an earlier one ends; then it gets its whole window.
    @Test func fetchesBeyondTheBudgetWaitForAnEarlierOneToEnd() async throws {
        let clock = ContinuousClock()
        let window = ModelStoreService.defaultMaximumWindowBytes
        let (first, second) = try await withStore(budget: window) { store, digest in
            let request = Tessera_V1_FetchModelMessage.request(digest: digest, windowBytes: window)
            // The first fetch takes the whole budget and never credits; it ends its request
            // after 400 ms, and only then can the store end it.
            async let first = store.fetchModel(
                requestProducer: { writer in
                    try await writer.write(request)
                    try await Task.sleep(for: .milliseconds(400))
                },
                onResponse: { response in try await response.messages.reduce(0) { count, _ in count + 1 } })
            let firstRequestEnded = clock.now + .milliseconds(400)
            try await Task.sleep(for: .milliseconds(100))
            let second = try await store.fetchModel(
                requestProducer: { writer in
                    try await writer.write(request)
                    try await Task.sleep(for: .milliseconds(700))
                },
                onResponse: { response in
                    var firstChunkAt: ContinuousClock.Instant?
                    var count = 0
                    for try await _ in response.messages {
                        if firstChunkAt == nil { firstChunkAt = clock.now }
                        count += 1
                    }
                    return (count, firstChunkAt, firstRequestEnded)
                })
            return (try await first, second)
        }
        let chunksPerWindow = window / Self.chunkBytes
        #expect(first == chunksPerWindow)
        #expect(second.0 == chunksPerWindow)
        // Admitted only after the first fetch's request ended (at the earliest 400 ms after it began).
        #expect(try #require(second.1) >= second.2)
    }

    /// A receiver that keeps its window full without crediting loses the fetch, so that it
    /// cannot hold its share of the budget from the others.
    @Test func aFetchThatStopsCreditingIsEndedAfterTheStallTimeout() async throws {
        let outcome: RPCError.Code? = try await withStore(stallTimeout: .milliseconds(200)) { store, digest in
            do {
                _ = try await fetch(
                    store, sending: [.request(digest: digest, windowBytes: Self.chunkBytes)], quiet: .seconds(5))
                return nil
            } catch let error as RPCError {
                return error.code
            }
        }
        #expect(outcome == .deadlineExceeded)
    }
}

/// The budget behind model fetches admits strictly in arrival order, and a waiter that is
/// cancelled leaves the queue without taking anything.
@Suite struct FetchAdmissionTests {
    @Test func waitersAreAdmittedInOrderAndCancelledOnesLeave() async throws {
        let admission = FetchAdmission(budget: 10)
        try await admission.acquire(6)
        let order = OrderLog()
        // A big request first, then a small one that would fit now: it must not overtake.
        let big = Task {
            try await admission.acquire(8)
            order.append("big")
        }
        try await Task.sleep(for: .milliseconds(50))
        let small = Task {
            try await admission.acquire(2)
            order.append("small")
        }
        let cancelled = Task { try await admission.acquire(1) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(order.entries.isEmpty)
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        admission.release(6)
        try await big.value
        try await small.value
        #expect(order.entries == ["big", "small"])
        #expect(admission.available == 0)
        admission.release(8)
        admission.release(2)
        #expect(admission.available == 10)
    }
}

private final class OrderLog: Sendable {
    private let storage = Mutex<[String]>([])
    var entries: [String] { storage.withLock { $0 } }
    func append(_ entry: String) { storage.withLock { $0.append(entry) } }
}
