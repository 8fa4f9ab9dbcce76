public import Foundation
import TesseraData
public import TesseraFederation
import TesseraTensor

/// Runs an experiment file end to end in one process: data, participants, the coordinator's
/// rounds through the in-memory driver, then the results (CSV, JSON, HTML report) and the
/// final model (safetensors) in the experiment's output directory.
public enum ExperimentRunner {
    public struct Report: Sendable {
        public var experiment: String
        public var records: [RoundRecord]
        public var completedRounds: Int
        public var paths: ResultsWriter.Paths
        public var modelPath: URL
        /// The SHA-256 of the model file: the same for the same experiment file and seed.
        public var modelSHA256: String
        public var seconds: Double
        /// The in-memory driver's outcome (transcript, rejections); `nil` for other transports.
        public var outcome: InMemoryFederation.Outcome?

        public init(
            experiment: String, records: [RoundRecord], completedRounds: Int, artifacts: ExperimentArtifacts.Paths,
            seconds: Double, outcome: InMemoryFederation.Outcome? = nil
        ) {
            self.experiment = experiment
            self.records = records
            self.completedRounds = completedRounds
            self.paths = artifacts.results
            self.modelPath = artifacts.model
            self.modelSHA256 = artifacts.modelSHA256
            self.seconds = seconds
            self.outcome = outcome
        }
    }

    /// Everything a run needs, built from an experiment file: the participants with their
    /// data, the plan, the initial model and the strategy.
    public struct Prepared: @unchecked Sendable {
        public var config: ExperimentConfig
        public var data: ExperimentData
        public var architecture: ModelArchitecture
        public var plan: FederationPlan
        public var initialModel: [Float]
        public var strategy: any FederatedStrategy
        /// One agent per site (they own reusable training buffers: use them from one task).
        public var agents: [ParticipantAgent]
        /// The sites' signing credentials (active-adversary setting): a coordinator of these
        /// sites checks their certificates with `signing.verifier`.
        public var signing: SimulatedSigning?
        public var startedAt: Date
    }

    /// Validates the configuration, loads and partitions the data, and builds the participants.
    public static func prepare(
        _ config: ExperimentConfig, progress: (String) -> Void = { print($0) }
    ) throws -> Prepared {
        let started = Date()
        try config.validateForRuntime()
        progress("experiment \(config.name) (config \(config.configHash))")
        let data = try ExperimentData.load(config)
        progress("data: \(data.sites.count) participants, \(data.inputs) features, \(data.classes) classes")
        for line in data.summary.split(separator: "\n").prefix(40) { progress("  \(line)") }
        let architecture = try config.model.architecture(dataInputs: data.inputs, dataClasses: data.classes)
        var plan = config.federationPlan(datasetName: ExperimentData.datasetName, architecture: architecture)
        plan.centralEvaluator = try config.makeCentralEvaluator(architecture: architecture)
        if let central = plan.centralEvaluator { progress(central.description) }
        if config.dataset.testFraction == 0 {
            progress(
                "dataset.test_fraction is 0: the sites hold no rows out and do not evaluate"
                    + (plan.centralEvaluator == nil
                        ? "; name a central test set in evaluation.dataset for accuracy" : ""))
        }
        let signing = plan.secureAggregation?.activeAdversary == true ? try SimulatedSigning() : nil
        let agents = try simulatedAgents(
            config: config, plan: plan, data: data, softwareVersion: "tessera-simulate", signing: signing)
        return Prepared(
            config: config, data: data, architecture: architecture, plan: plan,
            initialModel: try architecture.build(seed: config.seed).parameters, strategy: try config.makeStrategy(),
            agents: agents, signing: signing, startedAt: started)
    }

    /// One agent per simulated site, each enforcing the experiment's `site_policy` and, in the
    /// active-adversary setting, holding a signing certificate from an in-memory federation CA.
    ///
    /// - Parameter signing: the credentials to use; `nil` makes a fresh in-memory CA.
    public static func simulatedAgents(
        config: ExperimentConfig, plan: FederationPlan, data: ExperimentData, softwareVersion: String,
        signing: SimulatedSigning? = nil
    ) throws -> [ParticipantAgent] {
        let signing = try signing ?? (plan.secureAggregation?.activeAdversary == true ? SimulatedSigning() : nil)
        return try data.sites.map { site in
            ParticipantAgent(
                site: site.name, data: [ExperimentData.datasetName: site.data], softwareVersion: softwareVersion,
                policy: config.sitePolicy, signer: try signing?.signer(for: site.name),
                credentialVerifier: signing?.verifier, simulationSeed: config.seed)
        }
    }

    /// Writes the results and the final model of a prepared run.
    public static func finish(
        _ prepared: Prepared, records: [RoundRecord], finalModel: [Float], finalVersion: ModelVersion,
        transport: String,
        outputRoot: URL?
    ) throws -> ExperimentArtifacts.Paths {
        let config = prepared.config
        let root = outputRoot ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let directory =
            config.resolvedOutputDirectory.hasPrefix("/")
            ? URL(fileURLWithPath: config.resolvedOutputDirectory)
            : root.appendingPathComponent(config.resolvedOutputDirectory)
        return try ExperimentArtifacts.write(
            records: records, finalModel: finalModel, finalVersion: finalVersion, config: config,
            architecture: prepared.architecture, participants: prepared.data.sites.count, transport: transport,
            startedAt: prepared.startedAt, to: directory)
    }

    /// Runs one (variant-free) configuration through the in-memory driver.
    ///
    /// - Parameters:
    ///   - outputRoot: where relative output directories are resolved (the working directory by
    ///     default).
    ///   - progress: receives one line per event worth showing (setup, stages, rounds).
    public static func run(
        _ config: ExperimentConfig, outputRoot: URL? = nil, progress: @escaping (String) -> Void = { print($0) }
    ) throws -> Report {
        let prepared = try prepare(config, progress: progress)
        let federation = InMemoryFederation(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: prepared.strategy,
            participants: prepared.agents, log: progress)
        // One OpenBLAS thread, as in the gRPC harnesses: how a product is split over threads can
        // change its rounding, and the model must not depend on the transport or the core count.
        let threads = TensorRuntime.threadCount
        TensorRuntime.setThreadCount(1)
        let outcome = federation.run()
        TensorRuntime.setThreadCount(threads)
        let finalVersion =
            outcome.published.last?.version
            ?? ModelVersion(major: prepared.plan.versionMajor, minor: prepared.plan.versionMinor, patch: 0)
        let written = try finish(
            prepared, records: outcome.records, finalModel: outcome.finalModel, finalVersion: finalVersion,
            transport: "in-memory", outputRoot: outputRoot)
        return Report(
            experiment: config.name, records: outcome.records, completedRounds: outcome.completedRounds,
            artifacts: written, seconds: Date().timeIntervalSince(prepared.startedAt), outcome: outcome)
    }
}
