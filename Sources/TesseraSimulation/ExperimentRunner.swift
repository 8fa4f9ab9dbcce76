import Foundation
import TesseraData
import TesseraFederation
import TesseraTensor

/// Runs an experiment file end to end in one process: data, participants, the coordinator's
/// rounds through the in-memory driver, then the results (CSV, JSON, HTML report) and the
/// final model (safetensors) in the experiment's output directory.
public enum ExperimentRunner {
    public struct Report: Sendable {
        public var experiment: String
        public var outcome: InMemoryFederation.Outcome
        public var paths: ResultsWriter.Paths
        public var modelPath: URL
        public var seconds: Double
    }

    /// Runs one (variant-free) configuration.
    ///
    /// - Parameters:
    ///   - outputRoot: where relative output directories are resolved (the working directory by
    ///     default).
    ///   - progress: receives one line per event worth showing (setup, stages, rounds).
    public static func run(
        _ config: ExperimentConfig, outputRoot: URL? = nil, progress: @escaping (String) -> Void = { print($0) }
    ) throws -> Report {
        let started = Date()
        try config.validate()
        if config.secureAggregation.enabled && config.secureAggregation.activeAdversary {
            throw ConfigError(
                .conflict, path: "secure_aggregation.active_adversary",
                "the active-adversary setting (signed keys and a consistency check) is not wired into the runtime yet; "
                    + "set active_adversary: false")
        }
        progress("experiment \(config.name) (config \(config.configHash))")
        let data = try ExperimentData.load(config)
        progress("data: \(data.sites.count) participants, \(data.inputs) features, \(data.classes) classes")
        for line in data.summary.split(separator: "\n").prefix(40) { progress("  \(line)") }

        let architecture = try config.model.architecture(dataInputs: data.inputs, dataClasses: data.classes)
        let plan = config.federationPlan(datasetName: ExperimentData.datasetName, architecture: architecture)
        let initial = try architecture.build(seed: config.seed)
        let strategy = try config.makeStrategy()
        let agents = data.sites.map { site in
            ParticipantAgent(
                site: site.name, data: [ExperimentData.datasetName: site.data], softwareVersion: "tessera-simulate",
                simulationSeed: config.seed)
        }
        let federation = InMemoryFederation(
            plan: plan, initialModel: initial.parameters, strategy: strategy, participants: agents, log: progress)
        let outcome = federation.run()

        let root = outputRoot ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let directory =
            config.resolvedOutputDirectory.hasPrefix("/")
            ? URL(fileURLWithPath: config.resolvedOutputDirectory)
            : root.appendingPathComponent(config.resolvedOutputDirectory)
        let results = ExperimentResults(
            experiment: config.name, configHash: config.configHash, seed: config.seed,
            startedAt: ISO8601DateFormatter().string(from: started), rounds: outcome.records,
            summary: [
                "model": architecture.summary,
                "strategy": config.strategy.name.rawValue,
                "secure aggregation": config.secureAggregation.enabled ? "on" : "off",
                "participants": String(data.sites.count),
                "local training": "E = \(config.localTraining.epochs), B = \(config.localTraining.batchSize), "
                    + "\(config.localTraining.optimizer.rawValue) lr \(config.localTraining.learningRate)"
                    + (config.localTraining.proximalMu > 0 ? ", μ = \(config.localTraining.proximalMu)" : ""),
            ])
        let paths = try ResultsWriter.write(results, to: directory)
        initial.parameters = outcome.finalModel
        let modelPath = directory.appendingPathComponent("model.safetensors")
        try initial.saveSafetensors(
            to: modelPath,
            metadata: [
                "experiment": config.name, "config_hash": config.configHash,
                "version": outcome.published.last?.version.description ?? "\(plan.versionMajor).\(plan.versionMinor).0",
                "architecture": architecture.summary,
            ])
        return Report(
            experiment: config.name, outcome: outcome, paths: paths, modelPath: modelPath,
            seconds: Date().timeIntervalSince(started))
    }
}
