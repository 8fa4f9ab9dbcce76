import Foundation
import TesseraData

/// `dataset:` — where the examples come from.
///
/// ```yaml
/// dataset:
///   kind: csv                        # csv | npy | idx | synthetic_fedprox | synthetic_iid | clinical_risk
///   paths: [../Datasets-sample/clinical-risk/site-1.csv, …]
///   label_column: outcome
///   test_fraction: 0.2
///   standardise: true
/// ```
///
/// Each kind accepts only its own keys, and a key of another kind is refused by name:
///
/// | kind | keys (besides `kind`, `test_fraction`, `standardise`) |
/// |---|---|
/// | `csv` | `paths` (required), `label_column` (required), `feature_columns`, `exclude_columns`, `delimiter` |
/// | `clinical_risk` | `paths` (the sample sites; empty = generate the five quick-start sites), `label_column`, `feature_columns`, `exclude_columns`, `delimiter` |
/// | `npy` | `features`, `labels` (both required) |
/// | `idx` | `images`, `labels` (both required; MNIST's format) |
/// | `synthetic_fedprox` | `alpha`, `beta`, `dimension`, `classes`, `max_samples_per_participant` |
/// | `synthetic_iid` | `dimension`, `classes`, `max_samples_per_participant` |
///
/// The generators draw one dataset per participant (`participants` of them). Under
/// `natural` partitioning each participant keeps its own; under any other scheme the
/// participants' data is pooled and dealt out again.
///
/// Relative paths are resolved against the directory of the experiment file (see
/// ``ExperimentConfig/resolve(_:)``), so an experiment runs the same from any working directory.
///
/// The same description names the coordinator's central test set (`evaluation.dataset`, see
/// ``EvaluationConfig/dataset``), without `test_fraction` (every row of it is held out) and with
/// `seed` for the generated kinds.
public struct DatasetConfig: Sendable, Hashable, Codable {
    public enum Kind: String, ConfigChoice {
        /// CSV files with a header row; one file per site under `natural` partitioning.
        case csv
        /// A `.npy` feature matrix and a `.npy` label vector.
        case npy
        /// IDX image and label files (the MNIST format).
        case idx
        /// Synthetic(α, β) of Li et al. 2020 (FedProx): each device draws its own softmax model
        /// `W_k ~ N(u_k, 1)`, `u_k ~ N(0, α)` and its own feature distribution with mean
        /// `B_k ~ N(0, β)`; α controls how much local models differ, β how much local data does.
        case syntheticFedProx = "synthetic_fedprox"
        /// Synthetic-IID of Li et al. 2020: one shared model and feature distribution, the
        /// control for `synthetic_fedprox`.
        case syntheticIID = "synthetic_iid"
        /// The clinical-risk tabular data of the quick start (`TesseraData.ClinicalRisk`):
        /// per-site CSV files (the samples in `Datasets-sample/clinical-risk/`) or, with no
        /// paths, the five quick-start hospitals generated from the experiment's seed. The label
        /// is the format's `readmitted_30d` unless `label_column` says otherwise.
        case clinicalRisk = "clinical_risk"

        /// Whether the kind can generate its rows (`clinical_risk` does when it lists no paths).
        var isGenerated: Bool { self == .clinicalRisk || self == .syntheticFedProx || self == .syntheticIID }
    }

