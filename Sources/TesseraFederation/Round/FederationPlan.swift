public import TesseraSecAgg
import TesseraTensor

/// Everything the round state machine needs to run an experiment, already validated.
///
/// It is deliberately separate from the YAML `ExperimentConfig`: the configuration is what a
/// researcher writes (with defaults, file paths and generator settings), the plan is what
/// the coordinator executes. `ExperimentConfig` lowers to a plan; tests build plans directly.
public struct FederationPlan: Sendable {
    /// How the cohort of a round is chosen from the connected participants.
    public struct Selection: Sendable, Hashable {
        /// Fraction of the eligible participants to aim for.
        public var fraction: Double
        /// A round does not start with fewer eligible participants, and fails with fewer
        /// contributions.
        public var minimum: Int
        /// Upper bound on the target cohort (`nil`: no bound).
        public var maximum: Int?
        /// Participants selected per target contribution, to absorb dropouts (≥ 1). A plaintext
        /// round closes its training stage as soon as the target is met.
        public var overSelection: Double

        public init(fraction: Double = 1, minimum: Int = 2, maximum: Int? = nil, overSelection: Double = 1) {
            self.fraction = fraction
            self.minimum = minimum
            self.maximum = maximum
            self.overSelection = overSelection
        }

        /// (target contributions, participants to select) for `eligible` participants, by the
        /// rule `CohortConfig` documents (the one experiment files are validated against).
        public func sizes(eligible: Int) -> (target: Int, selected: Int) {
            let rule = CohortConfig(
                fraction: fraction, minimum: minimum, maximum: maximum, overSelection: overSelection)
            return rule.selection(available: eligible) ?? (min(minimum, eligible), eligible)
        }
    }

    /// One deadline per stage, in seconds.
    public struct Deadlines: Sendable, Hashable {
        /// How long a round waits for `minimum` eligible participants before it fails.
        public var selection: Double
        /// Model download, local training and (secure rounds) the AdvertiseKeys answer.
        public var training: Double
        public var shareKeys: Double
        public var maskedInput: Double
        public var consistencyCheck: Double
        public var unmasking: Double
        /// An evaluation request.
        public var evaluation: Double

        public init(
            selection: Double = 60, training: Double = 600, shareKeys: Double = 60, maskedInput: Double = 120,
            consistencyCheck: Double = 60, unmasking: Double = 60, evaluation: Double = 120
        ) {
            self.selection = selection
            self.training = training
            self.shareKeys = shareKeys
            self.maskedInput = maskedInput
            self.consistencyCheck = consistencyCheck
            self.unmasking = unmasking
            self.evaluation = evaluation
        }

        /// The deadline of a stage.
        public func seconds(for stage: RoundStage) -> Double {
            switch stage {
            case .selection: selection
            case .training: training
            case .shareKeys: shareKeys
            case .maskedInput: maskedInput
            case .consistencyCheck: consistencyCheck
            case .unmasking: unmasking
            case .evaluation: evaluation
            case .aggregation: unmasking
            }
        }
    }

    /// Secure aggregation settings; `nil` in the plan means plaintext rounds.
    public struct SecureAggregation: Sendable, Hashable {
        public enum Neighbourhood: Sendable, Hashable {
            /// The parameter finder chooses the complete graph or a Harary degree, and t.
            case automatic
            /// Classic SecAgg: everybody is everybody's neighbour.
            case complete
            /// SecAgg+: a randomly permuted Harary graph of this (even) degree.
            case harary(degree: Int)
        }

        public enum Threshold: Sendable, Hashable {
            case count(Int)
            /// `⌈fraction · holders⌉`, where holders are a participant's neighbours plus itself.
            case fraction(Double)
        }

        public var neighbourhood: Neighbourhood
        /// An explicit Shamir threshold; `nil` derives it from the tolerated rates.
        public var threshold: Threshold?
        /// Tolerated dropout rate δ.
        public var dropoutRate: Double
        /// Tolerated corruption rate α.
        public var corruptionRate: Double
        /// Each update coordinate is clipped to ±clip before quantization.
        public var clip: Double
        /// Bits per coordinate; `nil` picks the most the cohort size allows (≤ 24).
        public var bits: Int?
        /// The largest sample weight; `nil` uses the largest sample count in the cohort.
        public var maxWeight: UInt32?
        /// The active-adversary setting: sites sign their keys and the survivor list with the
        /// signing keys their certificates bind to them, and the ConsistencyCheck stage runs.
        public var activeAdversary: Bool

        public init(
            neighbourhood: Neighbourhood = .automatic, threshold: Threshold? = nil, dropoutRate: Double = 0.3,
            corruptionRate: Double = 0.1, clip: Double = 4, bits: Int? = nil, maxWeight: UInt32? = nil,
            activeAdversary: Bool = true
        ) {
            self.activeAdversary = activeAdversary
            self.neighbourhood = neighbourhood
            self.threshold = threshold
            self.dropoutRate = dropoutRate
            self.corruptionRate = corruptionRate
            self.clip = clip
            self.bits = bits
            self.maxWeight = maxWeight
        }

