public import TesseraSecAgg

/// `secure_aggregation:` — how updates are protected on their way to the coordinator.
///
/// ```yaml
/// secure_aggregation:
///   enabled: true              # the default
///   threshold: auto            # auto | an integer t | threshold_fraction: 0.6
///   neighbourhood: auto        # auto | complete | harary (with degree: k)
///   clip: 1.0                  # each coordinate clipped to ±c before quantization
///   bits: 20
///   max_weight: 10000          # the largest sample count a participant reports
///   dropout_rate: 0.1          # δ tolerated
///   corruption_rate: 0.1       # α tolerated
///   active_adversary: true     # signed keys and the consistency check (false: honest-but-curious coordinator)
/// ```
///
/// On by default: the whole point of Tessera is that the coordinator learns only the sum of
/// the updates (Bonawitz et al. 2017; SecAgg+ neighbourhoods, Bell et al. 2020). Turning it
/// off is for plaintext simulations and for the robust aggregators, which need each update.
///
/// With `threshold: auto` and `neighbourhood: auto`, the degree and threshold of each round
/// come from `SecAggParameterFinder` for the round's cohort size and the tolerated rates δ and
/// α (40 bits of statistical security, failure probability 2^−20). ``ExperimentConfig/validate()``
/// runs the finder for the smallest and the largest cohort the experiment can select, so an
/// infeasible combination fails at `tessera validate`, not in round 37.
public struct SecureAggregationConfig: Sendable, Hashable, Codable {
    public enum Neighbourhood: String, ConfigChoice {
        /// Chosen per round by the parameter finder: a Harary graph when one is safe, else complete.
        case auto
        /// Every participant shares with every other (Bonawitz et al. 2017): O(n²) work, the
        /// safest choice for tens of sites.
        case complete
        /// A randomly permuted Harary graph of the given even degree (SecAgg+).
        case harary
    }

    /// Default `true`.
    public var enabled: Bool
    /// An explicit Shamir threshold `t`; `nil` with no ``thresholdFraction`` means automatic.
    public var threshold: Int?
    /// `t = ⌈fraction × cohort⌉` per round, in `(0, 1]`; `nil` unless given.
    public var thresholdFraction: Double?
    /// Default `auto`.
    public var neighbourhood: Neighbourhood
    /// The Harary degree `k` (even), required for `harary`.
    public var degree: Int?
    /// The clipping range `c > 0`: each update coordinate is clamped to `[−c, c]`. Default 1,
    /// far above the per-round change of a coordinate at the default learning rates; a larger
    /// `c` coarsens the quantization step `c / (2^(bits−1) − 1)`.
    public var clip: Double
    /// Bits per quantized coordinate, sign included, in `2...32`. Default 20: a step of about
    /// 2·10⁻⁶ at `c = 1`, well below SGD noise, while sums of up to 4,096 inputs cannot wrap.
    public var bits: Int
    /// The largest sample weight a participant may send (`W`). Default 10,000. Weights above it
    /// are refused at encoding; a `W` far above the real sample counts wastes precision (the
    /// decode error grows with `W / mean weight`).
    public var maxWeight: Int
    /// The fraction of a cohort that may drop out mid-round, `δ ∈ [0, 1)`. Default 0.1.
    public var dropoutRate: Double
    /// The fraction of a cohort that may collude with the server, `α ∈ [0, 1)`. Default 0.1.
    public var corruptionRate: Double
    /// `true` (the default) protects against a coordinator that substitutes keys or lies about
    /// dropouts: sites sign their keys with the signing keys their certificates bind to them,
    /// and the ConsistencyCheck stage runs. `false` assumes an honest-but-curious coordinator;
    /// sites refuse it under their default policy.
    public var activeAdversary: Bool

    public init(
        enabled: Bool = true, threshold: Int? = nil, thresholdFraction: Double? = nil,
        neighbourhood: Neighbourhood = .auto,
        degree: Int? = nil, clip: Double = 1, bits: Int = 20, maxWeight: Int = 10_000, dropoutRate: Double = 0.1,
        corruptionRate: Double = 0.1, activeAdversary: Bool = true
    ) {
        self.enabled = enabled
        self.threshold = threshold
        self.thresholdFraction = thresholdFraction
        self.neighbourhood = neighbourhood
        self.degree = degree
        self.clip = clip
        self.bits = bits
        self.maxWeight = maxWeight
        self.dropoutRate = dropoutRate
        self.corruptionRate = corruptionRate
        self.activeAdversary = activeAdversary
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case enabled, threshold
        case thresholdFraction = "threshold_fraction"
        case neighbourhood, degree, clip, bits
        case maxWeight = "max_weight"
        case dropoutRate = "dropout_rate"
        case corruptionRate = "corruption_rate"
        case activeAdversary = "active_adversary"
    }

    static func keys(for neighbourhood: Neighbourhood) -> [String] {
        let all = CodingKeys.allCases.map(\.stringValue)
        return neighbourhood == .harary ? all : all.filter { $0 != "degree" }
    }

