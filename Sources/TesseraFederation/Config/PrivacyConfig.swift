public import TesseraPrivacy

/// `privacy:` — user-level differential privacy of the published models (site-level: one
/// "user" is one site and all its rows).
///
/// ```yaml
/// privacy:
///   mode: distributed          # central | distributed
///   target_epsilon: 3          # the budget; the run stops before a round would exceed it
///   delta: 1e-5
///   noise_multiplier: auto     # auto (calibrated so `rounds` rounds spend target_epsilon) | z
///   clip: {norm: 1.0}          # or {adaptive: {target_quantile: 0.5, learning_rate: 0.2, initial: 0.1}}
///   sampling: poisson          # each site joins a round with probability cohort.fraction
///   on_budget_exhausted: stop  # stop | fail
/// ```
///
/// - `central`: sites clip their update to `C`; the coordinator adds N(0, z²C²) to the sum and
///   divides by the expected cohort (McMahan et al. 2018). The coordinator sees the noise-free
///   sum (plaintext: every clipped update), so a site must trust it to add the noise.
/// - `distributed`: needs secure aggregation. Each site adds its share of Skellam noise after
///   rotation and rounding, calibrated for the fewest survivors the round tolerates, so the sum
///   the coordinator unmasks already carries the whole noise.
///
/// Sites are sampled by Poisson sampling (each eligible site with probability `q =
/// cohort.fraction`), which the accountant's amplification assumes; `cohort.over_selection`
/// does not apply. Updates are unweighted (each site's clipped update counts once) and the
/// training metrics do not leave the sites: neither is covered by the noise.
public struct PrivacyConfig: Sendable, Hashable, Codable {
    public enum Mode: String, ConfigChoice {
        case central
        case distributed
    }

    public enum Sampling: String, ConfigChoice {
        case poisson
    }

    /// What happens when the next round would take ε past ``targetEpsilon``.
    public enum BudgetAction: String, ConfigChoice {
        /// The experiment ends normally after its last affordable round.
        case stop
        /// The round is refused and recorded as failed, and the experiment ends.
        case fail
    }

    /// How updates are clipped.
    public enum Clip: Sendable, Hashable {
        case fixed(norm: Double)
        /// Andrew et al. 2021: the norm follows a quantile of the sites' update norms.
        case adaptive(targetQuantile: Double, learningRate: Double, initial: Double, countNoise: Double?)

        public var initialNorm: Double {
            switch self {
            case .fixed(let norm): norm
            case .adaptive(_, _, let initial, _): initial
            }
        }
    }

    public var mode: Mode
    /// The ε budget at ``delta``; `nil` for no budget (then ``noiseMultiplier`` is required).
    public var targetEpsilon: Double?
    /// Default 1e-5.
    public var delta: Double
    /// `nil` (`auto`): calibrated from the budget.
    public var noiseMultiplier: Double?
    public var clip: Clip
    public var sampling: Sampling
    public var onBudgetExhausted: BudgetAction

    public init(
        mode: Mode = .central, targetEpsilon: Double? = nil, delta: Double = 1e-5, noiseMultiplier: Double? = nil,
        clip: Clip = .fixed(norm: 1), sampling: Sampling = .poisson, onBudgetExhausted: BudgetAction = .stop
    ) {
        self.mode = mode
        self.targetEpsilon = targetEpsilon
        self.delta = delta
        self.noiseMultiplier = noiseMultiplier
        self.clip = clip
        self.sampling = sampling
        self.onBudgetExhausted = onBudgetExhausted
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode
        case targetEpsilon = "target_epsilon"
        case delta
        case noiseMultiplier = "noise_multiplier"
        case clip, sampling
        case onBudgetExhausted = "on_budget_exhausted"
    }

    enum ClipKeys: String, CodingKey, CaseIterable {
        case norm, adaptive
    }

    enum AdaptiveKeys: String, CodingKey, CaseIterable {
        case targetQuantile = "target_quantile"
        case learningRate = "learning_rate"
        case initial
        case countNoise = "count_noise"
    }

