import Foundation
import GRPCCore
import TesseraCoordinator
import TesseraFederation
import TesseraParticipant
import TesseraSecAgg
import TesseraTensor
import TesseraTesting
import TesseraTransport
import TesseraWire
import Testing

/// The participant as a long-running service: one process, one client loop per site, serving
/// experiment after experiment and outliving its coordinator.
@Suite("ParticipantService: a site serves experiment after experiment and outlives its coordinator")
struct ParticipantServiceTests {
    /// Three sites whose session loops run for the whole test, in service mode, against whatever
    /// coordinator `link` serves.
    struct Sites {
        let agents: [ParticipantAgent]
        let clients: [ParticipantClient]
        let identity: InProcessIdentityResolver

        init(_ agents: [ParticipantAgent], tap: SiteTap = SiteTap()) {
            var tokens: [String: SiteID] = [:]
            var clients: [ParticipantClient] = []
            for agent in agents {
                let token = UUID().uuidString
                tokens[token] = agent.site
                let configuration = ParticipantClient.Configuration(
                    backoffBase: .milliseconds(20), backoffCap: .milliseconds(200), reconnectAfterSessionEnds: true,
                    metadata: InProcessIdentityResolver.metadata(token: token))
                clients.append(
                    .tapped(
                        agent: agent, configuration: configuration, tap: tap, clock: MonotonicClock(),
                        logger: testLogger()))
            }
            self.agents = agents
            self.clients = clients
            identity = InProcessIdentityResolver(tokens: tokens)
        }

        /// A coordinator for `experiment` whose public randomness comes from the system, as the
        /// live coordinator's does: sites refuse a SecAgg round id they have used, and ids drawn
        /// from one seed repeat from one run of it to the next.
        func coordinator(for experiment: PreparedExperiment) throws -> CoordinatorService {
            var plan = experiment.plan
            plan.publicRandomness = .system
            return CoordinatorService(
                plan: plan, initialModel: experiment.initialModel,
                strategy: try experiment.config.makeStrategy(), identity: identity,
                configuration: CoordinatorService.Configuration().withTestFederation, clock: MonotonicClock(),
                logger: testLogger())
        }

        /// Runs every site's loop while `body` runs coordinators on `link`, then stops the sites.
        func serve<Value: Sendable>(
            _ body: @Sendable (RestartableInProcessTransport) async throws -> Value
        ) async throws -> Value {
            let link = RestartableInProcessTransport()
            let clients = clients
            // The sites train concurrently and are the parallelism (see `CoordinatorService.run(alongside:)`).
            return try await TensorRuntime.withThreadCount(1) {
                try await withGRPCClient(transport: link) { grpc in
                    try await withThrowingTaskGroup(of: Value?.self) { group in
                        for client in clients {
                            group.addTask {
                                try await client.run(using: grpc)
                                return nil
                            }
                        }
                        let value = try await body(link)
                        group.cancelAll()
                        try await group.waitForAll()
                        return value
                    }
                }
            }
        }
    }

    static func yaml(_ name: String, rounds: Int, model: String = "{preset: logistic_regression}") -> String {
        syntheticYAML(name: name, participants: 3, rounds: rounds, secure: true, evaluateEvery: rounds)
            .replacingOccurrences(of: "model: {preset: logistic_regression}", with: "model: \(model)")
    }

    /// One process serves two experiments in a row, each with secure aggregation and a model of
    /// its own: the first coordinator ends its experiment and goes, the next one's experiment
    /// finds the same site loops waiting, and they take part from its first round to its last.
    @Test(.timeLimit(.minutes(2)))
    func oneProcessServesTwoExperimentsInARow() async throws {
        let first = try PreparedExperiment(yaml: Self.yaml("first", rounds: 2))
        let second = try PreparedExperiment(yaml: Self.yaml("second", rounds: 2, model: "{preset: mlp, hidden: [6]}"))
        let sites = Sites(try first.agents())
        let a = try sites.coordinator(for: first)
        let b = try sites.coordinator(for: second)
        let (outcomeA, outcomeB) = try await sites.serve { link in
            let outcomeA = try await link.serving(a.services) { await a.run() }
            let outcomeB = try await link.serving(b.services) { await b.run() }
            return (outcomeA, outcomeB)
        }
        for (outcome, name) in [(outcomeA, "first"), (outcomeB, "second")] {
            #expect(outcome.completedRounds == 2, "\(name): \(outcome.records)")
            #expect(
                outcome.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(name)")
            #expect(outcome.rejections.isEmpty, "\(name): \(outcome.rejections)")
        }
        #expect(outcomeB.finalModel.count == second.initialModel.count)
        #expect(outcomeB.finalModel.count != outcomeA.finalModel.count, "the second experiment has its own model")
        #expect(sites.agents.allSatisfy { $0.experimentID == "second" })
        let joins = await b.joins
        #expect(Set(joins.keys) == Set(sites.agents.map(\.site)))
    }

