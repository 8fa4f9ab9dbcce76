/// `cohort:` — how many participants each round selects.
///
/// ```yaml
/// cohort:
///   fraction: 0.3334     # of the available participants
///   minimum: 10
///   maximum: 10
///   over_selection: 1.3  # select 30% more than needed, to absorb dropouts
/// ```
///
/// The round wants `target = clamp(round(fraction × available), minimum, maximum)`
/// contributions and selects `min(available, ⌈target × over_selection⌉)` participants
/// (``selection(available:)``). It does not start with fewer than `minimum` available
/// participants, and it completes only if at least `minimum` contributions arrive before the
/// deadlines; fewer make it a failed round (see ``ExperimentConfig/onRoundFailure``).
/// Over-selection is the approach of Bonawitz et al. 2019 ("Towards Federated Learning at
/// Scale"), who select about 130% of the target.
public struct CohortConfig: Sendable, Hashable, Codable {
    /// Fraction of available participants wanted per round, in `(0, 1]`, rounded to the
    /// nearest count (so 0.3333 of 30 is 10). Default 1: every participant, the cross-silo norm.
    public var fraction: Double
    /// The least number of contributions a round needs. Default 3, the least that secure
    /// aggregation (on by default) accepts: with two contributors, each could subtract its own
    /// update from the published aggregate and learn the other's, and the Shamir threshold
    /// (at least 2) would leave no room for a dropout.
    public var minimum: Int
    /// The most contributions wanted per round; `nil` (default) for no cap.
    public var maximum: Int?
    /// Selection factor `≥ 1`. Default 1 (no over-selection), right for small federations
    /// where every site is selected anyway.
    public var overSelection: Double

    public init(fraction: Double = 1, minimum: Int = 3, maximum: Int? = nil, overSelection: Double = 1) {
        self.fraction = fraction
        self.minimum = minimum
        self.maximum = maximum
        self.overSelection = overSelection
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case fraction, minimum, maximum
        case overSelection = "over_selection"
    }

    public init(from decoder: any Decoder) throws {
        let (c, _) = try decoder.configSection(CodingKeys.self)
        let d = CohortConfig()
        self.init(
            fraction: try c.value(.fraction, default: d.fraction), minimum: try c.value(.minimum, default: d.minimum),
            maximum: try c.optional(.maximum), overSelection: try c.value(.overSelection, default: d.overSelection))
    }

    /// How many contributions a round wants, and how many participants to select for it, when
    /// `available` participants are connected and healthy; `nil` when fewer than ``minimum``
    /// are available, so the round cannot start.
    public func selection(available: Int) -> (target: Int, selected: Int)? {
        guard available >= minimum, available > 0 else { return nil }
        var target = Int((fraction * Double(available)).rounded(.toNearestOrAwayFromZero))
        target = max(target, minimum)
        if let maximum { target = min(target, maximum) }
        target = min(target, available)
        let selected = min(available, Int((Double(target) * overSelection - 1e-9).rounded(.up)))
        return (target, max(selected, target))
    }

    func validate(participants: Int) throws(ConfigError) {
        let rules = ConfigRules("cohort")
        try rules.leftOpen(fraction, 0, 1, "fraction")
        try rules.positive(minimum, "minimum")
        if let maximum {
            try rules.positive(maximum, "maximum")
            try rules.conflict(
                unless: minimum <= maximum, "minimum",
                "is \(minimum) but cohort.maximum is \(maximum); the minimum cannot exceed the maximum")
        }
        try rules.check(
            overSelection.isFinite && overSelection >= 1 && overSelection <= 10, "over_selection",
            "must lie in [1, 10], got \(overSelection) (1 selects exactly the target; 1.3 selects 30% more)")
        try rules.conflict(
            unless: minimum <= participants, "minimum",
            "is \(minimum) but the experiment has only \(participants) participants, so no round could ever start")
    }
}

/// `deadlines:` — seconds each stage of a round may take before the coordinator moves on
/// with the participants that answered (the others count as dropouts).
///
/// The stages are those of a round (see the design document): selection (waiting until
/// `cohort.minimum` participants are available; the round fails after this), broadcast of the model,
/// local training, the four secure-aggregation stages of Bonawitz et al. 2017 (and the
/// optional consistency check of the active setting), then evaluation.
///
/// Defaults are for cross-silo sites on ordinary links: one minute to gather a cohort,
/// generous for training (10 minutes),
/// two minutes for moving a model or a masked vector, one minute for the small key and share
/// messages, five minutes for evaluation. Simulations finish each stage as soon as every
/// participant has answered, so long deadlines cost nothing there.
public struct DeadlinesConfig: Sendable, Hashable, Codable {
    public var selection: Double
    public var broadcast: Double
    public var train: Double
    public var advertiseKeys: Double
    public var shareKeys: Double
    public var maskedInputCollection: Double
    public var consistencyCheck: Double
    public var unmasking: Double
    public var evaluate: Double

    public init(
        selection: Double = 60, broadcast: Double = 120, train: Double = 600, advertiseKeys: Double = 60,
        shareKeys: Double = 60,
        maskedInputCollection: Double = 120, consistencyCheck: Double = 60, unmasking: Double = 60,
        evaluate: Double = 300
    ) {
        self.selection = selection
        self.broadcast = broadcast
        self.train = train
        self.advertiseKeys = advertiseKeys
        self.shareKeys = shareKeys
        self.maskedInputCollection = maskedInputCollection
        self.consistencyCheck = consistencyCheck
        self.unmasking = unmasking
        self.evaluate = evaluate
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case selection, broadcast, train
        case advertiseKeys = "advertise_keys"
        case shareKeys = "share_keys"
        case maskedInputCollection = "masked_input_collection"
        case consistencyCheck = "consistency_check"
        case unmasking, evaluate
    }

