public import Foundation
import TesseraCrypto
import TesseraSupport
import TesseraTensor

/// Writes everything an experiment run leaves behind, in one layout whatever ran it (the
/// in-memory driver, the in-process gRPC federation, or `tessera-coordinator`): `rounds.csv`,
/// `results.json`, `report.html` and the final model as `model.safetensors`.
public enum ExperimentArtifacts {
    public struct Paths: Sendable {
        public var results: ResultsWriter.Paths
        public var model: URL
        /// The SHA-256 of the model file (lowercase hex): what the model is addressed by. A
        /// simulation gives the same digest for the same experiment file and seed.
        public var modelSHA256: String
    }

    public static func write(
        records: [RoundRecord], finalModel: [Float], finalVersion: ModelVersion, config: ExperimentConfig,
        architecture: ModelArchitecture, participants: Int, transport: String, startedAt: Date, to directory: URL
    ) throws -> Paths {
        let training = config.localTraining
        var results = ExperimentResults(
            experiment: config.name, configHash: config.configHash, seed: config.seed,
            startedAt: ISO8601DateFormatter().string(from: startedAt), rounds: records,
            summary: [
                "model": architecture.summary,
                "strategy": config.strategy.name.rawValue,
                "secure aggregation": config.secureAggregation.enabled ? "on" : "off",
                "participants": String(participants),
                "transport": transport,
                "local training": "E = \(training.epochs), B = \(training.batchSize), "
                    + "\(training.optimizer.rawValue) lr \(training.learningRate)"
                    + (training.proximalMu > 0 ? ", μ = \(training.proximalMu)" : ""),
            ])
        if let central = config.centralTestSetSummary { results.summary["central test set"] = central }
        let paths = try ResultsWriter.write(results, to: directory)
        let model = try architecture.build(seed: config.seed)
        model.parameters = finalModel
        let modelPath = directory.appendingPathComponent("model.safetensors")
        try model.saveSafetensors(
            to: modelPath,
            metadata: [
                "experiment": config.name, "config_hash": config.configHash, "version": finalVersion.description,
                "architecture": architecture.summary,
            ])
        let digest = Hex.encode(SHA256.hash([UInt8](try Data(contentsOf: modelPath))))
        return Paths(results: paths, model: modelPath, modelSHA256: digest)
    }
}