    /// Default `synthetic_iid`: needs no files, so an experiment file with no `dataset:`
    /// section still runs.
    public var kind: Kind
    /// Data files (`csv`, `clinical_risk`). Under `natural` partitioning, one file per participant.
    public var paths: [String]
    /// The header of the label column (`csv`: required, because a guessed label column would
    /// silently train on the wrong target; `clinical_risk`: `nil` uses the format's own).
    public var labelColumn: String?
    /// Exactly these feature columns, in this order (`nil`, the default, means every column
    /// except the label and `exclude_columns`). Fixing the order keeps the model's inputs
    /// aligned across sites whose exports order columns differently.
    public var featureColumns: [String]?
    /// Columns never used as features (identifiers, dates, free text). Default none.
    public var excludeColumns: [String]
    /// The CSV field separator, one ASCII character. Default `,`.
    public var delimiter: String
    /// `npy`: the feature matrix file.
    public var features: String?
    /// `idx`: the image file.
    public var images: String?
    /// `npy`, `idx`: the label file.
    public var labels: String?
    /// `synthetic_fedprox`: α, the spread of the local models. Default 1 (Synthetic(1,1)).
    public var alpha: Double
    /// `synthetic_fedprox`: β, the spread of the local feature distributions. Default 1.
    public var beta: Double
    /// Synthetic feature count. Default 60, as in Li et al. 2020.
    public var dimension: Int
    /// Synthetic class count. Default 10, as in Li et al. 2020.
    public var classes: Int
    /// Synthetic generators: a cap on the examples of one participant. `nil` (default) keeps
    /// the reference generator's heavy-tailed sizes (`⌊exp(N(4, 2))⌋ + 50`: a median near 100,
    /// a few devices with thousands); a cap keeps quick experiments quick.
    public var maxSamplesPerParticipant: Int?
    /// Fraction of each participant's examples held out for evaluation, in `[0, 1)`.
    /// Default 0.2. The split is per participant and seeded, so it never moves data between sites.
    public var testFraction: Double
    /// Standardise features to zero mean and unit variance with each participant's *own*
    /// training-split statistics (pooled statistics would need a federated pass and would leak
    /// site summaries). Default `false`: data is used as given; set `true` for tabular data
    /// whose features have different units. A central test set is standardised with its own
    /// statistics, as each site is.
    public var standardise: Bool
    /// `evaluation.dataset` of a generated kind only: seeds the rows drawn for the central test
    /// set. The generator's models and site profiles are the training data's (they come from the
    /// experiment's seed), so the rows share its distribution but not its draws. `nil` (default)
    /// derives a seed from the experiment's (``ExperimentConfig/centralEvaluationSeed``).
    public var seed: UInt64?

    public init(
        kind: Kind = .syntheticIID, paths: [String] = [], labelColumn: String? = nil, featureColumns: [String]? = nil,
        excludeColumns: [String] = [], delimiter: String = ",", features: String? = nil, images: String? = nil,
        labels: String? = nil, alpha: Double = 1, beta: Double = 1, dimension: Int = 60, classes: Int = 10,
        maxSamplesPerParticipant: Int? = nil, testFraction: Double = 0.2, standardise: Bool = false,
        seed: UInt64? = nil
    ) {
        self.kind = kind
        self.paths = paths
        self.labelColumn = labelColumn
        self.featureColumns = featureColumns
        self.excludeColumns = excludeColumns
        self.delimiter = delimiter
        self.features = features
        self.images = images
        self.labels = labels
        self.alpha = alpha
        self.beta = beta
        self.dimension = dimension
        self.classes = classes
        self.maxSamplesPerParticipant = maxSamplesPerParticipant
        self.testFraction = testFraction
        self.standardise = standardise
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, paths
        case labelColumn = "label_column"
        case featureColumns = "feature_columns"
        case excludeColumns = "exclude_columns"
        case delimiter, features, images, labels, alpha, beta, dimension, classes
        case maxSamplesPerParticipant = "max_samples_per_participant"
        case testFraction = "test_fraction"
        case standardise, seed
    }

    /// Where a dataset description stands: `dataset:` (the participants' data) or
    /// `evaluation.dataset` (the coordinator's central test set). They differ in two keys:
    /// `test_fraction` (training only) and `seed` (evaluation only, generated kinds).
    enum Role: Sendable {
        case training, evaluation
    }

    static func keys(for kind: Kind) -> [String] {
        let common = ["kind", "test_fraction", "standardise"]
        let table = ["paths", "label_column", "feature_columns", "exclude_columns", "delimiter"]
        switch kind {
        case .csv: return common + table
        case .clinicalRisk: return common + table
        case .npy: return common + ["features", "labels"]
        case .idx: return common + ["images", "labels"]
        case .syntheticFedProx:
            return common + ["alpha", "beta", "dimension", "classes", "max_samples_per_participant"]
        case .syntheticIID: return common + ["dimension", "classes", "max_samples_per_participant"]
        }
    }

