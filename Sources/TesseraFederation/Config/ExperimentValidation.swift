import TesseraData
import TesseraSecAgg

extension ExperimentConfig {
    /// Checks every value's range and every combination of values; throws the first problem
    /// as a ``ConfigError`` naming the path to change. ``parse(yaml:source:baseDirectory:)`` and
    /// ``load(from:)`` call it; call it yourself after building or editing a configuration in code.
    public func validate() throws(ConfigError) {
        let rules = ConfigRules("")
        try rules.check(
            Self.isValidName(name), "name",
            "\"\(name)\" must be 1–100 letters, digits, ., _ or - (not starting with . or -): it names the results directory"
        )
        try rules.check((1...1_000_000).contains(rounds), "rounds", "must lie in 1...1000000, got \(rounds)")
        try rules.check(
            (1...1_000_000).contains(participants), "participants", "must lie in 1...1000000, got \(participants)")
        if let outputDirectory {
            try rules.check(!outputDirectory.isEmpty, "output_directory", "is empty; omit it for results/<name>")
        }

        try model.validate()
        try dataset.validate()
        try partitioning.validate()
        try cohort.validate(participants: participants)
        try deadlines.validate()
        try strategy.validate(cohortMinimum: cohort.minimum)
        try localTraining.validate()
        try secureAggregation.validate()
        try evaluation.validate()
        try updateLimits.validate()

        try validateModelAgainstData()
        try validatePartitioning()
        try validateCentralEvaluation()
        if strategy.name == .fedprox {
            try rules.conflict(
                unless: localTraining.proximalMu > 0, "local_training.proximal_mu",
                "is 0 with strategy fedprox, which makes it FedAvg; set μ > 0 (Li et al. 2020 tune it over 0.001, 0.01, "
                    + "0.1, 1) or use strategy fedavg")
        }
        if secureAggregation.enabled { try validateSecureAggregation() }
        if let privacy { try validatePrivacy(privacy) }
    }

    private func validatePrivacy(_ privacy: PrivacyConfig) throws(ConfigError) {
        try privacy.validate()
        let rules = ConfigRules("privacy")
        try rules.conflict(
            unless: privacy.mode != .distributed || secureAggregation.enabled, "mode",
            "is distributed, which adds each site's share of the noise inside the secure sum, but secure_aggregation is "
                + "disabled; enable secure aggregation or use mode: central")
        if strategy.name.requiresIndividualUpdates {
            throw ConfigError(
                .conflict, at: ConfigPath.parse("strategy.name"),
                "\"\(strategy.name.rawValue)\" needs every site's individual update, but differential privacy adds noise "
                    + "to their sum; use one of " + StrategyConfig.Name.meanOnly.map(\.rawValue).joined(separator: ", ")
            )
        }
        try ConfigRules("cohort").conflict(
            unless: cohort.overSelection == 1, "over_selection",
            "is \(cohort.overSelection), but with privacy each site joins a round with probability cohort.fraction "
                + "(Poisson sampling, which the privacy accountant assumes); remove over_selection")
        try ConfigRules("cohort").conflict(
            unless: cohort.maximum == nil, "maximum",
            "caps the cohort, but with privacy the cohort is a Poisson sample whose size the accountant does not cap; "
                + "remove maximum and choose cohort.fraction")
        _ = try privacyBudget()
    }

    private func validateModelAgainstData() throws(ConfigError) {
        let rules = ConfigRules("model")
        if let inputs = model.inputs, let known = dataset.knownInputs {
            try rules.conflict(
                unless: inputs == known, "inputs",
                "is \(inputs) but dataset kind \(dataset.kind.rawValue) has \(known) features; omit model.inputs to infer it"
            )
        }
        if let classes = model.classes, let known = dataset.knownClasses {
            try rules.conflict(
                unless: classes == known, "classes",
                "is \(classes) but the dataset has \(known) classes; omit model.classes to infer it")
        }
        if model.preset == .mcmahanCNN, let known = dataset.knownInputs {
            try rules.conflict(
                unless: known == ModelConfig.cnnInputs, "preset",
                "mcmahan_cnn takes 1×28×28 images (784 inputs) but dataset kind \(dataset.kind.rawValue) has \(known) features"
            )
        }
    }

