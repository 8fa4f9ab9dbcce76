public import Foundation
public import TesseraPrivacy
public import TesseraSecAgg

/// What a site accepts, whatever the coordinator asks (DESIGN.md, "Trust model"): the
/// coordinator is not trusted with any single site's update, so the site checks every round
/// against its own policy before it builds, fetches or sends anything.
///
/// The checks are pure: each takes what a round asks for and throws a
/// ``SitePolicyViolation`` that names the site-file key that refused it. The participant
/// calls them as the requests arrive; the `policy:` section of the site file sets the fields.
public struct SitePolicy: Sendable, Hashable {
    /// Which metrics leave the site in the clear.
    public enum MetricsRelease: String, Sendable, Hashable, CaseIterable, Codable {
        /// Per-site training and evaluation metrics leave the site only inside the secure sum:
        /// the coordinator learns their total over the cohort, never this site's values.
        case aggregateOnly = "aggregate_only"
        /// The site's metrics are sent as they are, and the coordinator sees them per site.
        case perSite = "per_site"
    }

    /// The keys of the site file's `policy:` section, one per field.
    public enum Key: String, Sendable, Hashable, CaseIterable, CodingKey {
        case requireSecureAggregation = "require_secure_aggregation"
        case requireActiveAdversaryProtection = "require_active_adversary_protection"
        case minimumCohort = "minimum_cohort"
        case maxCorruptionRate = "max_corruption_rate"
        case maxDropoutRate = "max_dropout_rate"
        case maxParameters = "max_parameters"
        case maxLayerWidth = "max_layer_width"
        case maxEpochs = "max_epochs"
        case maxBatchSize = "max_batch_size"
        case maxModelBytes = "max_model_bytes"
        case shareMetrics = "share_metrics"
        case maxEvaluationsPerRound = "max_evaluations_per_round"
        case requireDifferentialPrivacy = "require_differential_privacy"
        case maxEpsilon = "max_epsilon"
        case privacyDelta = "privacy_delta"
        case trustCentralNoise = "trust_central_noise"
    }

    /// A round without secure aggregation is refused. Default `true`: a plaintext update shows
    /// the coordinator this site's update on its own.
    public var requireSecureAggregation: Bool
    /// A secure round outside the active-adversary mode (keys signed with the site
    /// certificates, and the ConsistencyCheck) is refused. Default `true`: without it a
    /// coordinator that lies about dropouts can collect both secrets of one site.
    public var requireActiveAdversaryProtection: Bool
    /// The smallest roster of a secure round, at least 2. Default 3: with two sites, each one
    /// learns the other's update from the published sum.
    public var minimumCohort: Int
    /// The fraction of a roster this site assumes may collude with the coordinator, in
    /// `[0, 1)`; thresholds too low for it are refused. Default 0.1, the experiment default,
    /// so a federation's default rounds pass.
    public var maxCorruptionRate: Double
    /// The fraction of a roster this site assumes may drop out (or be declared dropped), in
    /// `[0, 1)`; a Harary graph whose honest survivors may then split is refused. Default 0.1,
    /// the experiment default.
    public var maxDropoutRate: Double
    /// The most parameters a model may have. Default 50,000,000: 200 MB of weights, a few
    /// copies of which (weights, gradients, optimiser state, update) fit a hospital server.
    public var maxParameters: Int
    /// The most values one sample may have at any layer (``ModelArchitecture/widestLayer``).
    /// Default 65,536: it bounds activation memory per sample, well above the presets' widest.
    public var maxLayerWidth: Int
    /// The most local epochs a round may ask for. Default 1,000: far above federated practice
    /// (1 to 20), yet it bounds the compute one round can claim.
    public var maxEpochs: Int
    /// The largest mini-batch. Default 65,536: batch × widest layer bounds activation memory.
    public var maxBatchSize: Int
    /// The largest model download, in bytes. Default 512 MiB: room for
    /// ``maxParameters`` 32-bit parameters and the file's header.
    public var maxModelBytes: Int
    /// Which metrics leave the site. Default ``MetricsRelease/aggregateOnly``: a site's loss
    /// and accuracy say something about its data.
    public var shareMetrics: MetricsRelease
    /// The most evaluation requests answered per round, 0 for none. Default 1: each answer is
    /// a measurement of the held-out data, so a coordinator may not probe it repeatedly.
    public var maxEvaluationsPerRound: Int
    /// A training round without differential privacy is refused. Default `false`.
    public var requireDifferentialPrivacy: Bool
    /// The most ε this site spends on one experiment, at ``privacyDelta``, by its own ledger;
    /// `nil` (default) for no cap. A round that would take the ledger past it is refused.
    public var maxEpsilon: Double?
    /// The δ the site's ledger converts to ε at. Default 1e-5.
    public var privacyDelta: Double
    /// Whether noise the coordinator says it adds (central mode) counts. Default `false`: the
    /// site cannot check it, so a central round counts as unprotected — refused under
    /// `require_differential_privacy` and over any `max_epsilon`.
    public var trustCentralNoise: Bool