    /// The coordinator goes away in the middle of an experiment (after round 1, while round 2
    /// runs) and stays away while the sites keep dialling; when it comes back the same loops
    /// reconnect and take part in the whole experiment again.
    @Test(.timeLimit(.minutes(2)))
    func aSiteOutlivesItsCoordinatorAndRejoinsWhenItComesBack() async throws {
        let experiment = try PreparedExperiment(yaml: Self.yaml("restarted", rounds: 3))
        let (roundTwo, roundTwoBegan) = AsyncStream.makeStream(of: Void.self)
        let tap = SiteTap(inspectInbound: { inbound in
            if case .train(let spec) = inbound, spec.round == 2 { roundTwoBegan.yield() }
        })
        let sites = Sites(try experiment.agents(), tap: tap)
        let before = try sites.coordinator(for: experiment)
        let after = try sites.coordinator(for: experiment)
        let siteCount = sites.clients.count
        let (stopped, resumed, refused) = try await sites.serve { link in
            let stopped = try await link.serving(before.services) {
                async let outcome = before.run()
                for await _ in roundTwo { break }
                before.stop()
                return await outcome
            }
            // Down: every site keeps dialling, each attempt refused, and none gives up.
            await link.waitForRefusedStreams(atLeast: 2 * siteCount)
            let resumed = try await link.serving(after.services) { await after.run() }
            return (stopped, resumed, link.refusedStreams)
        }
        #expect(stopped.completedRounds >= 1 && stopped.completedRounds < 3, "\(stopped.records)")
        #expect(refused >= 2 * siteCount)
        #expect(resumed.completedRounds == 3, "\(resumed.records)")
        #expect(resumed.records.allSatisfy { $0.status == .completed && $0.contributors == 3 }, "\(resumed.records)")
        #expect(resumed.rejections.isEmpty, "\(resumed.rejections)")
    }

    /// A SecAgg request or a leave-round notice of an experiment the site did not accept is
    /// refused with a reason that names both experiments, before and after it accepted one; the
    /// site's own round is untouched.
    @Test(.timeLimit(.minutes(1)))
    func aMessageOfAnExperimentTheSiteDidNotAcceptIsRefused() async throws {
        let model = try Victim.globalModel()
        let permissive = SitePolicy(requireSecureAggregation: false, shareMetrics: .perSite)
        let shareKeys = SecAggMessage.shareKeysRequest(ShareKeysRequest(roundID: 7, recipient: 1, neighbours: []))
        var reasons: [String] = []
        var trained: ParticipantMessage?
        _ = try await ScriptedCoordinator.attack(try Victim.agent(policy: permissive)) { coordinator in
            try coordinator.send(.secAgg(round: 1, shareKeys), experimentID: "stranger")
            if case .failed(1, let reason) = try await coordinator.reply() { reasons.append(reason) }
            try coordinator.send(Victim.train(round: 1, parameters: model, secure: nil))
            trained = try await coordinator.reply()
            try coordinator.send(.secAgg(round: 1, shareKeys), experimentID: "stranger")
            if case .failed(1, let reason) = try await coordinator.reply() { reasons.append(reason) }
            try coordinator.send(.leaveRound(round: 1, reason: "test"), experimentID: "stranger")
            if case .failed(1, let reason) = try await coordinator.reply() { reasons.append(reason) }
        }
        guard case .update(1, _, _) = trained else {
            Issue.record("the site did not take its own experiment's task: \(String(describing: trained))")
            return
        }
        try #require(reasons.count == 3, "\(reasons)")
        #expect(reasons[0].contains("experiment \"stranger\", which this site did not accept"))
        #expect(reasons[0].contains("it has accepted no task yet"))
        let current = "it takes part in \"\(ScriptedCoordinator.experimentID)\""
        #expect(reasons[1].contains("SecAgg") && reasons[1].contains(current), "\(reasons[1])")
        #expect(reasons[2].contains("leave-round notice") && reasons[2].contains(current), "\(reasons[2])")
    }

    /// Each experiment keeps its own evaluation ledger: a coordinator that takes the site to
    /// another experiment and back gets no further evaluation of the first one's round.
    @Test(.timeLimit(.minutes(1)))
    func goingToAnotherExperimentAndBackBuysNoFurtherEvaluation() async throws {
        let model = try Victim.globalModel()
        let rosters = try (0..<3).map { offset in
            try Roster(
                roundID: 0xC0_00E0 + UInt64(offset), site: Victim.name, metricCount: SecureMetricsLayout.evaluation)
        }
        func evaluate(_ experiment: String, roster: Roster) -> CoordinatorMessage {
            .evaluate(
                EvaluateInstruction(
                    experimentID: experiment, round: 1, modelVersion: ModelVersion(major: 1, minor: 1, patch: 0),
                    architecture: Victim.architecture, datasetName: Victim.datasetName, parameters: model,
                    secure: roster.assignment))
        }
        var answers: [ParticipantMessage] = []
        let first = ScriptedCoordinator.experimentID
        _ = try await ScriptedCoordinator.attack(try Victim.agent()) { coordinator in
            for (experiment, roster) in zip([first, "other", first], rosters) {
                try coordinator.send(evaluate(experiment, roster: roster), experimentID: experiment)
                answers.append(try await coordinator.reply())
            }
        }
        try #require(answers.count == 3)
        #expect(answers[0].advertisedKeys != nil, "\(answers[0])")
        #expect(answers[1].advertisedKeys != nil, "another experiment has a ledger of its own: \(answers[1])")
        #expect(answers[2].refusal?.contains("max_evaluations_per_round") == true, "\(answers[2])")
    }
}