    public init(from decoder: any Decoder) throws {
        let (c, _) = try decoder.configSection(CodingKeys.self)
        let d = PrivacyConfig()
        guard c.contains(.mode) else {
            throw ConfigError(
                .missingValue, at: ConfigPath.components(c.codingPath) + [.key("mode")],
                "required: central (the coordinator adds the noise) or distributed (each site adds its share)")
        }
        var noise: Double?
        if let text = try? c.decodeIfPresent(String.self, forKey: .noiseMultiplier), text != "auto" {
            guard let value = Double(text) else {
                throw ConfigError(
                    .invalidValue, at: ConfigPath.components(c.codingPath) + [.key("noise_multiplier")],
                    "\"\(text)\" is neither auto nor a number; give auto (calibrated from target_epsilon) or z > 0")
            }
            noise = value
        } else if c.contains(.noiseMultiplier), (try? c.decodeIfPresent(String.self, forKey: .noiseMultiplier)) == nil {
            noise = try c.value(.noiseMultiplier, default: 0.0)  // not a scalar: reports the type mismatch
        }
        var clip = d.clip
        if c.contains(.clip) {
            let (k, _) = try c.superDecoder(forKey: .clip).configSection(ClipKeys.self)
            switch (k.contains(.norm), k.contains(.adaptive)) {
            case (true, true):
                throw ConfigError(
                    .conflict, at: ConfigPath.components(k.codingPath) + [.key("adaptive")],
                    "give either norm (a fixed clip) or adaptive, not both")
            case (true, false):
                clip = .fixed(norm: try k.value(.norm, default: 1.0))
            case (false, true):
                let (a, _) = try k.superDecoder(forKey: .adaptive).configSection(AdaptiveKeys.self)
                clip = .adaptive(
                    targetQuantile: try a.value(.targetQuantile, default: 0.5),
                    learningRate: try a.value(.learningRate, default: 0.2),
                    initial: try a.value(.initial, default: 0.1), countNoise: try a.optional(.countNoise))
            case (false, false):
                throw ConfigError(
                    .missingValue, at: ConfigPath.components(k.codingPath) + [.key("norm")],
                    "give norm (a fixed L2 clip) or adaptive: {target_quantile, learning_rate, initial}")
            }
        }
        self.init(
            mode: try c.choice(Mode.self, forKey: .mode, default: d.mode),
            targetEpsilon: try c.optional(.targetEpsilon), delta: try c.value(.delta, default: d.delta),
            noiseMultiplier: noise, clip: clip,
            sampling: try c.choice(Sampling.self, forKey: .sampling, default: d.sampling),
            onBudgetExhausted: try c.choice(BudgetAction.self, forKey: .onBudgetExhausted, default: d.onBudgetExhausted)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode)
        try c.encodeIfPresent(targetEpsilon, forKey: .targetEpsilon)
        try c.encode(delta, forKey: .delta)
        if let noiseMultiplier {
            try c.encode(noiseMultiplier, forKey: .noiseMultiplier)
        } else {
            try c.encode("auto", forKey: .noiseMultiplier)
        }
        var k = c.nestedContainer(keyedBy: ClipKeys.self, forKey: .clip)
        switch clip {
        case .fixed(let norm):
            try k.encode(norm, forKey: .norm)
        case .adaptive(let quantile, let rate, let initial, let countNoise):
            var a = k.nestedContainer(keyedBy: AdaptiveKeys.self, forKey: .adaptive)
            try a.encode(quantile, forKey: .targetQuantile)
            try a.encode(rate, forKey: .learningRate)
            try a.encode(initial, forKey: .initial)
            try a.encodeIfPresent(countNoise, forKey: .countNoise)
        }
        try c.encode(sampling, forKey: .sampling)
        try c.encode(onBudgetExhausted, forKey: .onBudgetExhausted)
    }

    /// The standard deviation of the noise on the count of sites within the clip norm:
    /// `count_noise`, or the expected cohort / 20 (Andrew et al. 2021's recommendation).
    public func countNoise(expectedCohort: Double) -> Double? {
        guard case .adaptive(_, _, _, let given) = clip else { return nil }
        return given ?? max(expectedCohort / 20, 0.5)
    }

    func validate() throws(ConfigError) {
        let rules = ConfigRules("privacy")
        if let targetEpsilon { try rules.positive(targetEpsilon, "target_epsilon") }
        try rules.check(
            delta > 0 && delta < 1, "delta",
            "must lie in (0, 1), got \(delta); 1/(number of sites)^1.1 or less is usual")
        if let noiseMultiplier { try rules.positive(noiseMultiplier, "noise_multiplier") }
        try rules.conflict(
            unless: targetEpsilon != nil || noiseMultiplier != nil, "noise_multiplier",
            "is auto but there is no target_epsilon to calibrate it from; give target_epsilon, noise_multiplier, or both"
        )
        switch clip {
        case .fixed(let norm):
            try rules.positive(norm, "clip.norm")
        case .adaptive(let quantile, let rate, let initial, let countNoise):
            try rules.check(
                quantile > 0 && quantile < 1, "clip.adaptive.target_quantile", "must lie in (0, 1), got \(quantile)")
            try rules.positive(rate, "clip.adaptive.learning_rate")
            try rules.positive(initial, "clip.adaptive.initial")
            if let countNoise { try rules.positive(countNoise, "clip.adaptive.count_noise") }
        }
    }
}

