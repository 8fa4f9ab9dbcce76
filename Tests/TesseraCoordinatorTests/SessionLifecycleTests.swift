import Foundation
import GRPCCore
import GRPCInProcessTransport
import TesseraCoordinator
import TesseraFederation
import TesseraParticipant
import TesseraSimulation
import TesseraTesting
import TesseraTransport
import TesseraWire
import Testing

/// Sessions that end, come back, or are duplicated: the coordinator counts every site once and
/// the experiment goes on.
@Suite struct SessionLifecycleTests {
    /// A coordinator on the in-process transport with one identity token per site.
    struct Harness {
        let experiment: PreparedExperiment
        let coordinator: CoordinatorService
        let tokens: [SiteID: String]

        init(participants: Int, rounds: Int) throws {
            experiment = try PreparedExperiment(
                yaml: syntheticYAML(
                    name: "lifecycle", participants: participants, rounds: rounds, secure: false, evaluateEvery: rounds)
            )
            var tokens: [SiteID: String] = [:]
            for site in experiment.data.sites { tokens[site.name] = UUID().uuidString }
            self.tokens = tokens
            coordinator = CoordinatorService(
                plan: experiment.plan, initialModel: experiment.initialModel,
                strategy: try experiment.config.makeStrategy(),
                identity: InProcessIdentityResolver(tokens: Dictionary(uniqueKeysWithValues: tokens.map { ($1, $0) })),
                configuration: CoordinatorService.Configuration().withTestFederation, clock: MonotonicClock(),
                logger: testLogger())
        }

        func client(_ index: Int, replacedSessionRetries: Int = 5) throws -> ParticipantClient {
            let agent = (try experiment.agents())[index]
            return ParticipantClient(
                agent: agent,
                configuration: .init(
                    backoffBase: .milliseconds(20), backoffCap: .milliseconds(100),
                    metadata: InProcessIdentityResolver.metadata(token: tokens[agent.site]!),
                    replacedSessionRetries: replacedSessionRetries),
                clock: MonotonicClock(), logger: testLogger())
        }
    }

    @Test(.timeLimit(.minutes(2))) func aSecondSessionOfTheSameSiteReplacesTheFirstAndIsCountedOnce() async throws {
        let harness = try Harness(participants: 2, rounds: 2)
        let site = harness.experiment.data.sites[0].name
        // With no retries, the replaced session stops at once (retries: ParticipantClientTests).
        let first = try harness.client(0, replacedSessionRetries: 0)
        let second = try harness.client(0)
        let other = try harness.client(1)
        let transport = InProcessTransport()
        let coordinator = harness.coordinator
        let outcome = try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await withThrowingTaskGroup(of: CoordinatorService.Outcome?.self) { group in
                    group.addTask { await coordinator.run() }
                    group.addTask {
                        // The replaced session stops instead of reconnecting.
                        await #expect(throws: TesseraRuntimeError.self) { try await first.run(using: client) }
                        return nil
                    }
                    await coordinator.waitUntil { $0.connectedSites.contains(site) }
                    group.addTask {
                        try await second.run(using: client)
                        return nil
                    }
                    await coordinator.waitUntil { $0.joins[site] == 2 }
                    #expect(await coordinator.connectedSites == [site])
                    group.addTask {
                        try await other.run(using: client)
                        return nil
                    }
                    var outcome: CoordinatorService.Outcome?
                    for try await result in group where result != nil { outcome = result }
                    return outcome!
                }
            }
        }
        #expect(outcome.completedRounds == 2)
        #expect(outcome.records.allSatisfy { $0.cohortSize == 2 && $0.contributors == 2 }, "\(outcome.records)")
        #expect(await coordinator.joins[site] == 2)
    }

    @Test(.timeLimit(.minutes(2))) func aDroppedSessionReconnectsWithBackoffAndTheExperimentCompletes() async throws {
        let harness = try Harness(participants: 2, rounds: 3)
        let site = harness.experiment.data.sites[0].name
        let clients = [try harness.client(0), try harness.client(1)]
        let transport = InProcessTransport()
        let coordinator = harness.coordinator
        let outcome = try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await withThrowingTaskGroup(of: CoordinatorService.Outcome?.self) { group in
                    group.addTask { await coordinator.run() }
                    for participant in clients {
                        group.addTask {
                            try await participant.run(using: client)
                            return nil
                        }
                    }
                    await coordinator.waitUntil { $0.connectedSites.count == 2 }
                    await coordinator.endSession(of: site, reason: "test: connection dropped")
                    var outcome: CoordinatorService.Outcome?
                    for try await result in group where result != nil { outcome = result }
                    return outcome!
                }
            }
        }
        #expect(await coordinator.joins[site] == 2, "the site did not reconnect")
        #expect(outcome.records.count == 3)
        let last = try #require(outcome.records.last)
        #expect(last.status == .completed && last.contributors == 2, "\(outcome.records)")
    }
}

extension SessionLifecycleTests {
    /// A site that says Hello and then nothing (a half-open connection) is closed once it has
    /// been silent for the missed heartbeats (3 × 10 s), at the first liveness check after that
    /// (40 s: at 30 s it has been silent exactly the limit, not more), and counted gone.
    @Test(.timeLimit(.minutes(1))) func aSilentSessionIsClosedAfterMissedHeartbeats() async throws {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "silent", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let site = experiment.data.sites[0].name
        let clock = ManualClock()
        let coordinator = CoordinatorService(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(),
            identity: InProcessIdentityResolver(tokens: ["token": site]),
            configuration: CoordinatorService.Configuration(heartbeatInterval: .seconds(10), missedHeartbeats: 3)
                .withTestFederation, clock: clock,
            logger: testLogger())
        let transport = InProcessTransport()
        let status = try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withThrowingTaskGroup(of: RPCError.Code?.self) { group in
                group.addTask {
                    _ = await coordinator.run()
                    return nil
                }
                group.addTask {
                    try await withGRPCClient(transport: transport.client) { client in
                        let sessions = Tessera_V1_ParticipantSession.Client(wrapping: client)
                        return try await sessions.session(
                            metadata: InProcessIdentityResolver.metadata(token: "token"),
                            requestProducer: { writer in
                                var encoder = ParticipantEnvelopeEncoder()
                                try await writer.write(try encoder.hello(ParticipantHello(datasets: ["data": 10])))
                                await suspendUntilCancelled()  // never a heartbeat
                            },
                            onResponse: { response in
                                do {
                                    for try await _ in response.messages {}
                                    return RPCError.Code?.none
                                } catch let error as RPCError {
                                    return error.code
                                }
                            })
                    }
                }
                await coordinator.waitUntil { $0.connectedSites == [site] }
                // Liveness checks at 10, 20 and 30 s find the session silent for at most 30 s.
                clock.advance(to: .seconds(30))
                await clock.waitForSleeper(until: .seconds(40))
                #expect(await coordinator.connectedSites == [site])
                clock.advance(to: .seconds(40))
                await coordinator.waitUntil { $0.connectedSites.isEmpty }
                let code = try await group.next() ?? nil
                coordinator.stop()
                try await group.waitForAll()
                return code
            }
        }
        #expect(status == .unavailable)
        #expect(await coordinator.joins[site] == 1)
        #expect(await coordinator.connectedSites.isEmpty)
    }
}