        /// The graph and threshold of a round of `cohortSize` participants under these settings
        /// (``SecAggParameterFinder/roundParameters(cohortSize:neighbourhood:threshold:dropoutRate:corruptionRate:adversary:)``).
        public func roundParameters(cohortSize: Int) throws(SecAggParameterError) -> SecAggRoundParameters {
            let graph: SecAggNeighbourhood =
                switch neighbourhood {
                case .automatic: .automatic
                case .complete: .complete
                case .harary(let degree): .harary(degree: degree)
                }
            let fixed: SecAggThreshold? =
                switch threshold {
                case .count(let t)?: .count(t)
                case .fraction(let f)?: .fraction(f)
                case nil: nil
                }
            return try SecAggParameterFinder.roundParameters(
                cohortSize: cohortSize, neighbourhood: graph, threshold: fixed, dropoutRate: dropoutRate,
                corruptionRate: corruptionRate, adversary: activeAdversary ? .activeServer : .semiHonest)
        }
    }

    /// Where a round's public randomness (cohort, graph permutation, SecAgg round ids) comes from.
    public enum PublicRandomness: Sendable, Hashable {
        /// Derived from ``FederationPlan/seed`` and the round: simulations replay exactly.
        case fromSeed
        /// The operating system's CSPRNG, drawn afresh each round: what a deployed coordinator
        /// uses, so no site can predict where it will sit. Each round's draw is recorded.
        case system
    }

    /// What the coordinator accepts from one site in a plaintext round. (A secure round bounds
    /// updates by its clip and weights by its `maxWeight`, and checks the decoded sum against
    /// both.)
    public struct UpdateLimits: Sendable, Hashable {
        /// The largest sample count an update is weighted by; a site's count is also capped by
        /// the count it announced at Hello. Default 10,000, the secure-aggregation default.
        public var maxWeight: Int
        /// An update whose L2 norm exceeds this is refused and its site named; `nil` accepts any
        /// finite update.
        public var maxUpdateNorm: Double?

        public init(maxWeight: Int = 10_000, maxUpdateNorm: Double? = nil) {
            self.maxWeight = maxWeight
            self.maxUpdateNorm = maxUpdateNorm
        }
    }

    public enum RoundFailurePolicy: String, Sendable, Hashable, Codable {
        /// Keep the global model and go on with the next round.
        case `continue`
        /// End the experiment.
        case stop
    }

    public var experimentID: String
    public var rounds: Int
    /// The dataset name participants must offer to be selected.
    public var datasetName: String
    public var architecture: ModelArchitecture
    public var selection: Selection
    public var deadlines: Deadlines
    /// The local training every selected participant runs (its seed is re-derived per round
    /// and participant).
    public var training: TrainingTask
    public var secureAggregation: SecureAggregation?
    /// Evaluate every N rounds (and after the last); 0 = only after the last round.
    public var evaluationEvery: Int
    /// Fraction of the eligible participants asked to evaluate (at least one).
    public var evaluationFraction: Double
    /// Once this fraction of the evaluators has answered a stage of an evaluation, the others
    /// get as long again as those took (never past the stage's deadline) and are then left
    /// out: a site that does not answer delays the next round by about one evaluation, not by
    /// the evaluation deadline.
    public var evaluationQuorum: Double
    public var updateLimits: UpdateLimits
    public var onRoundFailure: RoundFailurePolicy
    /// MAJOR.MINOR of the published model versions; each completed round bumps PATCH.
    public var versionMajor: Int
    public var versionMinor: Int
    public var seed: UInt64
    public var publicRandomness: PublicRandomness
    /// When a failing site is benched (the coordinator's `--breaker-*` flags set it).
    public var circuitBreaker = CircuitBreakerPolicy()
    /// Evaluates every model the coordinator publishes on its central test set
    /// (`evaluation.dataset`, ``ExperimentConfig/makeCentralEvaluator(architecture:)``); the
    /// round records carry the result as `central*`. `nil` (default): no central evaluation.
    public var centralEvaluator: CentralEvaluator?
    /// Differential privacy; `nil` (default) for none.
    public var privacy: Privacy?

    public init(
        experimentID: String, rounds: Int, datasetName: String, architecture: ModelArchitecture,
        selection: Selection = Selection(), deadlines: Deadlines = Deadlines(), training: TrainingTask = TrainingTask(),
        secureAggregation: SecureAggregation? = SecureAggregation(), evaluationEvery: Int = 1,
        evaluationFraction: Double = 1, evaluationQuorum: Double = 0.5, updateLimits: UpdateLimits = UpdateLimits(),
        onRoundFailure: RoundFailurePolicy = .continue, versionMajor: Int = 1,
        versionMinor: Int = 0, seed: UInt64 = 0, publicRandomness: PublicRandomness = .fromSeed
    ) {
        self.publicRandomness = publicRandomness
        self.experimentID = experimentID
        self.rounds = rounds
        self.datasetName = datasetName
        self.architecture = architecture
        self.selection = selection
        self.deadlines = deadlines
        self.training = training
        self.secureAggregation = secureAggregation
        self.evaluationEvery = evaluationEvery
        self.evaluationFraction = evaluationFraction
        self.evaluationQuorum = evaluationQuorum
        self.updateLimits = updateLimits
        self.onRoundFailure = onRoundFailure
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.seed = seed
    }
}

/// `MAJOR.MINOR.PATCH`: the experiment fixes MAJOR.MINOR, each completed round bumps PATCH.
public struct ModelVersion: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init(major: Int, minor: Int, patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (a: ModelVersion, b: ModelVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }
}
