import Foundation
public import Logging
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

    /// One fresh agent per site, each holding that site's data.
    public func agents() -> [ParticipantAgent] {
        data.sites.map {
            ParticipantAgent(
                site: $0.name, data: [ExperimentData.datasetName: $0.data], softwareVersion: "runtime-test",
                simulationSeed: config.seed)
        }
    }
}

/// A logger for tests: silent unless `TESSERA_TEST_LOG` is set.
public func testLogger(_ label: String = "tessera.runtime.test") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["TESSERA_TEST_LOG"] == nil ? .critical : .info
    return logger
}

/// A small synthetic experiment: logistic regression on IID data, every site in every round.
public func syntheticYAML(name: String, participants: Int, rounds: Int, secure: Bool, evaluateEvery: Int) -> String {
    """
    name: \(name)
    seed: 11
    rounds: \(rounds)
    participants: \(participants)
    model: {preset: logistic_regression}
    dataset: {kind: synthetic_iid, max_samples_per_participant: 150, test_fraction: 0.2, standardise: true}
    partitioning: {scheme: natural}
    cohort: {fraction: 1.0, minimum: \(participants)}
    strategy: {name: fedavg}
    local_training: {epochs: 2, batch_size: 10, optimizer: sgd, learning_rate: 0.1}
    secure_aggregation: {enabled: \(secure)}
    evaluation: {every: \(evaluateEvery)}
    """
}