    public init(
        requireSecureAggregation: Bool = true, requireActiveAdversaryProtection: Bool = true, minimumCohort: Int = 3,
        maxCorruptionRate: Double = 0.1, maxDropoutRate: Double = 0.1, maxParameters: Int = 50_000_000,
        maxLayerWidth: Int = 65_536, maxEpochs: Int = 1_000, maxBatchSize: Int = 65_536,
        maxModelBytes: Int = 512 << 20, shareMetrics: MetricsRelease = .aggregateOnly, maxEvaluationsPerRound: Int = 1,
        requireDifferentialPrivacy: Bool = false, maxEpsilon: Double? = nil, privacyDelta: Double = 1e-5,
        trustCentralNoise: Bool = false
    ) {
        self.requireDifferentialPrivacy = requireDifferentialPrivacy
        self.maxEpsilon = maxEpsilon
        self.privacyDelta = privacyDelta
        self.trustCentralNoise = trustCentralNoise
        self.requireSecureAggregation = requireSecureAggregation
        self.requireActiveAdversaryProtection = requireActiveAdversaryProtection
        self.minimumCohort = minimumCohort
        self.maxCorruptionRate = maxCorruptionRate
        self.maxDropoutRate = maxDropoutRate
        self.maxParameters = maxParameters
        self.maxLayerWidth = maxLayerWidth
        self.maxEpochs = maxEpochs
        self.maxBatchSize = maxBatchSize
        self.maxModelBytes = maxModelBytes
        self.shareMetrics = shareMetrics
        self.maxEvaluationsPerRound = maxEvaluationsPerRound
    }

    /// Whether per-site training and evaluation metrics may leave the site in the clear; when
    /// `false` they travel only inside the secure sum.
    public var releasesPerSiteMetrics: Bool { shareMetrics == .perSite }
}

// MARK: - Checks

extension SitePolicy {
    /// A round whose update would leave the site without secure aggregation.
    public func checkPlaintextRound(round: Int) throws(SitePolicyViolation) {
        guard !requireSecureAggregation else {
            throw SitePolicyViolation(
                .secureAggregationRequired, key: .requireSecureAggregation, round: round,
                "round \(round) asks for a plaintext update (no secure aggregation); this site sends its update "
                    + "only inside a secure sum")
        }
    }