    public init(from decoder: any Decoder) throws {
        let (c, _) = try decoder.configSection(CodingKeys.self)
        let d = DeadlinesConfig()
        self.init(
            selection: try c.value(.selection, default: d.selection),
            broadcast: try c.value(.broadcast, default: d.broadcast),
            train: try c.value(.train, default: d.train),
            advertiseKeys: try c.value(.advertiseKeys, default: d.advertiseKeys),
            shareKeys: try c.value(.shareKeys, default: d.shareKeys),
            maskedInputCollection: try c.value(.maskedInputCollection, default: d.maskedInputCollection),
            consistencyCheck: try c.value(.consistencyCheck, default: d.consistencyCheck),
            unmasking: try c.value(.unmasking, default: d.unmasking),
            evaluate: try c.value(.evaluate, default: d.evaluate))
    }

    /// The deadline of each stage, keyed by its name in experiment files.
    public var byStage: [(stage: String, seconds: Double)] {
        [
            ("selection", selection), ("broadcast", broadcast), ("train", train), ("advertise_keys", advertiseKeys),
            ("share_keys", shareKeys),
            ("masked_input_collection", maskedInputCollection), ("consistency_check", consistencyCheck),
            ("unmasking", unmasking), ("evaluate", evaluate),
        ]
    }

    /// The deadline of `stage` (a name from ``byStage``) as a `Duration`.
    public func duration(of stage: String) -> Duration? {
        byStage.first { $0.stage == stage }.map { .milliseconds(Int64(($0.seconds * 1000).rounded())) }
    }

    func validate() throws(ConfigError) {
        let rules = ConfigRules("deadlines")
        for (stage, seconds) in byStage {
            try rules.check(
                seconds.isFinite && seconds > 0 && seconds <= 86_400, stage,
                "must be a number of seconds in (0, 86400], got \(seconds)")
        }
    }
}

/// `evaluation:` — when and where the global model is evaluated.
///
/// ```yaml
/// evaluation:
///   every: 1          # the sites evaluate on their held-out rows after every round
///   dataset:          # and the coordinator evaluates every new model on a central test set
///     kind: csv
///     paths: [../Datasets-sample/clinical-risk/test.csv]
///     label_column: readmitted_30d
/// ```
public struct EvaluationConfig: Sendable, Hashable, Codable {
    /// Evaluate after every `every`-th round (and always after the last). Default 1.
    public var every: Int
    /// Fraction of participants asked to evaluate on their held-out split, in `(0, 1]`.
    /// Default 1: cross-silo federations are small, and every site's metric matters.
    public var fraction: Double
    /// Once this fraction of the evaluators has answered, the others get as long again as
    /// those took (within the evaluation deadline) and are then left out, in `(0, 1]`.
    /// Default 0.5: a site that never answers delays the next round by about one evaluation
    /// instead of the whole evaluation deadline; 1 waits for every evaluator.
    public var quorum: Double
    /// The coordinator's central test set, in the `dataset:` style (`kind` and its keys, without
    /// `test_fraction`; `seed` for generated rows): every model the coordinator publishes is
    /// evaluated on it, and the results show it as its own "central test set" columns and
    /// curves, beside the sites' held-out figures. It is how to report accuracy on one fixed test
    /// set, as papers do. Default `nil`: no central evaluation.
    public var dataset: DatasetConfig?

    public init(every: Int = 1, fraction: Double = 1, quorum: Double = 0.5, dataset: DatasetConfig? = nil) {
        self.every = every
        self.fraction = fraction
        self.quorum = quorum
        self.dataset = dataset
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case every, fraction, quorum, dataset
    }

    public init(from decoder: any Decoder) throws {
        let (c, _) = try decoder.configSection(CodingKeys.self)
        let d = EvaluationConfig()
        var dataset: DatasetConfig?
        if c.contains(.dataset), try !c.decodeNil(forKey: .dataset) {
            dataset = try DatasetConfig(decoding: c.superDecoder(forKey: .dataset), role: .evaluation)
        }
        self.init(
            every: try c.value(.every, default: d.every), fraction: try c.value(.fraction, default: d.fraction),
            quorum: try c.value(.quorum, default: d.quorum), dataset: dataset)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(every, forKey: .every)
        try c.encode(fraction, forKey: .fraction)
        try c.encode(quorum, forKey: .quorum)
        if let dataset { try dataset.encode(to: c.superEncoder(forKey: .dataset), role: .evaluation) }
    }

    /// Whether round `round` (1-based) of `rounds` evaluates.
    public func evaluates(round: Int, of rounds: Int) -> Bool {
        round == rounds || (every > 0 && round % every == 0)
    }

    func validate() throws(ConfigError) {
        let rules = ConfigRules("evaluation")
        try rules.positive(every, "every")
        try rules.leftOpen(fraction, 0, 1, "fraction")
        try rules.leftOpen(quorum, 0, 1, "quorum")
        try dataset?.validate(at: "evaluation.dataset", role: .evaluation)
    }
}