    /// The keys of `kind` in `evaluation.dataset`.
    static func evaluationKeys(for kind: Kind) -> [String] {
        keys(for: kind).filter { $0 != "test_fraction" } + (kind.isGenerated ? ["seed"] : [])
    }

    static func keys(for kind: Kind, role: Role) -> [String] {
        role == .training ? keys(for: kind) : evaluationKeys(for: kind)
    }

    /// Whether the source already comes split into participants (files per site, or a
    /// generator that draws each device's data separately), as `natural` partitioning needs.
    public var hasNaturalPartition: Bool {
        switch kind {
        case .csv: !paths.isEmpty
        case .clinicalRisk, .syntheticFedProx, .syntheticIID: true
        case .npy, .idx: false
        }
    }

    /// The number of classes when the dataset fixes it without reading files.
    var knownClasses: Int? {
        switch kind {
        case .syntheticFedProx, .syntheticIID: classes
        default: nil
        }
    }

    /// The number of features when the dataset fixes it without reading files.
    var knownInputs: Int? {
        switch kind {
        case .syntheticFedProx, .syntheticIID: dimension
        case .idx: ModelConfig.cnnInputs
        default: nil
        }
    }

    public init(from decoder: any Decoder) throws {
        try self.init(decoding: decoder, role: .training)
    }

    init(decoding decoder: any Decoder, role: Role) throws {
        if role == .evaluation,
            try decoder.container(keyedBy: AnyConfigKey.self).contains(AnyConfigKey(stringValue: "test_fraction"))
        {
            throw ConfigError(
                .unknownKey, at: ConfigPath.components(decoder.codingPath) + [.key("test_fraction")],
                "does not apply to an evaluation set: every row of it is held out")
        }
        let (c, present) = try decoder.configSection(
            CodingKeys.self, excluding: role == .training ? ["seed"] : ["test_fraction"])
        let d = DatasetConfig()
        let kind = try c.choice(Kind.self, forKey: .kind, default: d.kind)
        try decoder.rejectInapplicable(
            present: present, allowed: Self.keys(for: kind, role: role),
            usage: Kind.usage { Self.keys(for: $0, role: role) }, label: "dataset kind", chosen: kind.rawValue)
        self.init(
            kind: kind, paths: try c.value(.paths, default: d.paths), labelColumn: try c.optional(.labelColumn),
            featureColumns: try c.optional(.featureColumns),
            excludeColumns: try c.value(.excludeColumns, default: d.excludeColumns),
            delimiter: try c.value(.delimiter, default: d.delimiter), features: try c.optional(.features),
            images: try c.optional(.images), labels: try c.optional(.labels),
            alpha: try c.value(.alpha, default: d.alpha),
            beta: try c.value(.beta, default: d.beta), dimension: try c.value(.dimension, default: d.dimension),
            classes: try c.value(.classes, default: d.classes),
            maxSamplesPerParticipant: try c.optional(.maxSamplesPerParticipant),
            testFraction: try c.value(.testFraction, default: d.testFraction),
            standardise: try c.value(.standardise, default: d.standardise), seed: try c.optional(.seed))
    }