    /// A secure round's roster, graph and Shamir threshold, before any key is generated.
    ///
    /// The threshold must exceed half of the share holders (the roster on the complete graph,
    /// `degree + 1` on a Harary graph), so that a coordinator telling different holders
    /// different stories cannot collect both secrets of one site from two disjoint groups; no
    /// key lowers this floor. It must also reach
    /// ``SecAggParameterFinder/minimumSecureThreshold(cohortSize:shape:corruptionRate:adversary:)``
    /// for ``maxCorruptionRate`` (against an active server when `active`), and a Harary graph
    /// must keep the honest survivors connected under ``maxCorruptionRate`` and
    /// ``maxDropoutRate``.
    ///
    /// - Parameter active: whether the round runs the active-adversary protocol (signed keys
    ///   and the ConsistencyCheck).
    public func checkSecureRound(
        round: Int, rosterSize: Int, graph: NeighbourGraph.Kind, threshold: Int, active: Bool
    ) throws(SitePolicyViolation) {
        if requireActiveAdversaryProtection && !active {
            throw SitePolicyViolation(
                .activeProtectionRequired, key: .requireActiveAdversaryProtection, round: round,
                "round \(round) asks for secure aggregation without the active-adversary protection (keys signed "
                    + "with the site certificates and the consistency check); this site requires it")
        }
        let smallest = max(minimumCohort, 2)
        guard rosterSize >= smallest else {
            throw SitePolicyViolation(
                .cohortTooSmall, key: .minimumCohort, round: round,
                "round \(round) asks for a secure round with a roster of \(rosterSize); this site requires at least "
                    + "\(smallest)")
        }
        let shape: SecAggParameters.Shape
        let holders: Int
        let graphText: String
        switch graph {
        case .complete:
            shape = .complete
            holders = rosterSize
            graphText = "the complete graph over \(rosterSize)"
        case .harary(let degree, _):
            graphText = "a Harary graph of degree \(degree) over \(rosterSize)"
            guard degree >= 2, degree % 2 == 0, degree < rosterSize else {
                throw SitePolicyViolation(
                    .malformedGraph, key: nil, round: round,
                    "round \(round) asks for \(graphText); a Harary degree must be even and in 2...\(rosterSize - 1)")
            }
            shape = .harary(degree: degree)
            holders = degree + 1
        }
        let asked = "round \(round) asks for threshold \(threshold) of \(holders) share holders (\(graphText))"
        guard threshold > holders / 2 else {
            throw SitePolicyViolation(
                .thresholdNotAMajority, key: nil, round: round,
                "\(asked); this site requires more than half of the holders (at least \(holders / 2 + 1)), so that "
                    + "no two disjoint groups of holders can each rebuild a secret; no site-file key lowers this")
        }
        let adversary: SecAggAdversary = active ? .activeServer : .semiHonest
        let floor: Int
        do {
            floor = try SecAggParameterFinder.minimumSecureThreshold(
                cohortSize: rosterSize, shape: shape, corruptionRate: maxCorruptionRate, adversary: adversary)
        } catch {
            throw SitePolicyViolation(
                .thresholdBelowSecurityFloor, key: .maxCorruptionRate, round: round,
                "\(asked); this site's floor cannot be computed: \(error.message)")
        }
        guard threshold >= floor else {
            let server = active ? "an active server" : "the server"
            throw SitePolicyViolation(
                .thresholdBelowSecurityFloor, key: .maxCorruptionRate, round: round,
                "\(asked); with a fraction \(maxCorruptionRate) of the roster colluding with \(server), this site "
                    + "requires at least \(floor)")
        }
        guard
            SecAggParameterFinder.keepsHonestSurvivorsConnected(
                cohortSize: rosterSize, shape: shape, dropoutRate: maxDropoutRate, corruptionRate: maxCorruptionRate)
        else {
            let denser = leastConnectedDegree(cohortSize: rosterSize).map { "a degree of at least \($0)" }
            throw SitePolicyViolation(
                .graphMayDisconnect, key: .maxDropoutRate, round: round,
                "round \(round) asks for \(graphText); with a fraction \(maxDropoutRate) of the roster dropping out "
                    + "and \(maxCorruptionRate) colluding (max_corruption_rate), its honest survivors may split and "
                    + "reveal their partial sums; this site requires \(denser ?? "the complete graph")")
        }
    }