    public init(from decoder: any Decoder) throws {
        let (c, present) = try decoder.configSection(CodingKeys.self)
        let d = SecureAggregationConfig()
        let neighbourhood = try c.choice(Neighbourhood.self, forKey: .neighbourhood, default: d.neighbourhood)
        try decoder.rejectInapplicable(
            present: present, allowed: Self.keys(for: neighbourhood), usage: Neighbourhood.usage(Self.keys),
            label: "neighbourhood", chosen: neighbourhood.rawValue)
        // `threshold: auto` is the same as leaving it out.
        var threshold: Int?
        if let text = try? c.decodeIfPresent(String.self, forKey: .threshold), text != "auto" {
            guard let value = Int(text) else {
                throw ConfigError(
                    .invalidValue, at: ConfigPath.components(c.codingPath) + [.key("threshold")],
                    "\"\(text)\" is neither auto nor an integer; give auto, an integer t ≥ 2, or use threshold_fraction"
                )
            }
            threshold = value
        } else if c.contains(.threshold), (try? c.decodeIfPresent(String.self, forKey: .threshold)) == nil {
            threshold = try c.optional(.threshold)  // not a scalar: reports the type mismatch
        }
        self.init(
            enabled: try c.value(.enabled, default: d.enabled), threshold: threshold,
            thresholdFraction: try c.optional(.thresholdFraction), neighbourhood: neighbourhood,
            degree: try c.optional(.degree),
            clip: try c.value(.clip, default: d.clip), bits: try c.value(.bits, default: d.bits),
            maxWeight: try c.value(.maxWeight, default: d.maxWeight),
            dropoutRate: try c.value(.dropoutRate, default: d.dropoutRate),
            corruptionRate: try c.value(.corruptionRate, default: d.corruptionRate),
            activeAdversary: try c.value(.activeAdversary, default: d.activeAdversary))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let allowed = Self.keys(for: neighbourhood)
        try c.encode(enabled, forKey: .enabled)
        try c.encodeIfPresent(threshold, forKey: .threshold)
        try c.encodeIfPresent(thresholdFraction, forKey: .thresholdFraction)
        try c.encode(neighbourhood, forKey: .neighbourhood)
        try c.encode(degree, forKey: .degree, ifIn: allowed)
        try c.encode(clip, forKey: .clip)
        try c.encode(bits, forKey: .bits)
        try c.encode(maxWeight, forKey: .maxWeight)
        try c.encode(dropoutRate, forKey: .dropoutRate)
        try c.encode(corruptionRate, forKey: .corruptionRate)
        try c.encode(activeAdversary, forKey: .activeAdversary)
    }

    /// The adversary model for `SecAggParameterFinder`.
    public var adversary: SecAggAdversary { activeAdversary ? .activeServer : .semiHonest }

    /// The quantization codec for rounds of at most `maxInputs` inputs.
    public func makeCodec(maxInputs: Int) throws(SecAggError) -> QuantizationCodec {
        try QuantizationCodec(clip: clip, bits: bits, maxWeight: UInt32(clamping: maxWeight), maxInputs: maxInputs)
    }

    /// The threshold for a round of `cohortSize` participants when it is not automatic.
    public func explicitThreshold(cohortSize: Int) -> Int? {
        if let threshold { return threshold }
        if let thresholdFraction { return Int((thresholdFraction * Double(cohortSize) - 1e-9).rounded(.up)) }
        return nil
    }

    /// Range checks of the section alone; the checks against the cohort are in
    /// ``ExperimentConfig/validate()``.
    func validate() throws(ConfigError) {
        let rules = ConfigRules("secure_aggregation")
        if let threshold {
            try rules.check(
                threshold >= 2, "threshold",
                "must be at least 2 (with t = 1 every share is the secret itself), got \(threshold)")
        }
        if let thresholdFraction {
            try rules.leftOpen(thresholdFraction, 0, 1, "threshold_fraction")
            try rules.conflict(
                unless: threshold == nil, "threshold_fraction",
                "cannot be combined with threshold: give one or the other")
        }
        if neighbourhood == .harary {
            guard let degree else {
                throw ConfigError(
                    .missingValue, at: rules.path("degree"),
                    "required for neighbourhood harary: an even number of neighbours per participant (or use neighbourhood: auto)"
                )
            }
            try rules.check(degree >= 2 && degree % 2 == 0, "degree", "must be an even number ≥ 2, got \(degree)")
        }
        try rules.positive(clip, "clip")
        try rules.check((2...32).contains(bits), "bits", "must lie in 2...32, got \(bits)")
        try rules.check(
            maxWeight >= 1 && maxWeight <= Int(UInt32.max), "max_weight",
            "must lie in 1...\(UInt32.max), got \(maxWeight)")
        try rules.halfOpen(dropoutRate, 0, 1, "dropout_rate")
        try rules.halfOpen(corruptionRate, 0, 1, "corruption_rate")
    }
}
