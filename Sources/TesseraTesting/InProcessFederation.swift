import Foundation
import GRPCCore
import GRPCInProcessTransport
public import Logging
public import TesseraCoordinator
public import TesseraFederation
public import TesseraParticipant
public import TesseraTransport
public import Tracing

/// A whole federation in one process over gRPC's in-process transport: a ``CoordinatorService``
/// and one ``ParticipantClient`` per agent, speaking the real wire protocol (envelopes, chunks,
/// model store, rejections) without sockets or certificates.
///
/// Sites are identified by ``InProcessIdentityResolver`` tokens that this harness makes and
/// hands out; nothing else can connect. The experiment starts once every site is connected, so
/// the outcome does not depend on the order they connect in.
///
/// ```swift
/// let outcome = try await InProcessFederation.run(plan: plan, initialModel: w0, strategy: FedAvg(),
///                                                 participants: agents, logger: logger)
/// ```
public enum InProcessFederation {
    /// Runs the experiment to the end and returns the coordinator's outcome.
    ///
    /// - Parameters:
    ///   - configure: adjusts each site's client configuration; the identity metadata is set
    ///     afterwards.
    ///   - taps: the sites that misbehave, and how (see ``SiteTap``).
    ///   - clock: the time of the coordinator and of every site.
    ///   - persistence: where the coordinator commits its rounds (`nil`: in memory).
    ///   - tracer: traces the coordinator and every site (unless `configuration` or `configure`
    ///     names another).
    public static func run(
        plan: FederationPlan, initialModel: [Float], strategy: any FederatedStrategy, participants: [ParticipantAgent],
        configuration: CoordinatorService.Configuration = .init(),
        configure: @Sendable (SiteID, inout ParticipantClient.Configuration) -> Void = { _, _ in },
        taps: [SiteID: SiteTap] = [:], clock: any ServiceClock = MonotonicClock(),
        persistence: (any RoundPersistence)? = nil, tracer: (any Tracer)? = nil, logger: Logger
    ) async throws -> CoordinatorService.Outcome {
        var tokens: [String: SiteID] = [:]
        var clients: [ParticipantClient] = []
        let arrivals = SiteArrivals(expecting: participants.map(\.site))
        for agent in participants {
            let token = UUID().uuidString
            tokens[token] = agent.site
            var clientConfiguration = ParticipantClient.Configuration(
                backoffBase: .milliseconds(50), backoffCap: .seconds(1), tracer: tracer)
            configure(agent.site, &clientConfiguration)
            clientConfiguration.metadata = InProcessIdentityResolver.metadata(token: token)
            var tap = taps[agent.site] ?? SiteTap()
            let inspect = tap.inspectInbound
            let arrived = arrivals.observer(for: agent.site)
            tap.inspectInbound = { inbound in
                arrived(inbound)
                inspect?(inbound)
            }
            clients.append(
                ParticipantClient.tapped(
                    agent: agent, configuration: clientConfiguration, tap: tap, clock: clock, logger: logger))
        }
        var configuration = configuration
        configuration.tracer = configuration.tracer ?? tracer
        let coordinator = CoordinatorService(
            machine: CoordinatorStateMachine(plan: plan, initialModel: initialModel, strategy: strategy),
            identity: InProcessIdentityResolver(tokens: tokens), configuration: configuration.withTestFederation,
            persistence: persistence, clock: clock, logger: logger)
        let transport = InProcessTransport()
        return try await withGRPCServer(transport: transport.server, services: coordinator.services) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await coordinator.run(
                    alongside: clients.map { participant in { try await participant.run(using: client) } },
                    startingWhenAllOf: arrivals)
            }
        }
    }
}