    /// The least even Harary degree that keeps the honest survivors connected under this
    /// policy's rates, or `nil` if only the complete graph does.
    private func leastConnectedDegree(cohortSize n: Int) -> Int? {
        var degree = 2
        while degree < n - 1 {
            if SecAggParameterFinder.keepsHonestSurvivorsConnected(
                cohortSize: n, shape: .harary(degree: degree), dropoutRate: maxDropoutRate,
                corruptionRate: maxCorruptionRate)
            {
                return degree
            }
            degree += 2
        }
        return nil
    }

    /// The model a round trains, from its shape alone, before it is fetched or built.
    public func checkModel(_ architecture: ModelArchitecture, round: Int) throws(SitePolicyViolation) {
        let model = Self.describe(architecture)
        guard let parameters = architecture.parameterCount, let widest = architecture.widestLayer else {
            throw SitePolicyViolation(
                .modelSizeUnknown, key: .maxParameters, round: round,
                "round \(round) asks for \(model), whose size cannot be computed (a dimension is not positive, or "
                    + "the parameter count overflows); this site allows at most \(maxParameters) parameters")
        }
        guard parameters <= maxParameters else {
            throw SitePolicyViolation(
                .tooManyParameters, key: .maxParameters, round: round,
                "round \(round) asks for \(model) with \(parameters) parameters; this site allows at most "
                    + "\(maxParameters)")
        }
        guard widest <= maxLayerWidth else {
            throw SitePolicyViolation(
                .layerTooWide, key: .maxLayerWidth, round: round,
                "round \(round) asks for \(model), whose widest layer holds \(widest) values per sample; this site "
                    + "allows at most \(maxLayerWidth)")
        }
        let (bytes, overflow) = parameters.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        guard !overflow, bytes <= maxModelBytes else {
            throw SitePolicyViolation(
                .modelTooLarge, key: .maxModelBytes, round: round,
                "round \(round) asks for \(model), whose \(parameters) 32-bit parameters take more than "
                    + "\(maxModelBytes) bytes, the most this site downloads")
        }
    }

    /// The local work a round asks for: epochs and batch size.
    public func checkTask(_ task: TrainingTask, round: Int) throws(SitePolicyViolation) {
        guard task.epochs <= maxEpochs else {
            throw SitePolicyViolation(
                .tooManyEpochs, key: .maxEpochs, round: round,
                "round \(round) asks for \(task.epochs) local epochs; this site allows at most \(maxEpochs)")
        }
        guard task.batchSize <= maxBatchSize else {
            throw SitePolicyViolation(
                .batchTooLarge, key: .maxBatchSize, round: round,
                "round \(round) asks for a batch size of \(task.batchSize); this site allows at most \(maxBatchSize)")
        }
    }

    /// The size of a model download, as announced, before the first byte is fetched.
    public func checkModelBytes(_ bytes: Int, round: Int) throws(SitePolicyViolation) {
        guard bytes <= maxModelBytes else {
            throw SitePolicyViolation(
                .modelTooLarge, key: .maxModelBytes, round: round,
                "round \(round) asks this site to download a model of \(bytes) bytes; this site allows at most "
                    + "\(maxModelBytes)")
        }
    }

    /// An evaluation request, given how many this site has already answered in the round.
    public func checkEvaluation(round: Int, answeredThisRound: Int) throws(SitePolicyViolation) {
        guard answeredThisRound < maxEvaluationsPerRound else {
            let allowed =
                maxEvaluationsPerRound == 0
                ? "this site answers no evaluation requests"
                : "this site answers at most \(maxEvaluationsPerRound) per round"
            throw SitePolicyViolation(
                .tooManyEvaluations, key: .maxEvaluationsPerRound, round: round,
                "round \(round) asks for evaluation number \(answeredThisRound + 1) of the round; \(allowed)")
        }
    }

