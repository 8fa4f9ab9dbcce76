/// `strategy:` — the server-side algorithm and its hyperparameters.
///
/// ```yaml
/// strategy:
///   name: fedadam            # fedavg | fedavgm | fedprox | fedadam | fedyogi | fedadagrad
///                            # | median | trimmed_mean | krum | multi_krum
///   server_learning_rate: 0.01
///   beta1: 0.9
///   beta2: 0.99
///   tau: 0.001
/// ```
///
/// Each strategy accepts only its own hyperparameters; any that are absent take the strategy's
/// documented default (see ``FedAvg``, ``FedAdam``, …), and the decoded value holds the
/// effective numbers, so two files that differ only by writing a default out hash the same.
///
/// | name | keys besides `name` and `server_learning_rate` |
/// |---|---|
/// | `fedavg`, `fedprox`, `median` | — (FedProx's μ is `local_training.proximal_mu`) |
/// | `fedavgm` | `momentum` |
/// | `fedadam`, `fedyogi` | `beta1`, `beta2`, `tau` |
/// | `fedadagrad` | `beta1`, `tau` |
/// | `trimmed_mean` | `trim_fraction` |
/// | `krum` | `byzantine` |
/// | `multi_krum` | `byzantine`, `selected` |
public struct StrategyConfig: Sendable, Hashable, Codable {
    public enum Name: String, ConfigChoice {
        case fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad, median
        case trimmedMean = "trimmed_mean"
        case krum
        case multiKrum = "multi_krum"

        /// Robust rules need each participant's update, which secure aggregation hides.
        public var requiresIndividualUpdates: Bool {
            switch self {
            case .median, .trimmedMean, .krum, .multiKrum: true
            case .fedavg, .fedavgm, .fedprox, .fedadam, .fedyogi, .fedadagrad: false
            }
        }

        /// The strategies that work with only the weighted mean, for error messages.
        static var meanOnly: [Name] { allCases.filter { !$0.requiresIndividualUpdates } }
    }

    /// Default `fedavg`.
    public var name: Name
    /// `η_s`; every strategy has one.
    public var serverLearningRate: Double
    /// `fedavgm`: `β`.
    public var momentum: Double?
    /// `fedadam`, `fedyogi`, `fedadagrad`: `β1`.
    public var beta1: Double?
    /// `fedadam`, `fedyogi`: `β2`.
    public var beta2: Double?
    /// `fedadam`, `fedyogi`, `fedadagrad`: the adaptivity `τ`.
    public var tau: Double?
    /// `trimmed_mean`: `β`, the fraction trimmed from each side.
    public var trimFraction: Double?
    /// `krum`, `multi_krum`: `f`, the Byzantine participants tolerated.
    public var byzantine: Int?
    /// `multi_krum`: `m`, the updates averaged; `nil` means `n − f` each round.
    public var selected: Int?

    /// Fills every hyperparameter that `name` uses and that is `nil` with the strategy's
    /// default; hyperparameters `name` does not use stay as given (``ExperimentConfig/validate()``
    /// refuses them).
    public init(
        name: Name = .fedavg, serverLearningRate: Double? = nil, momentum: Double? = nil, beta1: Double? = nil,
        beta2: Double? = nil, tau: Double? = nil, trimFraction: Double? = nil, byzantine: Int? = nil,
        selected: Int? = nil
    ) {
        self.name = name
        self.serverLearningRate = serverLearningRate ?? Self.defaultServerLearningRate(name)
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.tau = tau
        self.trimFraction = trimFraction
        self.byzantine = byzantine
        self.selected = selected
        switch name {
        case .fedavgm:
            self.momentum = momentum ?? FedAvgM.defaultMomentum
        case .fedadam:
            (self.beta1, self.beta2, self.tau) = (
                beta1 ?? FedAdam.defaultBeta1, beta2 ?? FedAdam.defaultBeta2, tau ?? FedAdam.defaultTau
            )
        case .fedyogi:
            (self.beta1, self.beta2, self.tau) = (
                beta1 ?? FedYogi.defaultBeta1, beta2 ?? FedYogi.defaultBeta2, tau ?? FedYogi.defaultTau
            )
        case .fedadagrad:
            (self.beta1, self.tau) = (beta1 ?? FedAdagrad.defaultBeta1, tau ?? FedAdagrad.defaultTau)
        case .trimmedMean:
            self.trimFraction = trimFraction ?? TrimmedMean.defaultTrimFraction
        case .krum:
            self.byzantine = byzantine ?? Krum.defaultByzantine
        case .multiKrum:
            self.byzantine = byzantine ?? MultiKrum.defaultByzantine
        case .fedavg, .fedprox, .median:
            break
        }
    }