/// The experiment-level privacy parameters, resolved from the configuration: what the
/// coordinator runs and what `tessera validate` prints.
public struct PrivacyBudgetPlan: Sendable, Hashable {
    public var mode: PrivacyConfig.Mode
    /// The total noise multiplier z the accountant charges (over the update and, with adaptive
    /// clipping, the count together).
    public var noiseMultiplier: Double
    /// The multiplier left for the update when adaptive clipping's count takes part of z
    /// (Andrew et al. 2021); z itself otherwise.
    public var updateNoiseMultiplier: Double
    /// The noise on the count of sites within the clip; `nil` without adaptive clipping.
    public var countNoise: Double?
    public var samplingRate: Double
    public var delta: Double
    public var targetEpsilon: Double?
    /// The ε the configured rounds spend (before any early stop).
    public var plannedEpsilon: Double
    /// The rounds that fit the budget (all of them unless the noise was given and is too small).
    public var affordableRounds: Int
}

extension ExperimentConfig {
    /// The resolved privacy parameters, or `nil` without a `privacy:` section.
    ///
    /// Distributed mode is planned with ``representativeSkellam(noiseMultiplier:)``: the
    /// subsampled Skellam is accounted with the general Poisson-subsampling bound, looser than
    /// the Gaussian's exact one, so it needs more noise for the same ε. The coordinator charges
    /// each round's own Skellam parameters as it runs.
    public func privacyBudget() throws(ConfigError) -> PrivacyBudgetPlan? {
        guard let privacy else { return nil }
        let rules = ConfigRules("privacy")
        let q = cohort.fraction
        let expected = q * Double(participants)
        let countNoise = privacy.countNoise(expectedCohort: expected)
        let mode = privacy.mode
        let mechanismFor = { (z: Double) throws(PrivacyError) -> PrivacyMechanism in
            mode == .distributed ? Self.representativeSkellam(noiseMultiplier: z) : .gaussian(noiseMultiplier: z)
        }
        let z: Double
        do {
            if let given = privacy.noiseMultiplier {
                z = given
            } else {
                z = try NoiseCalibration.noiseMultiplier(
                    targetEpsilon: privacy.targetEpsilon!, delta: privacy.delta, samplingRate: q, rounds: rounds,
                    mechanism: mechanismFor)
            }
        } catch {
            throw ConfigError(
                .invalidValue, at: rules.path("target_epsilon"),
                "cannot be reached in \(rounds) rounds at sampling rate \(q) and δ \(privacy.delta): \(error.message)")
        }
        var updateNoise = z
        if let countNoise {
            do {
                updateNoise = try AdaptiveClipping.updateNoiseMultiplier(total: z, bitNoise: countNoise)
            } catch {
                throw ConfigError(
                    .conflict, at: rules.path("clip.adaptive.count_noise"),
                    "is \(countNoise), too small for the noise multiplier \(z): it must exceed z/2 = \(z / 2) "
                        + "(\(error.message))")
            }
        }
        let mechanism =
            mode == .distributed ? Self.representativeSkellam(noiseMultiplier: z) : .gaussian(noiseMultiplier: z)
        var accountant = PrivacyAccountant()
        var affordable = 0
        for _ in 0..<rounds {
            let next = accountant.composing(mechanism, samplingRate: q)
            if let target = privacy.targetEpsilon, next.epsilon(delta: privacy.delta) > target * (1 + 1e-9) { break }
            accountant = next
            affordable += 1
        }
        let planned = PrivacyAccountant().composing(mechanism, samplingRate: q, steps: rounds).epsilon(
            delta: privacy.delta)
        return PrivacyBudgetPlan(
            mode: privacy.mode, noiseMultiplier: z, updateNoiseMultiplier: updateNoise, countNoise: countNoise,
            samplingRate: q, delta: privacy.delta, targetEpsilon: privacy.targetEpsilon, plannedEpsilon: planned,
            affordableRounds: affordable)
    }

    /// A Skellam mechanism with the Gaussian-equivalent multiplier `z` at the integer scale
    /// the distributed calibration works at (sensitivity ~10⁵ integer units), where its excess
    /// over the Gaussian is negligible: what a round of distributed DP is planned as before the
    /// model's size and the rounds' thresholds are known.
    public static func representativeSkellam(noiseMultiplier z: Double) -> PrivacyMechanism {
        let sensitivity = 1e5
        return .skellam(
            mu: z * z * sensitivity * sensitivity / 2, l1Sensitivity: sensitivity * sensitivity,
            l2Sensitivity: sensitivity)
    }
}