    /// ``ModelArchitecture/summary``, except that a long list of hidden layers is counted
    /// rather than spelt out: a refusal travels back to the coordinator.
    private static func describe(_ architecture: ModelArchitecture) -> String {
        if case .mlp(let inputs, let hidden, let classes) = architecture, hidden.count > 8 {
            return "an MLP \(inputs)→…→\(classes) with \(hidden.count) hidden layers"
        }
        return architecture.summary
    }
}

// MARK: - Differential privacy

extension SitePolicy {
    /// A training round's privacy announcement, before anything is fetched: whether it has
    /// the protection this site demands, and whether its parameters hang together (the site
    /// derives its own charge from them, so a coordinator must not be able to shrink it).
    public func checkPrivacy(
        _ privacy: RoundPrivacy?, secure: SecureRoundAssignment?, parameterCount: Int, round: Int
    ) throws(SitePolicyViolation) {
        guard let privacy else {
            guard !requireDifferentialPrivacy else {
                throw SitePolicyViolation(
                    .privacyRequired, key: .requireDifferentialPrivacy, round: round,
                    "round \(round) asks for an update without differential privacy; this site sends only clipped, "
                        + "noised updates")
            }
            return
        }
        func malformed(_ message: String) -> SitePolicyViolation {
            SitePolicyViolation(.malformedPrivacy, key: nil, round: round, "round \(round) \(message)")
        }
        guard privacy.clipNorm.isFinite, privacy.clipNorm > 0, privacy.noiseMultiplier.isFinite,
            privacy.noiseMultiplier > 0
        else {
            throw malformed(
                "announces clip norm \(privacy.clipNorm) and noise multiplier \(privacy.noiseMultiplier); both must be "
                    + "positive and finite")
        }
        switch privacy.mode {
        case .central:
            guard privacy.distributed == nil else {
                throw malformed("announces central noise with distributed parameters")
            }
            if requireDifferentialPrivacy, !trustCentralNoise {
                throw SitePolicyViolation(
                    .centralNoiseUntrusted, key: .trustCentralNoise, round: round,
                    "round \(round) leaves the noise to the coordinator (central differential privacy), which this site "
                        + "cannot check; it requires distributed noise it adds itself (or set trust_central_noise: true)"
                )
            }
        case .distributed:
            guard let distributed = privacy.distributed, let secure else {
                throw malformed("asks for distributed noise without its parameters or outside secure aggregation")
            }
            guard distributed.dimension == parameterCount, distributed.clipNorm == privacy.clipNorm else {
                throw malformed(
                    "announces distributed noise for \(distributed.dimension) parameters at clip \(distributed.clipNorm); "
                        + "the model has \(parameterCount) and the clip norm is \(privacy.clipNorm)")
            }
            // The sum carries the noise of at least `threshold` inputs: SecAgg unmasks no fewer.
            guard distributed.minimumSurvivors >= 1, distributed.minimumSurvivors <= secure.threshold else {
                throw malformed(
                    "calibrates its noise for \(distributed.minimumSurvivors) survivors, but secure aggregation "
                        + "guarantees only its threshold of \(secure.threshold)")
            }
            guard distributed.perSiteMu.isFinite, distributed.perSiteMu > 0, distributed.scale.isFinite,
                distributed.scale > 0, distributed.squaredNormBound.isFinite, distributed.squaredNormBound > 0,
                distributed.ringBits == 32
            else {
                throw malformed("announces distributed noise parameters out of range")
            }
            do {
                try distributed.validate()
            } catch {
                throw malformed("announces distributed noise parameters that do not hold together: \(error.message)")
            }
        }
    }

    /// The mechanism this site's ledger charges for the round: `nil` when the announcement
    /// protects nothing the site can count (central noise it does not trust).
    public func chargedMechanism(for privacy: RoundPrivacy) -> PrivacyMechanism? {
        if privacy.mode == .central, !trustCentralNoise { return nil }
        return privacy.mechanism
    }