    static func defaultServerLearningRate(_ name: Name) -> Double {
        switch name {
        case .fedavg: FedAvg.defaultServerLearningRate
        case .fedavgm: FedAvgM.defaultServerLearningRate
        case .fedprox: FedProx.defaultServerLearningRate
        case .fedadam: FedAdam.defaultServerLearningRate
        case .fedyogi: FedYogi.defaultServerLearningRate
        case .fedadagrad: FedAdagrad.defaultServerLearningRate
        case .median: Median.defaultServerLearningRate
        case .trimmedMean: TrimmedMean.defaultServerLearningRate
        case .krum: Krum.defaultServerLearningRate
        case .multiKrum: MultiKrum.defaultServerLearningRate
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name
        case serverLearningRate = "server_learning_rate"
        case momentum, beta1, beta2, tau
        case trimFraction = "trim_fraction"
        case byzantine, selected
    }

    static func keys(for name: Name) -> [String] {
        let common = ["name", "server_learning_rate"]
        switch name {
        case .fedavg, .fedprox, .median: return common
        case .fedavgm: return common + ["momentum"]
        case .fedadam, .fedyogi: return common + ["beta1", "beta2", "tau"]
        case .fedadagrad: return common + ["beta1", "tau"]
        case .trimmedMean: return common + ["trim_fraction"]
        case .krum: return common + ["byzantine"]
        case .multiKrum: return common + ["byzantine", "selected"]
        }
    }

    public init(from decoder: any Decoder) throws {
        let (c, present) = try decoder.configSection(CodingKeys.self)
        let name = try c.choice(Name.self, forKey: .name, default: .fedavg)
        try decoder.rejectInapplicable(
            present: present, allowed: Self.keys(for: name), usage: Name.usage(Self.keys), label: "strategy",
            chosen: name.rawValue)
        self.init(
            name: name, serverLearningRate: try c.optional(.serverLearningRate), momentum: try c.optional(.momentum),
            beta1: try c.optional(.beta1), beta2: try c.optional(.beta2), tau: try c.optional(.tau),
            trimFraction: try c.optional(.trimFraction), byzantine: try c.optional(.byzantine),
            selected: try c.optional(.selected))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let allowed = Self.keys(for: name)
        try c.encode(name, forKey: .name)
        try c.encode(serverLearningRate, forKey: .serverLearningRate)
        try c.encode(momentum, forKey: .momentum, ifIn: allowed)
        try c.encode(beta1, forKey: .beta1, ifIn: allowed)
        try c.encode(beta2, forKey: .beta2, ifIn: allowed)
        try c.encode(tau, forKey: .tau, ifIn: allowed)
        try c.encode(trimFraction, forKey: .trimFraction, ifIn: allowed)
        try c.encode(byzantine, forKey: .byzantine, ifIn: allowed)
        try c.encode(selected, forKey: .selected, ifIn: allowed)
    }

    /// Builds the strategy, with `proximalMu` for FedProx (``ExperimentConfig/makeStrategy()``
    /// passes `local_training.proximal_mu`).
    public func makeStrategy(proximalMu: Double = FedProx.defaultMu) throws(AggregationError) -> any FederatedStrategy {
        let eta = serverLearningRate
        switch name {
        case .fedavg: return try FedAvg(serverLearningRate: eta)
        case .fedavgm: return try FedAvgM(serverLearningRate: eta, momentum: momentum ?? FedAvgM.defaultMomentum)
        case .fedprox: return try FedProx(mu: proximalMu, serverLearningRate: eta)
        case .fedadam:
            return try FedAdam(
                serverLearningRate: eta, beta1: beta1 ?? FedAdam.defaultBeta1, beta2: beta2 ?? FedAdam.defaultBeta2,
                tau: tau ?? FedAdam.defaultTau)
        case .fedyogi:
            return try FedYogi(
                serverLearningRate: eta, beta1: beta1 ?? FedYogi.defaultBeta1, beta2: beta2 ?? FedYogi.defaultBeta2,
                tau: tau ?? FedYogi.defaultTau)
        case .fedadagrad:
            return try FedAdagrad(
                serverLearningRate: eta, beta1: beta1 ?? FedAdagrad.defaultBeta1, tau: tau ?? FedAdagrad.defaultTau)
        case .median: return try Median(serverLearningRate: eta)
        case .trimmedMean:
            return try TrimmedMean(
                trimFraction: trimFraction ?? TrimmedMean.defaultTrimFraction, serverLearningRate: eta)
        case .krum: return try Krum(byzantine: byzantine ?? Krum.defaultByzantine, serverLearningRate: eta)
        case .multiKrum:
            return try MultiKrum(
                byzantine: byzantine ?? MultiKrum.defaultByzantine, selected: selected, serverLearningRate: eta)
        }
    }

    /// Range checks; `cohortMinimum` is the smallest round the strategy must handle.
    func validate(cohortMinimum: Int) throws(ConfigError) {
        let rules = ConfigRules("strategy")
        let allowed = Self.keys(for: name)
        let given: [(String, Bool)] = [
            ("momentum", momentum != nil), ("beta1", beta1 != nil), ("beta2", beta2 != nil), ("tau", tau != nil),
            ("trim_fraction", trimFraction != nil), ("byzantine", byzantine != nil), ("selected", selected != nil),
        ]
        for (key, isSet) in given where isSet && !allowed.contains(key) {
            throw ConfigError(
                .conflict, at: rules.path(key), "is set but strategy \"\(name.rawValue)\" does not use it")
        }
        try rules.positive(serverLearningRate, "server_learning_rate")
        if let momentum { try rules.halfOpen(momentum, 0, 1, "momentum") }
        if let beta1 { try rules.halfOpen(beta1, 0, 1, "beta1") }
        if let beta2 { try rules.halfOpen(beta2, 0, 1, "beta2") }
        if let tau { try rules.positive(tau, "tau") }
        if let trimFraction { try rules.halfOpen(trimFraction, 0, 0.5, "trim_fraction") }
        if let byzantine {
            try rules.check(byzantine >= 0, "byzantine", "cannot be negative, got \(byzantine)")
            let needed = Aggregation.krumMinimumUpdates(byzantine: byzantine)
            try rules.conflict(
                unless: cohortMinimum >= needed, "byzantine",
                "is \(byzantine), and \(name.rawValue) needs n > 2f + 2 updates, i.e. at least \(needed), but "
                    + "cohort.minimum is \(cohortMinimum); raise cohort.minimum to \(needed) or lower byzantine")
        }
        if let selected {
            try rules.positive(selected, "selected")
            let f = byzantine ?? 0
            try rules.conflict(
                unless: selected <= cohortMinimum - f, "selected",
                "is \(selected), but a round of cohort.minimum = \(cohortMinimum) updates with \(f) Byzantine has only "
                    + "\(cohortMinimum - f) that can be honest; lower selected")
        }
    }
}
