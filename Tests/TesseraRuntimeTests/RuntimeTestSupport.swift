import Foundation
import Logging
import TesseraFederation
import TesseraSimulation
import TesseraTensor

/// One experiment, ready to run over any driver.
struct PreparedExperiment {
    var config: ExperimentConfig
    var plan: FederationPlan
    var architecture: ModelArchitecture
    var initialModel: [Float]
    var data: ExperimentData

    init(yaml: String) throws {
        config = try ExperimentConfig.parse(yaml: yaml, source: "runtime-test.yaml")
        data = try ExperimentData.load(config)
        architecture = try config.model.architecture(dataInputs: data.inputs, dataClasses: data.classes)
        plan = config.federationPlan(datasetName: ExperimentData.datasetName, architecture: architecture)
        initialModel = try architecture.build(seed: config.seed).parameters
    }

    func agents() -> [ParticipantAgent] {
        data.sites.map {
            ParticipantAgent(
                site: $0.name, data: [ExperimentData.datasetName: $0.data], softwareVersion: "runtime-test",
                simulationSeed: config.seed)
        }
    }
}

func testLogger(_ label: String = "tessera.runtime.test") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["TESSERA_TEST_LOG"] == nil ? .critical : .info
    return logger
}

func syntheticYAML(name: String, participants: Int, rounds: Int, secure: Bool, evaluateEvery: Int) -> String {
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