    public func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, role: .training)
    }

    func encode(to encoder: any Encoder, role: Role) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let allowed = Self.keys(for: kind, role: role)
        try c.encode(kind, forKey: .kind)
        try c.encode(paths, forKey: .paths, ifIn: allowed)
        try c.encode(labelColumn, forKey: .labelColumn, ifIn: allowed)
        try c.encode(featureColumns, forKey: .featureColumns, ifIn: allowed)
        try c.encode(excludeColumns, forKey: .excludeColumns, ifIn: allowed)
        try c.encode(delimiter, forKey: .delimiter, ifIn: allowed)
        try c.encode(features, forKey: .features, ifIn: allowed)
        try c.encode(images, forKey: .images, ifIn: allowed)
        try c.encode(labels, forKey: .labels, ifIn: allowed)
        try c.encode(alpha, forKey: .alpha, ifIn: allowed)
        try c.encode(beta, forKey: .beta, ifIn: allowed)
        try c.encode(dimension, forKey: .dimension, ifIn: allowed)
        try c.encode(classes, forKey: .classes, ifIn: allowed)
        try c.encode(maxSamplesPerParticipant, forKey: .maxSamplesPerParticipant, ifIn: allowed)
        try c.encode(testFraction, forKey: .testFraction, ifIn: allowed)
        try c.encode(standardise, forKey: .standardise)
        try c.encode(seed, forKey: .seed, ifIn: allowed)
    }

    /// Checks the section's own values; `prefix` is where it stands in the file.
    func validate(at prefix: String = "dataset", role: Role = .training) throws(ConfigError) {
        let rules = ConfigRules(prefix)
        switch kind {
        case .csv:
            guard !paths.isEmpty else {
                throw ConfigError(.missingValue, at: rules.path("paths"), "required for kind csv: list the CSV files")
            }
            guard labelColumn != nil else {
                throw ConfigError(
                    .missingValue, at: rules.path("label_column"),
                    "required for kind csv: name the header of the column to predict")
            }
        case .npy:
            guard features != nil else {
                throw ConfigError(
                    .missingValue, at: rules.path("features"), "required for kind npy: the feature matrix file")
            }
            guard labels != nil else {
                throw ConfigError(
                    .missingValue, at: rules.path("labels"), "required for kind npy: the label vector file")
            }
        case .idx:
            guard images != nil else {
                throw ConfigError(.missingValue, at: rules.path("images"), "required for kind idx: the IDX image file")
            }
            guard labels != nil else {
                throw ConfigError(.missingValue, at: rules.path("labels"), "required for kind idx: the IDX label file")
            }
        case .syntheticFedProx:
            try rules.nonNegative(alpha, "alpha")
            try rules.nonNegative(beta, "beta")
        case .clinicalRisk, .syntheticIID:
            break
        }
        for (i, path) in paths.enumerated() {
            try rules.check(!path.isEmpty, "paths[\(i)]", "is an empty path")
        }
        if let duplicate = Dictionary(grouping: paths, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw ConfigError(
                .invalidValue, at: rules.path("paths"),
                "lists \"\(duplicate)\" twice; every file must be a different site")
        }
        if let label = labelColumn { try rules.check(!label.isEmpty, "label_column", "is empty") }
        if let featureColumns {
            try rules.check(!featureColumns.isEmpty, "feature_columns", "is an empty list; omit it to use every column")
            if let label = labelColumn, featureColumns.contains(label) {
                throw ConfigError(
                    .conflict, at: rules.path("feature_columns"),
                    "includes the label column \"\(label)\"; a model must not see its target")
            }
            try rules.check(
                excludeColumns.isEmpty, "exclude_columns",
                "cannot be combined with feature_columns: list the wanted columns or the unwanted ones, not both")
        }
        try rules.check(
            delimiter.unicodeScalars.count == 1 && delimiter.unicodeScalars.first!.isASCII && delimiter != "\"",
            "delimiter", "must be one ASCII character other than a quote, got \"\(delimiter)\"")
        if kind == .syntheticFedProx || kind == .syntheticIID {
            try rules.positive(dimension, "dimension")
            try rules.check(classes >= 2, "classes", "must be at least 2, got \(classes)")
        }
        if let cap = maxSamplesPerParticipant { try rules.positive(cap, "max_samples_per_participant") }
        if kind == .syntheticFedProx || kind == .syntheticIID, let cap = maxSamplesPerParticipant {
            let floor = FedProxSynthetic.Configuration().minimumSamples
            try rules.check(
                cap >= floor, "max_samples_per_participant",
                "is \(cap), but the synthetic generators give every participant at least \(floor) samples; "
                    + "give \(floor) or more")
        }
        if role == .training { try rules.halfOpen(testFraction, 0, 1, "test_fraction") }
        if role == .evaluation, seed != nil, !isGenerated {
            throw ConfigError(
                .conflict, at: rules.path("seed"),
                "applies to generated rows only; with paths the rows of kind \(kind.rawValue) come from the files")
        }
    }

    /// Whether the rows are generated rather than read (a generator kind, or `clinical_risk`
    /// without files).
    var isGenerated: Bool { kind.isGenerated && paths.isEmpty }
}