    /// Whether one more round of `privacy` keeps `spent` (this experiment's account in the
    /// site's ledger) within ``maxEpsilon``; returns the account after the round.
    public func checkBudget(
        _ privacy: RoundPrivacy, spent: PrivacyAccountant, experimentID: String, round: Int
    ) throws(SitePolicyViolation) -> PrivacyAccountant? {
        guard let mechanism = chargedMechanism(for: privacy) else {
            if let maxEpsilon {
                throw SitePolicyViolation(
                    .privacyBudgetExceeded, key: .maxEpsilon, round: round,
                    "round \(round) of \(experimentID) leaves the noise to the coordinator, which this site does not count "
                        + "(trust_central_noise: false), so it would spend an unbounded ε against max_epsilon \(maxEpsilon)"
                )
            }
            return nil
        }
        let after = spent.composing(mechanism, samplingRate: 1)
        if let maxEpsilon {
            let epsilon = after.epsilon(delta: privacyDelta)
            guard epsilon <= maxEpsilon else {
                throw SitePolicyViolation(
                    .privacyBudgetExceeded, key: .maxEpsilon, round: round,
                    "round \(round) would take this site's ε for \(experimentID) to \(Self.format(epsilon)) at δ "
                        + "\(privacyDelta) (\(after.steps) rounds by its own ledger); max_epsilon is \(maxEpsilon)")
            }
        }
        return after
    }

    private static func format(_ value: Double) -> String {
        value.formatted(.number.precision(.significantDigits(4)))
    }
}

// MARK: - The effective policy, key by key

extension SitePolicy {
    /// One key of the policy with its value as the site file writes it.
    public struct Setting: Sendable, Hashable {
        public var key: Key
        public var value: String
        /// Whether the value is the default (whether or not the file wrote it).
        public var isDefault: Bool
    }

    /// Every key in the order of ``Key``, for `tessera-participant --print-policy` and logs.
    public var settings: [Setting] {
        let defaults = SitePolicy()
        return Key.allCases.map { key in
            let value = self.value(of: key)
            return Setting(key: key, value: value, isDefault: value == defaults.value(of: key))
        }
    }

    /// The value of `key` as YAML.
    public func value(of key: Key) -> String {
        switch key {
        case .requireSecureAggregation: "\(requireSecureAggregation)"
        case .requireActiveAdversaryProtection: "\(requireActiveAdversaryProtection)"
        case .minimumCohort: "\(minimumCohort)"
        case .maxCorruptionRate: "\(maxCorruptionRate)"
        case .maxDropoutRate: "\(maxDropoutRate)"
        case .maxParameters: "\(maxParameters)"
        case .maxLayerWidth: "\(maxLayerWidth)"
        case .maxEpochs: "\(maxEpochs)"
        case .maxBatchSize: "\(maxBatchSize)"
        case .maxModelBytes: "\(maxModelBytes)"
        case .shareMetrics: shareMetrics.rawValue
        case .maxEvaluationsPerRound: "\(maxEvaluationsPerRound)"
        case .requireDifferentialPrivacy: "\(requireDifferentialPrivacy)"
        case .maxEpsilon: maxEpsilon.map { "\($0)" } ?? "none"
        case .privacyDelta: "\(privacyDelta)"
        case .trustCentralNoise: "\(trustCentralNoise)"
        }
    }
}

// MARK: - Decoding (the site file's `policy:` section)

extension SitePolicy.MetricsRelease: ConfigChoice {}

