public import Foundation
import TesseraSecAgg
import Yams

/// One experiment: everything `tessera validate`, `tessera simulate` and `tessera submit` need,
/// read from a YAML file.
///
/// ```yaml
/// name: quickstart
/// seed: 7
/// rounds: 20
/// participants: 5
/// model: {preset: logistic_regression}
/// dataset: {kind: clinical_risk, paths: [...], standardise: true}
/// partitioning: {scheme: natural}
/// strategy: {name: fedavg}
/// local_training: {epochs: 2, batch_size: 32, learning_rate: 0.05}
/// secure_aggregation: {enabled: true}
/// ```
///
/// Every key has a documented default (the initializer's), so a file states only what differs.
/// Decoding is strict: an unknown or misspelt key, at any depth, is an error naming its path
/// and the accepted keys; a value of the wrong type or out of range names its path and what is
/// accepted; and ``validate()`` checks the combinations (cohort bounds, robust aggregation under
/// secure aggregation, quantization overflow, secure-aggregation feasibility). A researcher
/// never learns in round 37 that a setting was ignored.
///
/// A file may hold several arms of one comparison under `variants:` (see ``ExperimentVariant``).
public struct ExperimentConfig: Sendable, Hashable, Codable {
    /// What the coordinator does when a round fails (too few contributions before a deadline,
    /// secure aggregation could not unmask, the strategy refused the updates).
    public enum RoundFailurePolicy: String, ConfigChoice {
        /// Record the failure, keep the current global model, and run the next round.
        case `continue`
        /// Record the failure and end the experiment.
        case stop
    }

    /// Names the results directory and appears in every log line and model version. Letters,
    /// digits, `.`, `_` and `-`. Default `experiment`.
    public var name: String
    /// The seed of every random choice (initial model, partitions, selection, masks' public
    /// graph): the same file gives the same run. Default 0.
    public var seed: UInt64
    /// Training rounds. Default 10.
    public var rounds: Int
    /// Simulated participants (`tessera simulate`); under `natural` partitioning, the number of
    /// sites in the data. Default 10.
    public var participants: Int
    public var model: ModelConfig
    public var dataset: DatasetConfig
    public var partitioning: PartitioningConfig
    public var cohort: CohortConfig
    public var deadlines: DeadlinesConfig
    public var strategy: StrategyConfig
    public var localTraining: LocalTrainingConfig
    public var secureAggregation: SecureAggregationConfig
    public var evaluation: EvaluationConfig
    public var updateLimits: UpdateLimitsConfig
    /// Differential privacy of the published models; `nil` (default) for none.
    public var privacy: PrivacyConfig?
    /// Where results go; `nil` (default) means `results/<name>`. Relative to the working
    /// directory of the command, like any output option.
    public var outputDirectory: String?
    /// Default `continue`: one failed round (a site that dropped at the wrong moment) should
    /// not end a long experiment; the failure is recorded in the results.
    public var onRoundFailure: RoundFailurePolicy
    /// What the simulated sites of `tessera simulate` enforce, whatever the coordinator asks
    /// (the `site_policy:` section, with the keys of a site file's `policy:`). Default: the
    /// policy a real site runs with, so a simulation refuses what a deployment would.
    public var sitePolicy: SitePolicy

    /// The arms of the comparison, when the file has `variants:`; each is a complete, validated
    /// configuration. Not part of the encoding or of ``configHash``: each arm has its own.
    public var variants: [ExperimentVariant]
    /// The directory relative dataset paths are resolved against: the experiment file's, when
    /// loaded with ``load(from:)``; `nil` means the working directory. Not part of the file.
    public var baseDirectory: String?

    public init(
        name: String = "experiment", seed: UInt64 = 0, rounds: Int = 10, participants: Int = 10,
        model: ModelConfig = ModelConfig(), dataset: DatasetConfig = DatasetConfig(),
        partitioning: PartitioningConfig = PartitioningConfig(), cohort: CohortConfig = CohortConfig(),
        deadlines: DeadlinesConfig = DeadlinesConfig(), strategy: StrategyConfig = StrategyConfig(),
        localTraining: LocalTrainingConfig = LocalTrainingConfig(),
        secureAggregation: SecureAggregationConfig = SecureAggregationConfig(),
        evaluation: EvaluationConfig = EvaluationConfig(), updateLimits: UpdateLimitsConfig = UpdateLimitsConfig(),
        privacy: PrivacyConfig? = nil, outputDirectory: String? = nil,
        onRoundFailure: RoundFailurePolicy = .continue, sitePolicy: SitePolicy = SitePolicy(),
        variants: [ExperimentVariant] = [], baseDirectory: String? = nil
    ) {
        self.sitePolicy = sitePolicy
        self.name = name
        self.seed = seed
        self.rounds = rounds
        self.participants = participants
        self.model = model
        self.dataset = dataset
        self.partitioning = partitioning
        self.cohort = cohort
        self.deadlines = deadlines
        self.strategy = strategy
        self.localTraining = localTraining
        self.secureAggregation = secureAggregation
        self.evaluation = evaluation
        self.updateLimits = updateLimits
        self.privacy = privacy
        self.outputDirectory = outputDirectory
        self.onRoundFailure = onRoundFailure
        self.variants = variants
        self.baseDirectory = baseDirectory
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, seed, rounds, participants, model, dataset, partitioning, cohort, deadlines, strategy
        case localTraining = "local_training"
        case secureAggregation = "secure_aggregation"
        case evaluation
        case updateLimits = "update_limits"
        case privacy
        case outputDirectory = "output_directory"
        case onRoundFailure = "on_round_failure"
        case sitePolicy = "site_policy"
    }