/// `partitioning:` — how examples are spread over the simulated participants.
///
/// ```yaml
/// partitioning:
///   scheme: dirichlet    # iid | dirichlet | shards | power_law | natural
///   alpha: 0.5           # dirichlet only
/// ```
///
/// - `iid`: a seeded shuffle dealt out evenly.
/// - `dirichlet`: label skew after Hsu et al. 2019: for each class, the participants' shares
///   are drawn from `Dir(α)`. Small α (0.1) gives each participant few classes; large α
///   (100) approaches IID.
/// - `shards`: McMahan et al. 2017's pathological split: sort by label, cut into
///   `participants × shards_per_participant` shards, deal each participant that many.
/// - `power_law`: IID labels but unequal sizes: the participant of rank `i` (1-based) gets a
///   share proportional to `i^(−exponent)`.
/// - `natural`: keep the source's own split (one CSV per site, or a per-device generator).
public struct PartitioningConfig: Sendable, Hashable, Codable {
    public enum Scheme: String, ConfigChoice {
        case iid, dirichlet, shards
        case powerLaw = "power_law"
        case natural
    }

    /// Default `iid`, the baseline every non-IID result is compared against.
    public var scheme: Scheme
    /// Dirichlet concentration `α > 0`. Default 0.5, a common "moderately non-IID" setting
    /// (Hsu et al. 2019 sweep from 0.05 to 100).
    public var alpha: Double
    /// Shards per participant. Default 2, McMahan et al.'s setting (each client sees about two classes).
    public var shardsPerParticipant: Int
    /// Power-law exponent `> 0`. Default 1 (Zipf: the largest participant has twice the
    /// second's data).
    public var exponent: Double

    public init(scheme: Scheme = .iid, alpha: Double = 0.5, shardsPerParticipant: Int = 2, exponent: Double = 1) {
        self.scheme = scheme
        self.alpha = alpha
        self.shardsPerParticipant = shardsPerParticipant
        self.exponent = exponent
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case scheme, alpha
        case shardsPerParticipant = "shards_per_participant"
        case exponent
    }

    static func keys(for scheme: Scheme) -> [String] {
        switch scheme {
        case .iid, .natural: ["scheme"]
        case .dirichlet: ["scheme", "alpha"]
        case .shards: ["scheme", "shards_per_participant"]
        case .powerLaw: ["scheme", "exponent"]
        }
    }

    public init(from decoder: any Decoder) throws {
        let (c, present) = try decoder.configSection(CodingKeys.self)
        let d = PartitioningConfig()
        let scheme = try c.choice(Scheme.self, forKey: .scheme, default: d.scheme)
        try decoder.rejectInapplicable(
            present: present, allowed: Self.keys(for: scheme), usage: Scheme.usage(Self.keys),
            label: "partitioning scheme",
            chosen: scheme.rawValue)
        self.init(
            scheme: scheme, alpha: try c.value(.alpha, default: d.alpha),
            shardsPerParticipant: try c.value(.shardsPerParticipant, default: d.shardsPerParticipant),
            exponent: try c.value(.exponent, default: d.exponent))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let allowed = Self.keys(for: scheme)
        try c.encode(scheme, forKey: .scheme)
        try c.encode(alpha, forKey: .alpha, ifIn: allowed)
        try c.encode(shardsPerParticipant, forKey: .shardsPerParticipant, ifIn: allowed)
        try c.encode(exponent, forKey: .exponent, ifIn: allowed)
    }

    func validate() throws(ConfigError) {
        let rules = ConfigRules("partitioning")
        switch scheme {
        case .dirichlet: try rules.positive(alpha, "alpha")
        case .shards: try rules.positive(shardsPerParticipant, "shards_per_participant")
        case .powerLaw: try rules.positive(exponent, "exponent")
        case .iid, .natural: break
        }
    }
}
