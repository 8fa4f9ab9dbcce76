import Foundation
import TesseraFederation
import TesseraTensor

/// Writes what a networked experiment produced, in the same layout as `tessera simulate`:
/// results (CSV, JSON, HTML report) and the final model as safetensors.
public enum FederationArtifacts {
    public struct Paths: Sendable {
        public var results: ResultsWriter.Paths
        public var model: URL
    }

    public static func write(
        _ outcome: CoordinatorService.Outcome, config: ExperimentConfig, architecture: ModelArchitecture, participants: Int,
        startedAt: Date, to directory: URL
    ) throws -> Paths {
        let results = ExperimentResults(
            experiment: config.name, configHash: config.configHash, seed: config.seed,
            startedAt: ISO8601DateFormatter().string(from: startedAt), rounds: outcome.records,
            summary: [
                "model": architecture.summary,
                "strategy": config.strategy.name.rawValue,
                "secure aggregation": config.secureAggregation.enabled ? "on" : "off",
                "participants": String(participants),
                "transport": "gRPC",
                "local training": "E = \(config.localTraining.epochs), B = \(config.localTraining.batchSize), "
                    + "\(config.localTraining.optimizer.rawValue) lr \(config.localTraining.learningRate)",
            ])
        let paths = try ResultsWriter.write(results, to: directory)
        let model = try architecture.build(seed: config.seed)
        model.parameters = outcome.finalModel
        let modelPath = directory.appendingPathComponent("model.safetensors")
        try model.saveSafetensors(
            to: modelPath,
            metadata: [
                "experiment": config.name, "config_hash": config.configHash, "version": outcome.finalVersion.description,
                "architecture": architecture.summary,
            ])
        return Paths(results: paths, model: modelPath)
    }
}
