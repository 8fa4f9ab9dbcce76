import GRPCCore
import GRPCInProcessTransport
import Synchronization
import TesseraData
import TesseraFederation
import TesseraTensor
import TesseraTesting
import TesseraTransport
import TesseraWire
import Testing

@testable import TesseraParticipant

/// The participant's liveness on a manual clock: the silence deadline, the fetch progress
/// deadline, and the bounded retries of a replaced session.
@Suite struct SessionLivenessTests {
    @Test(.timeLimit(.minutes(1))) func silenceIsCountedOnlyWhileTheSiteWaitsToRead() async throws {
        let clock = ManualClock()
        let watch = SilenceWatch(limit: .seconds(30), now: .zero)
        try await withThrowingTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                do {
                    try await watch.run(clock: clock)
                    return nil
                } catch {
                    return error
                }
            }
            await clock.waitForSleeper(until: .seconds(30))
            // A heartbeat at 29 s: the deadline moves to 59 s.
            clock.advance(to: .seconds(29))
            watch.heard(at: clock.now)
            watch.idle(at: clock.now)
            clock.advance(to: .seconds(30))
            await clock.waitForSleeper(until: .seconds(59))
            // A task arrives at 40 s and takes until 100 s: no silence is counted meanwhile.
            clock.advance(to: .seconds(40))
            watch.heard(at: clock.now)
            clock.advance(to: .seconds(100))
            #expect(clock.pendingDeadlines.allSatisfy { $0 > .seconds(100) })
            watch.idle(at: clock.now)
            await clock.waitForSleeper(until: .seconds(130))
            clock.advance(to: .seconds(130) - .milliseconds(1))
            clock.advance(to: .seconds(130))
            let error = try await group.next() ?? nil
            let runtime = try #require(error as? TesseraRuntimeError)
            #expect(runtime.code == .transport)
            #expect(runtime.message.contains("sent nothing"))
            #expect(clock.now == .seconds(130))
        }
    }

    @Test(.timeLimit(.minutes(1))) func aFetchFailsInTheFirstWindowWithTooLittleProgress() async throws {
        let clock = ManualClock()
        // 10 bytes per second over 10 s: at least 100 bytes a window.
        let watch = FetchProgressWatch(minimumBytesPerSecond: 10, window: .seconds(10))
        #expect(watch.minimumBytes == 100)
        try await withThrowingTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                do {
                    try await watch.run(clock: clock, what: "the fetch of model m")
                    return nil
                } catch {
                    return error
                }
            }
            await clock.waitForSleeper(until: .seconds(10))
            watch.add(150)
            clock.advance(to: .seconds(10))
            await clock.waitForSleeper(until: .seconds(20))
            watch.add(99)
            clock.advance(to: .seconds(20))
            let error = try await group.next() ?? nil
            let runtime = try #require(error as? TesseraRuntimeError)
            #expect(runtime.code == .modelUnavailable)
            #expect(runtime.message.contains("99 bytes"), "\(runtime.message)")
        }
    }

    /// A coordinator whose sessions each do what `script` says for their index (from 1).
    struct ScriptedSessions: Tessera_V1_ParticipantSession.ServiceProtocol {
        enum Behaviour: Sendable {
            /// Welcome, then never a word (heartbeats are read and not answered).
            case welcomeThenSilence
            /// Welcome, then end the session cleanly (the experiment is over).
            case welcomeThenEnd
            /// Refuse the session as replaced by a newer one.
            case replaced
        }
        let clock: ManualClock
        let script: @Sendable (Int) -> Behaviour
        let opened: AsyncStream<Duration>.Continuation
        private let count = SessionCounter()

        init(
            clock: ManualClock, opened: AsyncStream<Duration>.Continuation,
            script: @escaping @Sendable (Int) -> Behaviour
        ) {
            self.clock = clock
            self.opened = opened
            self.script = script
        }

        func session(
            request: StreamingServerRequest<Tessera_V1_ParticipantEnvelope>, context: ServerContext
        ) async throws -> StreamingServerResponse<Tessera_V1_CoordinatorEnvelope> {
            let index = count.value.withLock { count in
                count += 1
                return count
            }
            opened.yield(clock.now)
            let behaviour = script(index)
            if case .replaced = behaviour {
                throw RPCError(code: .failedPrecondition, message: "test: a newer session of site-a replaced this one")
            }
            return StreamingServerResponse { writer in
                var encoder = CoordinatorEnvelopeEncoder()
                for try await envelope in request.messages where !envelope.isHeartbeat {
                    try await writer.write(
                        try encoder.welcome(
                            SessionWelcome(sessionID: "s\(index)", site: "site-a", heartbeatInterval: .seconds(10))))
                    if case .welcomeThenEnd = behaviour { break }
                }
                return [:]
            }
        }
    }

    func agent() throws -> ParticipantAgent {
        let features = Tensor(shape: [4, 2], scalars: [0, 1, 1, 0, 1, 1, 0, 0])
        let data = LocalData(train: try Dataset(features: features, labels: Tensor([0, 1, 1, 0]), classCount: 2))
        return ParticipantAgent(site: "site-a", data: ["data": data], softwareVersion: "test")
    }

    /// Runs a client against `coordinator` while `drive` moves the clock; returns how the
    /// client's run ended.
    func run(
        _ coordinator: ScriptedSessions, configuration: ParticipantClient.Configuration,
        drive: @Sendable () async throws -> Void
    ) async throws -> (any Error)? {
        let client = ParticipantClient(
            agent: try agent(), configuration: configuration, clock: coordinator.clock, logger: testLogger())
        let transport = InProcessTransport()
        return try await withGRPCServer(transport: transport.server, services: [coordinator]) { _ in
            try await withGRPCClient(transport: transport.client) { grpc in
                try await withThrowingTaskGroup(of: (any Error)?.self) { group in
                    group.addTask {
                        do {
                            try await client.run(using: grpc)
                            return nil
                        } catch {
                            return error
                        }
                    }
                    try await drive()
                    return try await group.next() ?? nil
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func aSilentCoordinatorIsLeftAfterThreeMissedHeartbeatsAndReconnectedTo()
        async throws
    {
        let clock = ManualClock()
        let (opened, openedSink) = AsyncStream.makeStream(of: Duration.self)
        let coordinator = ScriptedSessions(clock: clock, opened: openedSink) {
            $0 == 1 ? .welcomeThenSilence : .welcomeThenEnd
        }
        // A long welcome timeout, so that a deadline at 30 s can only be the one the Welcome set.
        let configuration = ParticipantClient.Configuration(
            backoffBase: .seconds(2), backoffCap: .seconds(60), welcomeTimeout: .seconds(1_000))
        let ended = try await run(coordinator, configuration: configuration) {
            var opens = opened.makeAsyncIterator()
            #expect(await opens.next() == .zero)
            // Welcomed at 0 with a 10 s interval: the silence deadline is 30 s.
            await clock.waitForSleepers { $0.contains(.seconds(10)) && $0.contains(.seconds(30)) }
            clock.advance(to: .seconds(30) - .milliseconds(1))
            clock.advance(to: .seconds(30))
            // Closed at 30 s, reopened after a backoff of at most 2 s.
            await clock.waitForSleepers { $0.contains { $0 > .seconds(30) && $0 <= .seconds(32) } }
            let backoff = try #require(clock.pendingDeadlines.first { $0 > .seconds(30) && $0 <= .seconds(32) })
            clock.advance(to: backoff)
            let second = await opens.next()
            #expect(second == backoff)
        }
        #expect(ended == nil, "\(String(describing: ended))")
    }

    @Test(.timeLimit(.minutes(1))) func aReplacedSessionIsRetriedABoundedNumberOfTimesThenStops() async throws {
        let clock = ManualClock()
        let (opened, openedSink) = AsyncStream.makeStream(of: Duration.self)
        let coordinator = ScriptedSessions(clock: clock, opened: openedSink) { _ in .replaced }
        let ended = try await run(
            coordinator,
            configuration: .init(
                backoffBase: .seconds(2), backoffCap: .seconds(60), welcomeTimeout: .seconds(1_000),
                replacedSessionRetries: 2)
        ) {
            var opens = opened.makeAsyncIterator()
            #expect(await opens.next() == .zero)
            for _ in 0..<2 {
                // The backoff (a session's welcome deadline is 1000 s away).
                let now = clock.now
                await clock.waitForSleepers { $0.contains { $0 > now && $0 < now + .seconds(500) } }
                let next = try #require(clock.pendingDeadlines.first { $0 > now && $0 < now + .seconds(500) })
                clock.advance(to: next)
                #expect(await opens.next() == next)
            }
        }
        let error = try #require(ended as? TesseraRuntimeError)
        #expect(error.code == .sessionRefused)
        #expect(error.message.contains("replaced") && error.message.contains("3 times"), "\(error.message)")
    }
}

/// How many sessions a scripted coordinator has opened, shared by its copies.
final class SessionCounter: Sendable {
    let value = Mutex(0)
}
