public import Foundation
public import TesseraFederation

/// Writes what a networked experiment produced, in the same layout as `tessera simulate`
/// (see ``ExperimentArtifacts``).
public enum FederationArtifacts {
    public typealias Paths = ExperimentArtifacts.Paths

    public static func write(
        _ outcome: CoordinatorService.Outcome, config: ExperimentConfig, architecture: ModelArchitecture,
        participants: Int,
        startedAt: Date, to directory: URL
    ) throws -> Paths {
        try ExperimentArtifacts.write(
            records: outcome.records, finalModel: outcome.finalModel, finalVersion: outcome.finalVersion,
            config: config,
            architecture: architecture, participants: participants, transport: "gRPC", startedAt: startedAt,
            to: directory)
    }
}