    /// The central test set must fit the model and, when generated, draw fresh rows from the
    /// training data's own generator: another generator's rows would measure another task.
    private func validateCentralEvaluation() throws(ConfigError) {
        guard let central = evaluation.dataset else { return }
        let rules = ConfigRules("evaluation.dataset")
        if let known = central.knownInputs {
            if let inputs = model.inputs {
                try rules.conflict(
                    unless: known == inputs, central.kind == .idx ? "kind" : "dimension",
                    "gives \(known) features but model.inputs is \(inputs)")
            }
            if let training = dataset.knownInputs {
                try rules.conflict(
                    unless: known == training, central.kind == .idx ? "kind" : "dimension",
                    "gives \(known) features but the training dataset has \(training)")
            }
        }
        if let known = central.knownClasses, let classes = model.classes ?? dataset.knownClasses {
            try rules.conflict(
                unless: known == classes, "classes", "is \(known) but the model has \(classes) classes")
        }
        guard central.isGenerated else { return }
        try rules.conflict(
            unless: central.kind == dataset.kind, "kind",
            "\(central.kind.rawValue) generates its rows, but the training data is dataset kind "
                + "\(dataset.kind.rawValue): a generated test set draws fresh rows from the training data's own "
                + "generator; use kind \(dataset.kind.rawValue), or list test files")
        if central.kind == .syntheticFedProx {
            try rules.conflict(
                unless: central.alpha == dataset.alpha, "alpha",
                "is \(central.alpha) but dataset.alpha is \(dataset.alpha); the test set's generator must be the training data's"
            )
            try rules.conflict(
                unless: central.beta == dataset.beta, "beta",
                "is \(central.beta) but dataset.beta is \(dataset.beta); the test set's generator must be the training data's"
            )
        }
        try rules.conflict(
            unless: centralEvaluationSeed != seed, "seed",
            "is the experiment's seed, which would draw the training rows again; choose another seed or omit it")
    }

    /// The seed of a generated central test set: `evaluation.dataset.seed`, or one derived from
    /// the experiment's seed that never equals it.
    public var centralEvaluationSeed: UInt64 { evaluation.dataset?.seed ?? (seed ^ 0x9E37_79B9_7F4A_7C15) }

    private func validatePartitioning() throws(ConfigError) {
        let rules = ConfigRules("partitioning")
        // Other schemes pool the source (several files, or every generated device) and deal it
        // out again, e.g. to compare a natural split against an IID one.
        guard partitioning.scheme == .natural else { return }
        try rules.conflict(
            unless: dataset.hasNaturalPartition, "scheme",
            "natural keeps the source's own split, but dataset kind \(dataset.kind.rawValue) has none; choose iid, dirichlet, "
                + "shards or power_law")
        if dataset.kind == .clinicalRisk && dataset.paths.isEmpty {
            try ConfigRules("").conflict(
                unless: participants == ClinicalRisk.quickstartSites.count, "participants",
                "is \(participants) but the generated clinical-risk data has \(ClinicalRisk.quickstartSites.count) sites "
                    + "(the quick-start hospitals); make them equal, or list site files in dataset.paths")
        }
        if (dataset.kind == .csv || dataset.kind == .clinicalRisk) && !dataset.paths.isEmpty {
            try ConfigRules("").conflict(
                unless: dataset.paths.count == participants, "participants",
                "is \(participants) but natural partitioning gives one participant per file and dataset.paths lists "
                    + "\(dataset.paths.count); make them equal")
        }
    }

