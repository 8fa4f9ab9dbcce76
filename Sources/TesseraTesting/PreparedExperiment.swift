import Foundation
public import Logging
public import TesseraCoordinator
public import TesseraFederation
public import TesseraSimulation
import TesseraTensor

/// One experiment, ready to run over any driver: its plan, initial model and the synthetic data
/// of every site, from an experiment file's text.
public struct PreparedExperiment: Sendable {
    public var config: ExperimentConfig
    public var plan: FederationPlan
    public var architecture: ModelArchitecture
    public var initialModel: [Float]
    public var data: ExperimentData

    public init(yaml: String) throws {
        config = try ExperimentConfig.parse(yaml: yaml, source: "runtime-test.yaml")
        data = try ExperimentData.load(config)
        architecture = try config.model.architecture(dataInputs: data.inputs, dataClasses: data.classes)
        plan = config.federationPlan(datasetName: ExperimentData.datasetName, architecture: architecture)
        initialModel = try architecture.build(seed: config.seed).parameters
    }

    /// One fresh agent per site, each holding that site's data, enforcing the file's
    /// `site_policy`, and (active-adversary setting) holding a signing certificate of a fresh
    /// in-memory federation CA.
    public func agents() throws -> [ParticipantAgent] {
        try ExperimentRunner.simulatedAgents(
            config: config, plan: plan, data: data, softwareVersion: "runtime-test", signing: .testFederation)
    }
}

extension SimulatedSigning {
    /// The in-memory federation CA every test harness shares: the agents of
    /// ``PreparedExperiment/agents()`` hold its credentials, and the harnesses' coordinators
    /// check them with its validator.
    public static let testFederation: SimulatedSigning = {
        do { return try SimulatedSigning() } catch { fatalError("cannot create the test federation CA: \(error)") }
    }()
}

extension CoordinatorService.Configuration {
    /// This configuration, checking signing certificates against the shared test federation CA
    /// unless it already has a verifier.
    public var withTestFederation: Self {
        var copy = self
        if copy.signingVerifier == nil { copy.signingVerifier = SimulatedSigning.testFederation.verifier }
        return copy
    }
}

/// A logger for tests: silent unless `TESSERA_TEST_LOG` is set.
public func testLogger(_ label: String = "tessera.runtime.test") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["TESSERA_TEST_LOG"] == nil ? .critical : .info
    return logger
}

/// The `site_policy` a synthetic experiment's sites need: the default one, relaxed only where the
/// experiment itself asks for what a default site refuses (plaintext rounds, a cohort of 2).
func syntheticSitePolicy(participants: Int, secure: Bool) -> String {
    var keys: [String] = []
    if !secure { keys += ["require_secure_aggregation: false", "share_metrics: per_site"] }
    if participants < 3 { keys.append("minimum_cohort: 2") }
    return keys.isEmpty ? "" : "site_policy: {\(keys.joined(separator: ", "))}"
}

/// A small synthetic experiment: logistic regression on IID data, every site in every round; a
/// round needs `minimum` contributions (default: every site).
public func syntheticYAML(
    name: String, participants: Int, rounds: Int, secure: Bool, evaluateEvery: Int, minimum: Int? = nil
) -> String {
    """
    name: \(name)
    seed: 11
    rounds: \(rounds)
    participants: \(participants)
    model: {preset: logistic_regression}
    dataset: {kind: synthetic_iid, max_samples_per_participant: 150, test_fraction: 0.2, standardise: true}
    partitioning: {scheme: natural}
    cohort: {fraction: 1.0, minimum: \(minimum ?? participants)}
    strategy: {name: fedavg}
    local_training: {epochs: 2, batch_size: 10, optimizer: sgd, learning_rate: 0.1}
    secure_aggregation: {enabled: \(secure)}
    evaluation: {every: \(evaluateEvery)}
    \(syntheticSitePolicy(participants: participants, secure: secure))
    """
}
