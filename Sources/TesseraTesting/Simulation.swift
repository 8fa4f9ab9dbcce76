public import Foundation
public import Logging
import TesseraCoordinator
public import TesseraFederation
public import TesseraSimulation
import TesseraTensor

/// How `tessera simulate` connects the coordinator and the simulated sites. The final model is
/// the same, to the byte, over every one: a simulation's result is a function of its
/// experiment file and seed.
public enum SimulationTransport: String, Sendable, CaseIterable {
    /// gRPC's in-process transport: the deployment's services and wire protocol, no sockets.
    case inProcess = "in-process"
    /// HTTP/2 with mutual TLS on 127.0.0.1, with a throwaway federation CA.
    case loopback
    /// Messages handed from the state machine to the agents directly (``InMemoryFederation``).
    case memory

    /// How the results describe it.
    public var summary: String {
        switch self {
        case .inProcess: "gRPC in-process"
        case .loopback: "gRPC HTTP/2 + mTLS (loopback)"
        case .memory: "in-memory"
        }
    }
}

extension ExperimentRunner {
    /// Runs one (variant-free) configuration over `transport` and writes its results and final
    /// model, as `tessera simulate` does.
    ///
    /// - Parameters:
    ///   - outputRoot: where relative output directories are resolved (the working directory by
    ///     default).
    ///   - progress: receives one line per event worth showing (setup, stages, rounds).
    ///   - logger: the coordinator's and the sites' logger (gRPC transports).
    public static func run(
        _ config: ExperimentConfig, transport: SimulationTransport, outputRoot: URL? = nil,
        progress: @escaping @Sendable (String) -> Void, logger: Logger
    ) async throws -> Report {
        if transport == .memory { return try run(config, outputRoot: outputRoot, progress: progress) }
        let prepared = try prepare(config, progress: progress)
        // The coordinator checks the simulated sites' signing certificates against their CA.
        let configuration = CoordinatorService.Configuration(signingVerifier: prepared.signing?.verifier)
        let outcome =
            transport == .loopback
            ? try await LoopbackFederation.run(
                plan: prepared.plan, initialModel: prepared.initialModel, strategy: prepared.strategy,
                participants: prepared.agents, configuration: configuration, logger: logger)
            : try await InProcessFederation.run(
                plan: prepared.plan, initialModel: prepared.initialModel, strategy: prepared.strategy,
                participants: prepared.agents, configuration: configuration, logger: logger)
        let written = try finish(
            prepared, records: outcome.records, finalModel: outcome.finalModel, finalVersion: outcome.finalVersion,
            transport: transport.summary, outputRoot: outputRoot)
        return Report(
            experiment: config.name, records: outcome.records, completedRounds: outcome.completedRounds,
            artifacts: written, seconds: Date().timeIntervalSince(prepared.startedAt))
    }
}