    private func validateSecureAggregation() throws(ConfigError) {
        let secure = secureAggregation
        let rules = ConfigRules("secure_aggregation")
        if strategy.name.requiresIndividualUpdates {
            throw ConfigError(
                .conflict, at: ConfigPath.parse("strategy.name"),
                "\"\(strategy.name.rawValue)\" needs every participant's individual update, but secure aggregation is "
                    + "enabled: under secure aggregation the coordinator only ever learns the sum of the masked updates "
                    + "(that is the privacy guarantee), so it cannot take a coordinate-wise median, trim extremes or score "
                    + "updates against each other. Use one of "
                    + StrategyConfig.Name.meanOnly.map(\.rawValue).joined(separator: ", ")
                    + ", or set secure_aggregation.enabled: false to run robust aggregation in plaintext.")
        }
        try ConfigRules("cohort").conflict(
            unless: cohort.minimum >= 3, "minimum",
            "is \(cohort.minimum), but secure aggregation needs at least 3 contributions per round: with one, the sum is "
                + "the update itself, and with two, each participant could subtract its own update from the aggregate "
                + "and learn the other's (and a threshold of at least 2 would leave no room for a dropout)")
        let sizes = cohortSizeRange
        if let threshold = secure.threshold {
            try rules.conflict(
                unless: threshold <= cohort.minimum, "threshold",
                "is \(threshold), above cohort.minimum = \(cohort.minimum): a round with the minimum cohort could never "
                    + "collect \(threshold) shares to unmask; lower the threshold or raise the minimum")
        }
        if let fraction = secure.thresholdFraction,
            let t = secure.explicitThreshold(cohortSize: cohort.minimum), t < 2
        {
            throw ConfigError(
                .conflict, at: rules.path("threshold_fraction"),
                "\(fraction) of cohort.minimum = \(cohort.minimum) gives a threshold of \(t); it must be at least 2")
        }
        if secure.neighbourhood == .harary, let degree = secure.degree {
            try rules.conflict(
                unless: degree < cohort.minimum, "degree",
                "is \(degree), but a Harary graph over cohort.minimum = \(cohort.minimum) participants has degree at most "
                    + "\(cohort.minimum - 1); lower the degree or use neighbourhood: complete")
            if let t = secure.explicitThreshold(cohortSize: cohort.minimum) {
                try rules.conflict(
                    unless: t <= degree + 1, "threshold",
                    "is \(t), but with degree \(degree) each participant's shares are held by only \(degree + 1) "
                        + "participants (its neighbours and itself)")
            }
        }
        // Quantization must not overflow Z_(2^32) for the largest cohort the experiment selects.
        do {
            _ = try secure.makeCodec(maxInputs: sizes.upperBound)
        } catch {
            throw ConfigError(
                .conflict, at: rules.path("bits"),
                "cannot serve cohorts of up to \(sizes.upperBound) participants: \(error.message)")
        }
        if let perSite = expectedSamplesPerParticipant, perSite > secure.maxWeight {
            throw ConfigError(
                .conflict, at: rules.path("max_weight"),
                "is \(secure.maxWeight), but each participant trains on about \(perSite) samples and reports that count as "
                    + "its weight; raise max_weight to at least \(perSite)")
        }
        // The automatic (k, t) must exist for every cohort size the experiment can select.
        if secure.threshold == nil && secure.thresholdFraction == nil || secure.neighbourhood == .auto {
            for n in Set([sizes.lowerBound, sizes.upperBound]).sorted() where n >= 2 {
                do {
                    _ = try SecAggParameterFinder.find(
                        cohortSize: n, dropoutRate: secure.dropoutRate, corruptionRate: secure.corruptionRate,
                        adversary: secure.adversary)
                } catch {
                    throw ConfigError(
                        .conflict, at: rules.path("dropout_rate"),
                        "with dropout_rate \(secure.dropoutRate) and corruption_rate \(secure.corruptionRate), no safe "
                            + "threshold exists for a cohort of \(n): \(error.message)")
                }
            }
        }
    }

    /// The most training samples a generated participant can report, when the configuration
    /// bounds it: the generator cap under natural partitioning (re-partitioning pools the data,
    /// so one participant could receive more).
    private var expectedSamplesPerParticipant: Int? {
        guard partitioning.scheme == .natural, let cap = dataset.maxSamplesPerParticipant else { return nil }
        switch dataset.kind {
        case .syntheticIID, .syntheticFedProx: return Int((Double(cap) * (1 - dataset.testFraction)).rounded(.up))
        default: return nil
        }
    }
}
