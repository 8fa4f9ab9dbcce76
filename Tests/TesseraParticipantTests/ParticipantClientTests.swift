import GRPCCore
import GRPCInProcessTransport
import Synchronization
import TesseraData
import TesseraFederation
import TesseraParticipant
import TesseraTensor
import TesseraTesting
import TesseraTransport
import TesseraWire
import Testing

/// The participant's timing on a manual clock: heartbeats at the coordinator's interval, and
/// reconnection after a full-jitter backoff.
@Suite struct ParticipantClientTests {
    /// A coordinator that records when each session opens and each envelope arrives (on the
    /// test's clock), welcomes Hello with a 10 s heartbeat interval, and either refuses the
    /// first `refusals` sessions with UNAVAILABLE or ends a session after `heartbeats` heartbeats.
    struct RecordingCoordinator: Tessera_V1_ParticipantSession.ServiceProtocol {
        enum Event: Equatable {
            case opened(Duration)
            case hello(Duration)
            case heartbeat(Duration)
        }
        let clock: ManualClock
        let refusals: Int
        let heartbeats: Int
        let log = EventLog()
        let events: AsyncStream<Event>.Continuation

        func session(
            request: StreamingServerRequest<Tessera_V1_ParticipantEnvelope>, context: ServerContext
        ) async throws -> StreamingServerResponse<Tessera_V1_CoordinatorEnvelope> {
            let opened = log.append(.opened(clock.now))
            events.yield(.opened(clock.now))
            if opened <= refusals { throw RPCError(code: .unavailable, message: "test: not yet") }
            return StreamingServerResponse { writer in
                var encoder = CoordinatorEnvelopeEncoder()
                var beats = 0
                for try await envelope in request.messages {
                    let event: Event = envelope.isHeartbeat ? .heartbeat(clock.now) : .hello(clock.now)
                    log.append(event)
                    events.yield(event)
                    if case .hello = event {
                        try await writer.write(
                            try encoder.welcome(
                                SessionWelcome(sessionID: "s", site: "site-a", heartbeatInterval: .seconds(10))))
                    } else {
                        beats += 1
                        if beats == heartbeats { break }
                    }
                }
                return [:]
            }
        }
    }

    func agent() throws -> ParticipantAgent {
        let features = Tensor(shape: [4, 2], scalars: [0, 1, 1, 0, 1, 1, 0, 0])
        let data = LocalData(
            train: try Dataset(features: features, labels: Tensor([0, 1, 1, 0]), classCount: 2))
        return ParticipantAgent(site: "site-a", data: ["data": data], softwareVersion: "test")
    }

    /// Runs a client against `coordinator` while `drive` moves the clock; returns the log.
    /// The silence deadline is 3 heartbeat intervals once welcomed, and `welcomeTimeout` before.
    func run(
        _ coordinator: RecordingCoordinator, events: AsyncStream<RecordingCoordinator.Event>,
        welcomeTimeout: Duration = .seconds(30),
        drive: @Sendable (AsyncStream<RecordingCoordinator.Event>.Iterator) async throws -> Void
    ) async throws -> [RecordingCoordinator.Event] {
        let client = ParticipantClient(
            agent: try agent(),
            configuration: .init(backoffBase: .seconds(2), backoffCap: .seconds(60), welcomeTimeout: welcomeTimeout),
            clock: coordinator.clock, logger: testLogger())
        let transport = InProcessTransport()
        try await withGRPCServer(transport: transport.server, services: [coordinator]) { _ in
            try await withGRPCClient(transport: transport.client) { grpc in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await client.run(using: grpc) }
                    try await drive(events.makeAsyncIterator())
                    try await group.waitForAll()
                }
            }
        }
        return coordinator.log.entries
    }

    /// Heartbeats leave at the coordinator's interval from its Welcome, not a moment before.
    @Test(.timeLimit(.minutes(1))) func heartbeatsFollowTheCoordinatorsInterval() async throws {
        let clock = ManualClock()
        let (events, sink) = AsyncStream.makeStream(of: RecordingCoordinator.Event.self)
        let coordinator = RecordingCoordinator(clock: clock, refusals: 0, heartbeats: 2, events: sink)
        let log = try await run(coordinator, events: events) { iterator in
            var iterator = iterator
            #expect(await iterator.next() == .opened(.zero))
            #expect(await iterator.next() == .hello(.zero))
            // Welcomed at time 0: the first heartbeat is due at 10 s, the silence deadline at 30 s.
            await clock.waitForSleepers { $0 == [.seconds(10), .seconds(30)] }
            clock.advance(to: .seconds(10) - .milliseconds(1))
            // Nothing is due before the heartbeat (the silence deadline, 30 s, is later).
            #expect(clock.pendingDeadlines.first == .seconds(10))
            clock.advance(to: .seconds(10))
            #expect(await iterator.next() == .heartbeat(.seconds(10)))
            await clock.waitForSleeper(until: .seconds(20))
            clock.advance(to: .seconds(20))
            #expect(await iterator.next() == .heartbeat(.seconds(20)))
        }
        #expect(log == [.opened(.zero), .hello(.zero), .heartbeat(.seconds(10)), .heartbeat(.seconds(20))])
    }

    /// A refused session is retried after a delay drawn from [0, base] on the first failure and
    /// [0, 2·base] on the second, on the client's clock.
    @Test(.timeLimit(.minutes(1))) func aRefusedSessionIsRetriedAfterAJitteredBackoff() async throws {
        let clock = ManualClock()
        let (events, sink) = AsyncStream.makeStream(of: RecordingCoordinator.Event.self)
        let coordinator = RecordingCoordinator(clock: clock, refusals: 2, heartbeats: 1, events: sink)
        // A long welcome timeout tells the backoff apart from a refused session's silence deadline.
        let log = try await run(coordinator, events: events, welcomeTimeout: .seconds(1_000)) { iterator in
            var iterator = iterator
            #expect(await iterator.next() == .opened(.zero))
            // Nothing else sleeps on the clock while the client backs off (heartbeats start
            // only with a Welcome).
            await clock.waitForSleepers { $0.contains { $0 < .seconds(500) } }
            let first = try #require(clock.pendingDeadlines.first)
            #expect(first <= .seconds(2))
            clock.advance(to: first)
            #expect(await iterator.next() == .opened(first))
            await clock.waitForSleepers { $0.contains { $0 > first && $0 < first + .seconds(500) } }
            let second = try #require(clock.pendingDeadlines.first { $0 > first })
            #expect(second - first <= .seconds(4))
            clock.advance(to: second)
            #expect(await iterator.next() == .opened(second))
            #expect(await iterator.next() == .hello(second))
            // Welcomed: the session ends at its first heartbeat.
            await clock.waitForSleepers { $0.contains(second + .seconds(10)) }
            clock.advance(to: second + .seconds(10))
        }
        #expect(log.count { if case .opened = $0 { true } else { false } } == 3)
    }
}

/// The events a ``ParticipantClientTests/RecordingCoordinator`` saw, from any thread.
final class EventLog: Sendable {
    private let storage = Mutex<[ParticipantClientTests.RecordingCoordinator.Event]>([])

    var entries: [ParticipantClientTests.RecordingCoordinator.Event] { storage.withLock { $0 } }

    /// Appends `event`; returns how many sessions have opened so far.
    @discardableResult
    func append(_ event: ParticipantClientTests.RecordingCoordinator.Event) -> Int {
        storage.withLock { log in
            log.append(event)
            return log.count { if case .opened = $0 { true } else { false } }
        }
    }
}