extension SitePolicy: Decodable {
    /// Decodes a `policy:` mapping strictly: unknown keys are refused, absent keys take the
    /// defaults of ``init(requireSecureAggregation:requireActiveAdversaryProtection:minimumCohort:maxCorruptionRate:maxDropoutRate:maxParameters:maxLayerWidth:maxEpochs:maxBatchSize:maxModelBytes:shareMetrics:maxEvaluationsPerRound:)``,
    /// and values out of range are refused at their key.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: Key.self)
        let d = SitePolicy()
        self.init(
            requireSecureAggregation: try c.value(.requireSecureAggregation, default: d.requireSecureAggregation),
            requireActiveAdversaryProtection: try c.value(
                .requireActiveAdversaryProtection, default: d.requireActiveAdversaryProtection),
            minimumCohort: try c.value(.minimumCohort, default: d.minimumCohort),
            maxCorruptionRate: try c.value(.maxCorruptionRate, default: d.maxCorruptionRate),
            maxDropoutRate: try c.value(.maxDropoutRate, default: d.maxDropoutRate),
            maxParameters: try c.value(.maxParameters, default: d.maxParameters),
            maxLayerWidth: try c.value(.maxLayerWidth, default: d.maxLayerWidth),
            maxEpochs: try c.value(.maxEpochs, default: d.maxEpochs),
            maxBatchSize: try c.value(.maxBatchSize, default: d.maxBatchSize),
            maxModelBytes: try c.value(.maxModelBytes, default: d.maxModelBytes),
            shareMetrics: try c.choice(MetricsRelease.self, forKey: .shareMetrics, default: d.shareMetrics),
            maxEvaluationsPerRound: try c.value(.maxEvaluationsPerRound, default: d.maxEvaluationsPerRound),
            requireDifferentialPrivacy: try c.value(.requireDifferentialPrivacy, default: d.requireDifferentialPrivacy),
            maxEpsilon: try Self.decodeMaxEpsilon(c), privacyDelta: try c.value(.privacyDelta, default: d.privacyDelta),
            trustCentralNoise: try c.value(.trustCentralNoise, default: d.trustCentralNoise))
        try validate(ConfigRules(ConfigPath.format(ConfigPath.components(decoder.codingPath))))
    }

    /// `max_epsilon`: a number, or `none` (the default, as the effective policy prints it).
    private static func decodeMaxEpsilon(_ c: KeyedDecodingContainer<Key>) throws -> Double? {
        if let text = try? c.decodeIfPresent(String.self, forKey: .maxEpsilon), Double(text) == nil {
            guard text == "none" else {
                throw ConfigError(
                    .invalidValue, at: .maxEpsilon, in: c,
                    "\"\(text)\" is neither none nor a number; give the most ε this site spends on one experiment")
            }
            return nil
        }
        return try c.optional(.maxEpsilon)
    }

    /// Range checks, with paths under `policy` (the site file's section).
    public func validate() throws(ConfigError) {
        try validate(ConfigRules("policy"))
    }

    private func validate(_ rules: ConfigRules) throws(ConfigError) {
        try rules.check(
            minimumCohort >= 2, Key.minimumCohort.rawValue,
            "must be at least 2 (a secure sum of one input is that input), got \(minimumCohort)")
        try rules.halfOpen(maxCorruptionRate, 0, 1, Key.maxCorruptionRate.rawValue)
        try rules.halfOpen(maxDropoutRate, 0, 1, Key.maxDropoutRate.rawValue)
        try rules.positive(maxParameters, Key.maxParameters.rawValue)
        try rules.positive(maxLayerWidth, Key.maxLayerWidth.rawValue)
        try rules.positive(maxEpochs, Key.maxEpochs.rawValue)
        try rules.positive(maxBatchSize, Key.maxBatchSize.rawValue)
        try rules.positive(maxModelBytes, Key.maxModelBytes.rawValue)
        try rules.check(
            maxEvaluationsPerRound >= 0, Key.maxEvaluationsPerRound.rawValue,
            "must be 0 (answer none) or more, got \(maxEvaluationsPerRound)")
        if let maxEpsilon { try rules.positive(maxEpsilon, Key.maxEpsilon.rawValue) }
        try rules.check(
            privacyDelta > 0 && privacyDelta < 1, Key.privacyDelta.rawValue, "must lie in (0, 1), got \(privacyDelta)")
    }
}

// MARK: - Violation

