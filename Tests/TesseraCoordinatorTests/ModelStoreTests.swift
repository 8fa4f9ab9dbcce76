import Foundation
import GRPCCore
import GRPCInProcessTransport
import Synchronization
import TesseraTesting
import TesseraWire
import Testing

@testable import TesseraCoordinator

/// A model is fetched under the receiver's flow control: the store never has more than the
/// fetch's window sent and not credited back, and refuses a fetch that does not open properly.
@Suite struct ModelStoreTests {
    /// About 25 chunks: more than the largest window.
    static let parameters = (0..<400_003).map { Float($0 % 977) * 0.5 }
    static let chunkBytes = WireProtocol.defaultChunkBytes

    func withStore<Result: Sendable>(
        budget: Int = 4 << 20, progress: TransferProgress = TransferProgress(), clock: ManualClock = ManualClock(),
        _ body:
            @Sendable (Tessera_V1_ModelStore.Client<InProcessTransport.Client>, ModelDigest, ModelStoreService)
            async throws
            -> Result
    ) async throws -> Result {
        let store = InMemoryModelStore()
        let digest = store.put(Self.parameters)
        let transport = InProcessTransport()
        let service = ModelStoreService(
            store: store, maximumBytesInFlight: budget, progress: progress, clock: clock)
        return try await withGRPCServer(transport: transport.server, services: [service]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await body(Tessera_V1_ModelStore.Client(wrapping: client), digest, service)
            }
        }
    }

    /// Sends `messages`, keeps the request open until `expected` chunks have arrived, then ends
    /// it and returns every chunk received (the store stops sending when the request ends, so a
    /// store that sent more than it may would show more).
    func fetch(
        _ store: Tessera_V1_ModelStore.Client<InProcessTransport.Client>,
        sending messages: [Tessera_V1_FetchModelMessage],
        expecting expected: Int
    ) async throws -> [Tessera_V1_ModelChunk] {
        let (arrived, arrival) = AsyncStream.makeStream(of: Int.self)
        return try await store.fetchModel(
            requestProducer: { writer in
                for message in messages { try await writer.write(message) }
                for await count in arrived where count >= expected { break }
            },
            onResponse: { response in
                defer { arrival.finish() }
                var chunks: [Tessera_V1_ModelChunk] = []
                for try await chunk in response.messages {
                    chunks.append(chunk)
                    arrival.yield(chunks.count)
                }
                return chunks
            })
    }

    @Test func creditsDriveTheWholeModelAcrossAndItMatchesItsDigest() async throws {
        let model = try await withStore { store, digest, _ in
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
        let maximum = ModelStoreService.defaultMaximumWindowBytes
        let grants = try await withStore { store, digest, _ in
            var grants: [[UInt64]] = []
            for (asked, granted) in [
                (2 * Self.chunkBytes, 2 * Self.chunkBytes), (WireProtocol.maximumModelWindowBytes, maximum),
            ] {
                let chunks = try await fetch(
                    store, sending: [.request(digest: digest, windowBytes: asked)], expecting: granted / Self.chunkBytes
                )
                grants.append(chunks.map(\.windowBytes))
            }
            return grants
        }
        #expect(grants[0] == [UInt64(2 * Self.chunkBytes), 0])
        #expect(grants[1] == [UInt64(maximum)] + [UInt64](repeating: 0, count: maximum / Self.chunkBytes - 1))
    }

    @Test func withoutCreditsTheStoreSendsOneWindowAndWaits() async throws {
        let chunks = try await withStore { store, digest, _ in
            try await fetch(store, sending: [.request(digest: digest, windowBytes: 3 * Self.chunkBytes)], expecting: 3)
        }
        #expect(chunks.count == 3)
        #expect(chunks.map(\.offset) == [0, 1, 2].map { UInt64($0 * Self.chunkBytes) })
    }

    /// A credit beyond the window buys only the window back.
    @Test func aReceiverCannotClaimMoreThanTheWindow() async throws {
        let chunks = try await withStore { store, digest, _ in
            try await fetch(
                store, sending: [.request(digest: digest, windowBytes: 2 * Self.chunkBytes), .credit(1 << 40)],
                expecting: 4)
        }
        #expect(chunks.count == 4)
    }

    /// A window smaller than a chunk is raised to one chunk, so that the stream can move.
    @Test func aTinyWindowStillMovesOneChunkAtATime() async throws {
        let chunks = try await withStore { store, digest, _ in
            try await fetch(store, sending: [.request(digest: digest, windowBytes: 4)], expecting: 1)
        }
        #expect(chunks.count == 1)
    }

    @Test func aFetchMustOpenWithItsRequestAndNameAKnownModel() async throws {
        let codes = try await withStore { store, digest, _ in
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
    @Test(.timeLimit(.minutes(1))) func fetchesBeyondTheBudgetWaitForAnEarlierOneToEnd() async throws {
        let window = ModelStoreService.defaultMaximumWindowBytes
        let chunksPerWindow = window / Self.chunkBytes
        let events = OrderLog()
        let (first, second) = try await withStore(budget: window) { store, digest, service in
            let request = Tessera_V1_FetchModelMessage.request(digest: digest, windowBytes: window)
            let (release, releaseFirst) = AsyncStream.makeStream(of: Void.self)
            let (filled, firstFilled) = AsyncStream.makeStream(of: Void.self)
            // The first fetch takes the whole budget and never credits; its request stays open
            // until the test releases it.
            async let first = store.fetchModel(
                requestProducer: { writer in
                    try await writer.write(request)
                    for await _ in release { break }
                    events.append("first request ended")
                },
                onResponse: { response in
                    var count = 0
                    for try await _ in response.messages {
                        count += 1
                        if count == chunksPerWindow { firstFilled.yield() }
                    }
                    return count
                })
            for await _ in filled { break }
            async let second = store.fetchModel(
                requestProducer: { writer in
                    try await writer.write(request)
                    await suspendUntilCancelled()
                },
                onResponse: { response in
                    var count = 0
                    for try await _ in response.messages {
                        if count == 0 { events.append("second got its first chunk") }
                        count += 1
                        // Its whole window came: end the fetch.
                        if count == chunksPerWindow { break }
                    }
                    return count
                })
            // The second fetch is queued behind the first before the first is released.
            while service.admission.waiting == 0 { await Task.yield() }
            #expect(events.entries.isEmpty)
            releaseFirst.yield()
            return (try await first, try await second)
        }
        #expect(first == chunksPerWindow)
        #expect(second == chunksPerWindow)
        #expect(events.entries == ["first request ended", "second got its first chunk"])
    }

    /// A receiver that keeps its window full without crediting loses the fetch exactly when it
    /// has held its share for a whole window, so that it cannot hold its share of the budget.
    @Test(.timeLimit(.minutes(1))) func aFetchThatStopsCreditingIsEndedAfterAWholeWindow() async throws {
        let clock = ManualClock()
        let timeout = Duration.seconds(30)
        let progress = TransferProgress(window: timeout)
        let outcome: RPCError.Code? = try await withStore(progress: progress, clock: clock) { store, digest, _ in
            do {
                try await store.fetchModel(
                    requestProducer: { writer in
                        try await writer.write(.request(digest: digest, windowBytes: Self.chunkBytes))
                        await suspendUntilCancelled()
                    },
                    onResponse: { response in
                        for try await _ in response.messages {
                            // The window is full and the store waits for a credit since time 0:
                            // its watch sleeps until exactly the timeout, and not a second before
                            // does the fetch end.
                            await clock.waitForSleeper(until: timeout)
                            #expect(clock.pendingDeadlines == [timeout])
                            clock.advance(to: timeout - .milliseconds(1))
                            #expect(clock.pendingDeadlines == [timeout])
                            clock.advance(to: timeout)
                        }
                    })
                return nil
            } catch let error as RPCError {
                return error.code
            }
        }
        #expect(outcome == .deadlineExceeded)
        #expect(clock.now == timeout)
    }

    /// A receiver that credits one chunk every 29 s never leaves its window full for 30 s, but
    /// moves 2 KiB/s: it is judged by its rate when the first whole window ends, and loses the
    /// fetch with a reason that says so.
    @Test(.timeLimit(.minutes(1))) func aFetchThatCreditsAChunkNowAndThenIsEndedForItsRate() async throws {
        let clock = ManualClock()
        let progress = TransferProgress(minimumBytesPerSecond: 16 << 10, window: .seconds(30))
        let (credits, credit) = AsyncStream.makeStream(of: Int.self)
        let error: RPCError? = try await withStore(progress: progress, clock: clock) { store, digest, _ in
            do {
                try await store.fetchModel(
                    requestProducer: { writer in
                        try await writer.write(.request(digest: digest, windowBytes: Self.chunkBytes))
                        for await bytes in credits { try await writer.write(.credit(bytes)) }
                    },
                    onResponse: { response in
                        var received = 0
                        for try await chunk in response.messages {
                            received += 1
                            if received == 1 {
                                // The first chunk at 0 s; its credit at 29 s lets the second go.
                                clock.advance(to: .seconds(29))
                                credit.yield(chunk.data.count)
                            } else {
                                // The watch judges at 30 s: one chunk in the window, not 480 KiB.
                                await clock.waitForSleeper(until: .seconds(30))
                                clock.advance(to: .seconds(30))
                            }
                        }
                    })
                return nil
            } catch let error as RPCError {
                return error
            }
        }
        credit.finish()
        #expect(error?.code == .deadlineExceeded)
        #expect(error?.message.contains("too slow") == true, "\(String(describing: error))")
        #expect(clock.now == .seconds(30))
    }
}

/// The budget behind model fetches admits strictly in arrival order, and a waiter that is
/// cancelled leaves the queue without taking anything.
@Suite struct FetchAdmissionTests {
    @Test(.timeLimit(.minutes(1))) func waitersAreAdmittedInOrderAndCancelledOnesLeave() async throws {
        let admission = FetchAdmission(budget: 10)
        try await admission.acquire(6)
        let order = OrderLog()
        // A big request first, then a small one that would fit now: it must not overtake.
        let big = Task {
            try await admission.acquire(8)
            order.append("big")
        }
        while admission.waiting < 1 { await Task.yield() }
        let small = Task {
            try await admission.acquire(2)
            order.append("small")
        }
        while admission.waiting < 2 { await Task.yield() }
        let cancelled = Task { try await admission.acquire(1) }
        while admission.waiting < 3 { await Task.yield() }
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

/// A fetch that waits too long for its share of the budget fails, and gives back nothing it
/// did not take.
@Suite struct FetchAdmissionTimeoutTests {
    @Test(.timeLimit(.minutes(1))) func aFetchThatWaitsLongerThanTheTimeoutFailsClearly() async throws {
        let admission = FetchAdmission(budget: 10)
        let clock = ManualClock()
        try await admission.acquire(10, timeout: .seconds(60), clock: clock)
        let waiter = Task { try await admission.acquire(4, timeout: .seconds(60), clock: clock) }
        while admission.waiting < 1 { await Task.yield() }
        await clock.waitForSleeper(until: .seconds(60))
        clock.advance(to: .seconds(60) - .milliseconds(1))
        #expect(admission.waiting == 1)
        clock.advance(to: .seconds(60))
        let error = await #expect(throws: RPCError.self) { try await waiter.value }
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message.contains("waited 60") == true, "\(String(describing: error))")
        #expect(admission.waiting == 0)
        admission.release(10)
        #expect(admission.available == 10)
    }
}

private final class OrderLog: Sendable {
    private let storage = Mutex<[String]>([])
    var entries: [String] { storage.withLock { $0 } }
    func append(_ entry: String) { storage.withLock { $0.append(entry) } }
}