    public init(from decoder: any Decoder) throws {
        if try decoder.container(keyedBy: AnyConfigKey.self).contains(AnyConfigKey(stringValue: "variants")) {
            throw ConfigError(
                .unknownKey, at: ConfigPath.components(decoder.codingPath) + [.key("variants")],
                "variants are expanded by ExperimentConfig.parse(yaml:source:) and load(from:); decode experiment files with those"
            )
        }
        let (c, _) = try decoder.configSection(CodingKeys.self)
        let d = ExperimentConfig()
        let strategy = try c.value(.strategy, default: d.strategy)
        var localTraining = d.localTraining
        var proximalMuGiven = false
        if c.contains(.localTraining), try !c.decodeNil(forKey: .localTraining) {
            (localTraining, proximalMuGiven) = try LocalTrainingConfig.decode(
                from: c.superDecoder(forKey: .localTraining))
        }
        if !proximalMuGiven && strategy.name == .fedprox { localTraining.proximalMu = FedProx.defaultMu }
        self.init(
            name: try c.value(.name, default: d.name), seed: try c.value(.seed, default: d.seed),
            rounds: try c.value(.rounds, default: d.rounds),
            participants: try c.value(.participants, default: d.participants),
            model: try c.value(.model, default: d.model), dataset: try c.value(.dataset, default: d.dataset),
            partitioning: try c.value(.partitioning, default: d.partitioning),
            cohort: try c.value(.cohort, default: d.cohort),
            deadlines: try c.value(.deadlines, default: d.deadlines), strategy: strategy, localTraining: localTraining,
            secureAggregation: try c.value(.secureAggregation, default: d.secureAggregation),
            evaluation: try c.value(.evaluation, default: d.evaluation),
            updateLimits: try c.value(.updateLimits, default: d.updateLimits),
            privacy: try c.optional(.privacy),
            outputDirectory: try c.optional(.outputDirectory),
            onRoundFailure: try c.choice(RoundFailurePolicy.self, forKey: .onRoundFailure, default: d.onRoundFailure),
            sitePolicy: try c.value(.sitePolicy, default: d.sitePolicy))
    }

    // MARK: - Derived values

    /// Each run the file describes: its variants, or itself when it has none.
    public var runs: [ExperimentConfig] { variants.isEmpty ? [self] : variants.map(\.config) }

    /// `output_directory`, or `results/<name>`.
    public var resolvedOutputDirectory: String { outputDirectory ?? "results/\(name)" }

    /// A dataset path from the file as a URL: absolute paths as they are, relative ones
    /// against ``baseDirectory`` (the experiment file's directory).
    public func resolve(_ path: String) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path) }
        let base =
            baseDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        return base.appendingPathComponent(path).standardizedFileURL
    }

    /// The server strategy this experiment runs, with FedProx's μ from `local_training`.
    public func makeStrategy() throws(AggregationError) -> any FederatedStrategy {
        try strategy.makeStrategy(proximalMu: localTraining.proximalMu)
    }

    /// The smallest and the largest number of participants a round of this experiment can
    /// select when every participant is available.
    public var cohortSizeRange: ClosedRange<Int> {
        // A Poisson sample (privacy) can hold every participant.
        if privacy != nil { return min(cohort.minimum, participants)...participants }
        let largest = cohort.selection(available: participants)?.selected ?? cohort.minimum
        return min(cohort.minimum, largest)...max(cohort.minimum, largest)
    }
}

/// One arm of a comparison in a file with `variants:`.
///
/// ```yaml
/// name: fedprox-synthetic
/// strategy: {name: fedavg}
/// # … everything shared …
/// variants:
///   - name: fedavg            # the base as it is
///   - name: fedprox-mu1
///     set:                    # deep-merged over the base: mappings merge, other values replace
///       strategy: {name: fedprox}
///       local_training: {proximal_mu: 1}
/// ```
///
/// Each arm is the base with its `set:` merged in, named `<base name>-<variant name>`, with its
/// results under the base's `output_directory/<variant name>` (or `results/<full name>`). It
/// keeps the base's seed, so the arms see the same initial model, partitions and selections
/// and differ only in what the variant sets: a paired comparison. Each arm is decoded and
/// validated on its own, and an error in a `set:` value names its path inside the variant
/// (`variants[1].set.strategy.name`).
public struct ExperimentVariant: Sendable, Hashable {
    /// The variant's own name (letters, digits, `.`, `_`, `-`).
    public var name: String
    /// The complete configuration of this arm.
    public var config: ExperimentConfig

    public init(name: String, config: ExperimentConfig) {
        self.name = name
        self.config = config
    }
}
