public import TesseraPrivacy

extension FederationPlan {
    /// Differential privacy as the coordinator runs it (``PrivacyConfig`` resolved).
    public struct Privacy: Sendable, Hashable {
        public var mode: RoundPrivacy.Mode
        /// The total noise multiplier z the accountant charges.
        public var noiseMultiplier: Double
        /// The multiplier on the update's sensitivity (z without adaptive clipping).
        public var updateNoiseMultiplier: Double
        /// The standard deviation of the noise on the count of sites within the clip (adaptive
        /// clipping); `nil` for a fixed clip.
        public var countNoise: Double?
        /// The Poisson sampling rate q.
        public var samplingRate: Double
        public var delta: Double
        /// The ε budget; `nil` for none.
        public var targetEpsilon: Double?
        public var onBudgetExhausted: PrivacyConfig.BudgetAction
        /// The clip norm of round 1.
        public var initialClipNorm: Double
        /// Adaptive clipping's rule; `nil` for a fixed clip.
        public var adaptive: AdaptiveRule?

        /// Andrew et al. 2021: the clip norm moves geometrically towards the target quantile.
        public struct AdaptiveRule: Sendable, Hashable {
            public var targetQuantile: Double
            public var learningRate: Double

            public init(targetQuantile: Double, learningRate: Double) {
                self.targetQuantile = targetQuantile
                self.learningRate = learningRate
            }
        }

        public init(
            mode: RoundPrivacy.Mode, noiseMultiplier: Double, updateNoiseMultiplier: Double? = nil,
            countNoise: Double? = nil, samplingRate: Double, delta: Double = 1e-5, targetEpsilon: Double? = nil,
            onBudgetExhausted: PrivacyConfig.BudgetAction = .stop, initialClipNorm: Double,
            adaptive: AdaptiveRule? = nil
        ) {
            self.mode = mode
            self.noiseMultiplier = noiseMultiplier
            self.updateNoiseMultiplier = updateNoiseMultiplier ?? noiseMultiplier
            self.countNoise = countNoise
            self.samplingRate = samplingRate
            self.delta = delta
            self.targetEpsilon = targetEpsilon
            self.onBudgetExhausted = onBudgetExhausted
            self.initialClipNorm = initialClipNorm
            self.adaptive = adaptive
        }
    }
}

/// What a round asks of a site for differential privacy, sent with its training task. The site
/// clips and (distributed mode) adds its noise share itself, and charges its own ledger from
/// these parameters before anything leaves.
public struct RoundPrivacy: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, Codable {
        /// The coordinator adds the noise to the sum: the site trusts it to.
        case central
        /// Each site adds its share inside the secure sum.
        case distributed
    }

    public var mode: Mode
    /// The L2 norm the site clips its whole update to.
    public var clipNorm: Double
    /// The total noise multiplier the experiment accounts (central mode: what the site's ledger
    /// charges, since it cannot see the noise).
    public var noiseMultiplier: Double
    /// The experiment's δ (the site converts its own ledger at its own δ).
    public var delta: Double
    /// The experiment's Poisson sampling rate (the site's ledger does not rely on it: the
    /// coordinator knows who it selected).
    public var samplingRate: Double
    /// Adaptive clipping: the site also sends whether its update was within the clip norm,
    /// inside the secure sum (or visible from its clipped norm in a plaintext round).
    public var reportsWithinClip: Bool
    /// Distributed mode: the round's public parameters of the Skellam mechanism.
    public var distributed: DistributedSkellam?
    /// Distributed mode: the seed of the round's public random rotation.
    public var rotationSeed: UInt64

    public init(
        mode: Mode, clipNorm: Double, noiseMultiplier: Double, delta: Double, samplingRate: Double,
        reportsWithinClip: Bool = false, distributed: DistributedSkellam? = nil, rotationSeed: UInt64 = 0
    ) {
        self.mode = mode
        self.clipNorm = clipNorm
        self.noiseMultiplier = noiseMultiplier
        self.delta = delta
        self.samplingRate = samplingRate
        self.reportsWithinClip = reportsWithinClip
        self.distributed = distributed
        self.rotationSeed = rotationSeed
    }

    /// Distributed mode: the words of a site's masked input (its own encoding, padded to a power
    /// of two); `nil` when the update travels in the quantization codec's layout.
    public var maskedWords: Int? { distributed?.words }

    /// The mechanism one round of this announcement applies to a site that takes part, as the
    /// site accounts it: the Gaussian of the experiment's multiplier in central mode; in
    /// distributed mode the Skellam noise that at least `minimumSurvivors` honest shares put in
    /// the sum, with the sensitivity the site's own rounding bound enforces.
    public var mechanism: PrivacyMechanism {
        if mode == .distributed, let distributed { return distributed.mechanism }
        return .gaussian(noiseMultiplier: noiseMultiplier)
    }
}

/// What a round of a private experiment spent, kept in its ``RoundRecord``: the restarted
/// coordinator recomposes its accountant from these, and the results show ε per round.
public struct RoundPrivacyRecord: Sendable, Hashable, Codable {
    /// ε spent by the experiment up to and including this round, at ``delta``.
    public var epsilon: Double
    public var delta: Double
    /// The mechanism charged for this round, at ``samplingRate``.
    public var mechanism: PrivacyMechanism
    public var samplingRate: Double
    /// The clip norm this round used, and the one the next round uses (adaptive clipping).
    public var clipNorm: Double
    public var nextClipNorm: Double

    public init(
        epsilon: Double, delta: Double, mechanism: PrivacyMechanism, samplingRate: Double, clipNorm: Double,
        nextClipNorm: Double
    ) {
        self.epsilon = epsilon
        self.delta = delta
        self.mechanism = mechanism
        self.samplingRate = samplingRate
        self.clipNorm = clipNorm
        self.nextClipNorm = nextClipNorm
    }
}