/// Why a site refused what a round asked for. It names the round, what was asked, what the
/// policy allows and the site-file key that refused it, so the operators on both sides know
/// what to change.
///
///     site policy minimum_cohort: round 3 asks for a secure round with a roster of 1; this site requires at least 3
public struct SitePolicyViolation: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable, CaseIterable {
            case secureAggregationRequired, activeProtectionRequired, cohortTooSmall, malformedGraph
            case thresholdNotAMajority, thresholdBelowSecurityFloor, graphMayDisconnect
            case modelSizeUnknown, tooManyParameters, layerTooWide, modelTooLarge, tooManyEpochs, batchTooLarge
            case tooManyEvaluations
            case privacyRequired, centralNoiseUntrusted, privacyBudgetExceeded, malformedPrivacy
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A plaintext round (`require_secure_aggregation`).
        public static let secureAggregationRequired = Code(.secureAggregationRequired)
        /// A secure round without signed keys and the ConsistencyCheck
        /// (`require_active_adversary_protection`).
        public static let activeProtectionRequired = Code(.activeProtectionRequired)
        /// A roster below `minimum_cohort`.
        public static let cohortTooSmall = Code(.cohortTooSmall)
        /// A Harary degree that is odd, below 2 or not below the roster size.
        public static let malformedGraph = Code(.malformedGraph)
        /// A threshold of at most half the share holders (a fixed rule).
        public static let thresholdNotAMajority = Code(.thresholdNotAMajority)
        /// A threshold below the security floor for `max_corruption_rate`.
        public static let thresholdBelowSecurityFloor = Code(.thresholdBelowSecurityFloor)
        /// A Harary graph too sparse for `max_dropout_rate` and `max_corruption_rate`.
        public static let graphMayDisconnect = Code(.graphMayDisconnect)
        /// A model whose size overflows or has a non-positive dimension.
        public static let modelSizeUnknown = Code(.modelSizeUnknown)
        /// More parameters than `max_parameters`.
        public static let tooManyParameters = Code(.tooManyParameters)
        /// A layer wider than `max_layer_width`.
        public static let layerTooWide = Code(.layerTooWide)
        /// A model larger than `max_model_bytes`.
        public static let modelTooLarge = Code(.modelTooLarge)
        /// More local epochs than `max_epochs`.
        public static let tooManyEpochs = Code(.tooManyEpochs)
        /// A batch larger than `max_batch_size`.
        public static let batchTooLarge = Code(.batchTooLarge)
        /// More evaluation requests in a round than `max_evaluations_per_round`.
        public static let tooManyEvaluations = Code(.tooManyEvaluations)
        /// A round without differential privacy (`require_differential_privacy`).
        public static let privacyRequired = Code(.privacyRequired)
        /// A central-DP round the site cannot count (`trust_central_noise`).
        public static let centralNoiseUntrusted = Code(.centralNoiseUntrusted)
        /// A round that would take the site's ledger past `max_epsilon`.
        public static let privacyBudgetExceeded = Code(.privacyBudgetExceeded)
        /// Privacy parameters that contradict the round or themselves (a fixed rule).
        public static let malformedPrivacy = Code(.malformedPrivacy)

        public var description: String { value.rawValue }

        /// The name of every code (``description``), a fixed set: metrics label refusals by it.
        public static var allNames: [String] { Value.allCases.map(\.rawValue) }
    }

    public var code: Code
    /// The site-file key that refused the request; `nil` for a fixed rule no key relaxes.
    public var key: SitePolicy.Key?
    /// The round that asked.
    public var round: Int
    /// What was asked and what the policy allows.
    public var message: String

    public init(_ code: Code, key: SitePolicy.Key?, round: Int, _ message: String) {
        self.code = code
        self.key = key
        self.round = round
        self.message = message
    }

    public var description: String {
        "site policy\(key.map { " \($0.rawValue)" } ?? ""): \(message)"
    }
}
